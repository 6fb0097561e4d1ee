/* exec: plan building, recording, approval hand-off, execution and verification (see exec.h). */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "lock.h"
#include "log.h"
#include "outbox.h"
#include "rconn.h"
#include "store.h"
#include "util.h"

/* ------------------------------------------------------------------ json helpers */

static void add_dec(cJSON *o, const char *k, const money_u256 *v)
{
    char b[MONEY_DEC_MAX];
    money_to_dec(v, b, sizeof b);
    cJSON_AddStringToObject(o, k, b);
}

static uint32_t derived_l1_target(const rb_app *app, const vault_state *vs)
{
    if (app->l1_target_bps)
        return app->l1_target_bps;
    uint32_t sum = 0;
    for (size_t i = 0; i < vs->n; i++)
        sum += vs->assets[i].target_bps;
    uint32_t t = sum >= 10000 ? 0 : 10000 - sum;
    if (t < app->l1_lo_bps)
        t = app->l1_lo_bps;
    if (t > app->l1_hi_bps)
        t = app->l1_hi_bps;
    return t;
}

void exec_planner_input(const rb_app *app, const vault_state *vs, const store_asset *settings,
                        size_t nsettings, const money_u256 *l1_needed, planner_asset **assets,
                        planner_input *in)
{
    planner_asset *pa = util_calloc(vs->n ? vs->n : 1, sizeof *pa);
    for (size_t i = 0; i < vs->n; i++) {
        const vault_asset *v = &vs->assets[i];
        planner_asset *a = &pa[i];
        util_strlcpy(a->id, v->token, sizeof a->id);
        a->tier = v->tier;
        a->enabled = 1;
        a->balance = v->balance;
        a->decimals = v->decimals;
        a->price = v->price;
        a->price_decimals = v->price_decimals;
        a->target_bps = v->target_bps;
        a->min_bps = v->min_bps;
        a->max_bps = v->max_bps;
        a->min_trade = app->default_min_trade;
        a->slippage_bps = app->default_slippage_bps;
        for (size_t k = 0; k < nsettings; k++)
            if (strcmp(settings[k].token, v->token) == 0) {
                a->min_trade = settings[k].min_trade;
                a->slippage_bps = settings[k].slippage_bps;
                a->enabled = settings[k].enabled;
                break;
            }
    }
    memset(in, 0, sizeof *in);
    in->l1 = vs->l1;
    in->usdt_decimals = 18;
    in->assets = pa;
    in->nassets = vs->n;
    in->l1_target_bps = derived_l1_target(app, vs);
    in->liability_7d = vs->liability;
    if (l1_needed && money_cmp(l1_needed, &in->liability_7d) > 0)
        in->liability_7d = *l1_needed;
    in->band_bps = app->band_bps;
    *assets = pa;
}

/* ------------------------------------------------------------------ building a plan */

typedef struct built {
    vault_state vs;
    planner_asset *pa;
    planner_input in;
    planner_result pr;
    planner_status st;
    char why[512];
    vault_sim *sim;
    long first_revert;
    const char *method;
    int64_t planner_us;
    const char *status; /* noop | failed | awaiting_approval | approved */
    char error[600];
} built;

static void built_free(built *b)
{
    vault_state_free(&b->vs);
    free(b->pa);
    planner_result_free(&b->pr);
    free(b->sim);
    memset(b, 0, sizeof *b);
}

static int load_settings(rb_app *app, store_asset **s, size_t *n, char *err, size_t errlen)
{
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    int rc = store_assets_load(c, s, n, err, errlen);
    db_release(app->db, c);
    return rc;
}

/* Reads, plans and simulates; b->status says what the plan becomes. -1 only when the chain or
 * database could not be asked (try again later). */
static int build(rb_app *app, const money_u256 *l1_needed, built *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (vault_read(app, RPC_BLOCK_LATEST, &b->vs, err, errlen) != 0)
        return -1;
    store_asset *set = NULL;
    size_t nset = 0;
    if (load_settings(app, &set, &nset, err, errlen) != 0) {
        built_free(b);
        return -1;
    }
    exec_planner_input(app, &b->vs, set, nset, l1_needed, &b->pa, &b->in);
    free(set);
    /* A listed asset with a broken feed cannot be valued: the planner refuses it, unless the
     * operator disabled it. */
    int64_t t0 = util_mono_us();
    b->st = planner_run(&b->in, &b->pr, b->why, sizeof b->why);
    b->planner_us = util_mono_us() - t0;
    b->first_revert = -1;
    if (b->st != PLANNER_OK) {
        b->status = "failed";
        snprintf(b->error, sizeof b->error, "planner: %s", b->why);
        return 0;
    }
    if (b->pr.nlegs == 0) {
        b->status = "noop";
        return 0;
    }
    size_t n = b->pr.nlegs;
    vault_call *calls = util_calloc(n, sizeof *calls);
    uint8_t **data = util_calloc(n, sizeof *data);
    b->sim = util_calloc(n, sizeof *b->sim);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const planner_leg *l = &b->pr.legs[i];
        size_t len = 0;
        rc = vault_leg_calldata(app, b->pa[l->asset].id, l->side, &l->amount_in, &l->min_out,
                                &data[i], &len, err, errlen);
        calls[i].data = data[i];
        calls[i].len = len;
        calls[i].side = l->side;
    }
    if (rc == 0) {
        b->first_revert =
            vault_simulate(app, b->vs.block, calls, n, b->sim, &b->method, err, errlen);
        if (b->first_revert < 0)
            rc = -1;
    }
    for (size_t i = 0; i < n; i++)
        free(data[i]);
    free(data);
    free(calls);
    if (rc != 0) {
        built_free(b);
        return -1;
    }
    if (b->first_revert < (long)n) {
        const planner_leg *l = &b->pr.legs[b->first_revert];
        b->status = "failed";
        snprintf(b->error, sizeof b->error, "simulation: leg %ld (%s %s) reverts: %s",
                 b->first_revert, planner_side_name(l->side), b->vs.assets[l->asset].symbol,
                 b->sim[b->first_revert].reason);
        return 0;
    }
    b->status =
        money_cmp(&b->pr.traded, &app->approval_threshold) > 0 ? "awaiting_approval" : "approved";
    return 0;
}

static cJSON *plan_json(const built *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "l1_target_bps", b->in.l1_target_bps);
    add_dec(o, "liability", &b->in.liability_7d);
    add_dec(o, "nav", &b->pr.nav);
    add_dec(o, "l1_target", &b->pr.l1_target);
    add_dec(o, "l1_after", &b->pr.l1_after);
    add_dec(o, "l1_after_min", &b->pr.l1_after_min);
    add_dec(o, "traded", &b->pr.traded);
    cJSON_AddBoolToObject(o, "l1_short", b->pr.l1_short);
    cJSON_AddNumberToObject(o, "out_of_bounds", (double)b->pr.out_of_bounds);
    if (b->st != PLANNER_OK)
        cJSON_AddStringToObject(o, "why", b->why);
    cJSON *legs = cJSON_AddArrayToObject(o, "legs");
    for (size_t i = 0; i < b->pr.nlegs; i++) {
        const planner_leg *l = &b->pr.legs[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "seq", (double)i);
        cJSON_AddStringToObject(j, "token", b->vs.assets[l->asset].token);
        cJSON_AddStringToObject(j, "symbol", b->vs.assets[l->asset].symbol);
        cJSON_AddStringToObject(j, "side", planner_side_name(l->side));
        add_dec(j, "amount_in", &l->amount_in);
        add_dec(j, "expected_out", &l->expected_out);
        add_dec(j, "min_out", &l->min_out);
        add_dec(j, "value", &l->value);
        cJSON_AddItemToArray(legs, j);
    }
    return o;
}

static const char *sim_status_name(vault_sim_status s)
{
    return s == VAULT_SIM_OK ? "ok" : s == VAULT_SIM_REVERT ? "revert" : "deferred";
}

static cJSON *sim_json(const built *b)
{
    if (!b->sim)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", b->method ? b->method : "");
    cJSON_AddNumberToObject(o, "block", (double)b->vs.block);
    cJSON_AddBoolToObject(o, "ok", b->first_revert == (long)b->pr.nlegs);
    cJSON *arr = cJSON_AddArrayToObject(o, "legs");
    for (size_t i = 0; i < b->pr.nlegs; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "seq", (double)i);
        cJSON_AddStringToObject(j, "status", sim_status_name(b->sim[i].status));
        if (b->sim[i].status == VAULT_SIM_OK)
            add_dec(j, "out", &b->sim[i].out);
        else
            cJSON_AddStringToObject(j, "reason", b->sim[i].reason);
        cJSON_AddItemToArray(arr, j);
    }
    return o;
}

int exec_preview(rb_app *app, const money_u256 *l1_needed, cJSON **out, char *err, size_t errlen)
{
    built b;
    if (build(app, l1_needed, &b, err, errlen) != 0)
        return -1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", b.status);
    if (b.error[0])
        cJSON_AddStringToObject(o, "error", b.error);
    cJSON_AddNumberToObject(o, "block", (double)b.vs.block);
    cJSON_AddItemToObject(o, "plan", plan_json(&b));
    cJSON_AddItemToObject(o, "simulation", sim_json(&b));
    cJSON_AddItemToObject(o, "before", vault_state_json(&b.vs));
    cJSON_AddNumberToObject(o, "planner_us", (double)b.planner_us);
    built_free(&b);
    *out = o;
    return 0;
}

int exec_allocation(rb_app *app, cJSON **out, char *err, size_t errlen)
{
    vault_state vs;
    if (vault_read(app, RPC_BLOCK_LATEST, &vs, err, errlen) != 0)
        return -1;
    money_u256 nav = vs.l1, *v = util_calloc(vs.n ? vs.n : 1, sizeof *v);
    planner_asset pa;
    for (size_t i = 0; i < vs.n; i++) {
        memset(&pa, 0, sizeof pa);
        pa.balance = vs.assets[i].balance;
        pa.price = vs.assets[i].price;
        pa.decimals = vs.assets[i].decimals;
        pa.price_decimals = vs.assets[i].price_decimals;
        if (planner_value(&pa, 18, &v[i]) != 0)
            money_zero(&v[i]);
        money_add(&nav, &nav, &v[i]);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "block", (double)vs.block);
    add_dec(o, "nav", &nav);
    add_dec(o, "liability", &vs.liability);
    cJSON *l1 = cJSON_AddObjectToObject(o, "l1");
    add_dec(l1, "value", &vs.l1);
    cJSON_AddNumberToObject(l1, "weight_bps", planner_weight_bps(&vs.l1, &nav));
    cJSON_AddNumberToObject(l1, "target_bps", derived_l1_target(app, &vs));
    cJSON_AddNumberToObject(l1, "min_bps", app->l1_lo_bps);
    cJSON_AddNumberToObject(l1, "max_bps", app->l1_hi_bps);
    cJSON *arr = cJSON_AddArrayToObject(o, "assets");
    for (size_t i = 0; i < vs.n; i++) {
        const vault_asset *a = &vs.assets[i];
        cJSON *j = cJSON_CreateObject();
        uint32_t w = planner_weight_bps(&v[i], &nav);
        cJSON_AddStringToObject(j, "token", a->token);
        cJSON_AddStringToObject(j, "symbol", a->symbol);
        cJSON_AddNumberToObject(j, "tier", a->tier);
        add_dec(j, "balance", &a->balance);
        add_dec(j, "value", &v[i]);
        cJSON_AddNumberToObject(j, "weight_bps", w);
        cJSON_AddNumberToObject(j, "target_bps", a->target_bps);
        cJSON_AddNumberToObject(j, "min_bps", a->min_bps);
        cJSON_AddNumberToObject(j, "max_bps", a->max_bps);
        cJSON_AddNumberToObject(j, "deviation_bps", (double)w - (double)a->target_bps);
        cJSON_AddItemToArray(arr, j);
    }
    free(v);
    vault_state_free(&vs);
    *out = o;
    return 0;
}

/* ------------------------------------------------------------------ runner */

struct exec_runner {
    rb_app *app;
    redisContext *rc;
    lock_lease lease;
    void (*hook)(const char *step, const char *plan_id, void *ud);
    void *hook_ud;
};

exec_runner *exec_runner_new(rb_app *app, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    exec_runner *r = util_calloc(1, sizeof *r);
    r->app = app;
    return r;
}

void exec_runner_free(exec_runner *r)
{
    if (!r)
        return;
    if (r->rc)
        redisFree(r->rc);
    free(r);
}

void exec_set_hook(exec_runner *r, void (*hook)(const char *, const char *, void *), void *ud)
{
    r->hook = hook;
    r->hook_ud = ud;
}

static void hook(exec_runner *r, const char *step, const char *plan)
{
    if (r->hook)
        r->hook(step, plan, r->hook_ud);
}

static redisContext *redis(exec_runner *r, char *err, size_t errlen)
{
    if (r->rc && r->rc->err) {
        redisFree(r->rc);
        r->rc = NULL;
    }
    if (!r->rc)
        r->rc = rconn_connect(r->app->redis_url, 2000, err, errlen);
    return r->rc;
}

/* 1 paused (or unknown: fail safe), 0 not paused. */
static int paused(exec_runner *r)
{
    redisContext *rc = redis(r, NULL, 0);
    if (!rc)
        return 1;
    redisReply *rep = redisCommand(rc, "EXISTS %s", OUTBOX_PAUSE_KEY);
    int p = !rep || rep->type != REDIS_REPLY_INTEGER || rep->integer != 0;
    if (rep)
        freeReplyObject(rep);
    return p;
}

/* A fenced write transaction: fn runs only while our fence is the newest. */
typedef struct fenced {
    exec_runner *r;
    int (*fn)(db_conn *tx, void *ud, char *err, size_t errlen);
    void *ud;
    int lost;
} fenced;

static int fenced_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    fenced *f = ud;
    if (!lock_valid(&f->r->lease)) {
        f->lost = 1;
        return util_err(err, errlen, "executor lease expired");
    }
    int ok = store_fence(tx, f->r->lease.fence, err, errlen);
    if (ok <= 0) {
        f->lost = ok == 0;
        return ok == 0 ? util_err(err, errlen, "a newer executor holds the fence") : -1;
    }
    return f->fn(tx, f->ud, err, errlen);
}

static int run_fenced(exec_runner *r, int (*fn)(db_conn *, void *, char *, size_t), void *ud,
                      char *err, size_t errlen)
{
    fenced f = {r, fn, ud, 0};
    return db_tx(r->app->db, fenced_tx, &f, err, errlen);
}

static PGresult *query(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                       char *err, size_t errlen)
{
    return db_query_prepared(c, name, sql, n, p, err, errlen);
}

static int exec1(db_conn *c, const char *name, const char *sql, int n, const char *const *p,
                 char *err, size_t errlen)
{
    PGresult *r = query(c, name, sql, n, p, err, errlen);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static int set_status(db_conn *tx, const char *plan, const char *status, const char *error,
                      char *err, size_t errlen)
{
    const char *p[3] = {plan, status, error};
    if (exec1(
            tx, "rb_plan_status",
            "UPDATE rebalance.rebalance_history SET status = $2, error = COALESCE($3, error), "
            "updated_at = now(), finished_at = CASE WHEN $2 IN ('failed', 'rejected', 'verified', "
            "'mismatch', 'noop') THEN now() ELSE finished_at END WHERE id = $1",
            3, p, err, errlen) != 0)
        return -1;
    return store_out_update(tx, plan, status, err, errlen);
}

/* ---- recording a new plan */

typedef struct record_ctx {
    rb_app *app;
    built *b;
    char id[64];
    const char *max_trigger;
} record_ctx;

static int record_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    record_ctx *x = ud;
    built *b = x->b;
    rb_app *app = x->app;
    if (store_assets_sync(tx, &b->vs, &app->default_min_trade, app->default_slippage_bps, err,
                          errlen) != 0)
        return -1;
    /* Take every pending trigger up to the one seen: later ones wait for the next plan. */
    const char *tp[2] = {x->id, x->max_trigger};
    PGresult *r = query(tx, "rb_take_triggers",
                        "WITH t AS (UPDATE rebalance.rebalance_triggers SET consumed_by = $1 WHERE "
                        "consumed_by IS NULL AND id <= $2::bigint RETURNING id, kind, detail) "
                        "SELECT COALESCE(jsonb_agg(jsonb_build_object('id', id, 'kind', kind, "
                        "'detail', detail) ORDER BY id), '[]') FROM t",
                        2, tp, err, errlen);
    if (!r)
        return -1;
    char *triggers = util_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    char blk[24], traded[MONEY_DEC_MAX], nav[MONEY_DEC_MAX];
    snprintf(blk, sizeof blk, "%llu", (unsigned long long)b->vs.block);
    money_to_dec(&b->pr.traded, traded, sizeof traded);
    money_to_dec(&b->pr.nav, nav, sizeof nav);
    char fence[24];
    snprintf(fence, sizeof fence, "%lld", 0LL);
    cJSON *pj = plan_json(b), *sj = sim_json(b), *bj = vault_state_json(&b->vs);
    char *plan = cJSON_PrintUnformatted(pj), *sim = cJSON_PrintUnformatted(sj),
         *before = cJSON_PrintUnformatted(bj);
    cJSON_Delete(pj);
    cJSON_Delete(sj);
    cJSON_Delete(bj);
    const char *hp[10] = {x->id, b->status, triggers, blk,    traded,
                          nav,   plan,      sim,      before, b->error[0] ? b->error : NULL};
    int terminal = strcmp(b->status, "noop") == 0 || strcmp(b->status, "failed") == 0;
    int rc = exec1(tx, "rb_plan_insert",
                   "INSERT INTO rebalance.rebalance_history (id, status, triggers, block_number, "
                   "traded, nav, plan, simulation, before_state, error, finished_at) VALUES ($1, "
                   "$2, $3::jsonb, $4::bigint, $5::numeric, $6::numeric, $7::jsonb, $8::jsonb, "
                   "$9::jsonb, $10, CASE WHEN $2 IN ('noop', 'failed') THEN now() END)",
                   10, hp, err, errlen);
    free(triggers);
    free(plan);
    free(sim);
    free(before);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < b->pr.nlegs && !terminal; i++) {
        const planner_leg *l = &b->pr.legs[i];
        char seq[24], ai[MONEY_DEC_MAX], eo[MONEY_DEC_MAX], mo[MONEY_DEC_MAX], v[MONEY_DEC_MAX],
            so[MONEY_DEC_MAX], key[128];
        snprintf(seq, sizeof seq, "%zu", i);
        money_to_dec(&l->amount_in, ai, sizeof ai);
        money_to_dec(&l->expected_out, eo, sizeof eo);
        money_to_dec(&l->min_out, mo, sizeof mo);
        money_to_dec(&l->value, v, sizeof v);
        money_to_dec(&b->sim[i].out, so, sizeof so);
        snprintf(key, sizeof key, "rebalance:%s:%zu", x->id, i);
        const char *lp[10] = {x->id,
                              seq,
                              b->vs.assets[l->asset].token,
                              planner_side_name(l->side),
                              ai,
                              eo,
                              mo,
                              v,
                              b->sim[i].status == VAULT_SIM_OK ? so : NULL,
                              key};
        if (exec1(tx, "rb_leg_insert",
                  "INSERT INTO rebalance.rebalance_legs (plan_id, seq, token, side, amount_in, "
                  "expected_out, min_out, value, simulated_out, idempotency_key) VALUES ($1, "
                  "$2::int, $3, $4, $5::numeric, $6::numeric, $7::numeric, $8::numeric, "
                  "$9::numeric, $10)",
                  10, lp, err, errlen) != 0)
            return -1;
    }
    if (strcmp(b->status, "failed") == 0) {
        int infeasible = b->st == PLANNER_INFEASIBLE;
        cJSON *labels = cJSON_CreateObject();
        cJSON_AddStringToObject(labels, "plan_id", x->id);
        if (store_out_alert(tx, infeasible ? "critical" : "warning",
                            infeasible ? "Rebalance cannot cover the redemption liability"
                                       : "Rebalance plan stopped",
                            b->error, "rebalance.plan_failed", labels, err, errlen) != 0)
            return -1;
    }
    if (strcmp(b->status, "awaiting_approval") == 0) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "kind", "rebalance");
        cJSON_AddStringToObject(p, "ref", x->id);
        cJSON_AddStringToObject(p, "amount", traded);
        cJSON_AddStringToObject(p, "requester", RB_SOURCE);
        char title[200], human[MONEY_DEC_MAX];
        money_to_units(&b->pr.traded, 18, human, sizeof human);
        snprintf(title, sizeof title, "Rebalance plan %s: %zu legs, %s USDT traded", x->id,
                 b->pr.nlegs, human);
        cJSON_AddStringToObject(p, "title", title);
        cJSON *inner = cJSON_AddObjectToObject(p, "payload");
        cJSON_AddStringToObject(inner, "plan_id", x->id);
        cJSON_AddNumberToObject(inner, "block", (double)b->vs.block);
        cJSON_AddNumberToObject(inner, "legs", (double)b->pr.nlegs);
        char id[120];
        snprintf(id, sizeof id, "rebalance:approval:%s", x->id);
        if (store_out_enqueue(tx, "approval.requests", BUS_HIGH, id, "approval.request", p, err,
                              errlen) != 0)
            return -1;
    }
    return store_out_update(tx, x->id, b->status, err, errlen);
}

/* ---- advancing the active plan */

typedef struct leg_row {
    int seq;
    char token[43];
    planner_side side;
    money_u256 amount_in, min_out;
    char key[128];
    char status[16];
} leg_row;

typedef struct leg_ctx {
    rb_app *app;
    const char *plan;
    const leg_row *leg;
    const char *status; /* new leg status */
    const char *tx_hash;
    const char *error;
    const uint8_t *data;
    size_t len;
    int fail_plan;
} leg_ctx;

static int leg_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    leg_ctx *x = ud;
    if (x->data) {
        outbox_req req = {.idempotency_key = x->leg->key,
                          .chain_id = x->app->chain_id,
                          .from = x->app->rebalancer,
                          .to = x->app->vault,
                          .data = x->data,
                          .data_len = x->len,
                          .purpose = x->leg->side == PLANNER_BUY ? "rebalance purchaseAsset"
                                                                 : "rebalance redeemAsset"};
        if (outbox_enqueue(tx, RB_SCHEMA, &req, err, errlen) < 0)
            return -1;
    }
    char seq[16];
    snprintf(seq, sizeof seq, "%d", x->leg->seq);
    const char *p[5] = {x->plan, seq, x->status, x->tx_hash, x->error};
    if (exec1(tx, "rb_leg_status",
              "UPDATE rebalance.rebalance_legs SET status = $3, tx_hash = COALESCE($4, tx_hash), "
              "error = COALESCE($5, error), updated_at = now() WHERE plan_id = $1 AND seq = "
              "$2::int",
              5, p, err, errlen) != 0)
        return -1;
    if (x->fail_plan) {
        char msg[700];
        snprintf(msg, sizeof msg, "leg %d (%s %s): %s", x->leg->seq,
                 planner_side_name(x->leg->side), x->leg->token, x->error ? x->error : "failed");
        cJSON *labels = cJSON_CreateObject();
        cJSON_AddStringToObject(labels, "plan_id", x->plan);
        if (set_status(tx, x->plan, "failed", msg, err, errlen) != 0 ||
            store_out_alert(tx, "warning", "Rebalance plan stopped", msg, "rebalance.plan_failed",
                            labels, err, errlen) != 0)
            return -1;
    } else if (x->data) {
        const char *pp[1] = {x->plan};
        if (exec1(tx, "rb_plan_executing",
                  "UPDATE rebalance.rebalance_history SET status = 'executing', updated_at = now() "
                  "WHERE id = $1 AND status = 'approved'",
                  1, pp, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int load_legs(rb_app *app, const char *plan, leg_row **out, size_t *n, char *err,
                     size_t errlen)
{
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    const char *p[1] = {plan};
    PGresult *r = query(c, "rb_legs",
                        "SELECT seq, token, side, amount_in::text, min_out::text, idempotency_key, "
                        "status FROM rebalance.rebalance_legs WHERE plan_id = $1 ORDER BY seq",
                        1, p, err, errlen);
    db_release(app->db, c);
    if (!r)
        return -1;
    *n = (size_t)PQntuples(r);
    *out = util_calloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++) {
        leg_row *l = &(*out)[i];
        l->seq = atoi(PQgetvalue(r, (int)i, 0));
        util_strlcpy(l->token, PQgetvalue(r, (int)i, 1), sizeof l->token);
        l->side = strcmp(PQgetvalue(r, (int)i, 2), "buy") == 0 ? PLANNER_BUY : PLANNER_SELL;
        money_from_dec(&l->amount_in, PQgetvalue(r, (int)i, 3), NULL, 0);
        money_from_dec(&l->min_out, PQgetvalue(r, (int)i, 4), NULL, 0);
        util_strlcpy(l->key, PQgetvalue(r, (int)i, 5), sizeof l->key);
        util_strlcpy(l->status, PQgetvalue(r, (int)i, 6), sizeof l->status);
    }
    PQclear(r);
    return 0;
}

/* ---- verification */

typedef struct verify_ctx {
    const char *plan;
    const char *status;
    char *after;
    const char *error;
} verify_ctx;

static int verify_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    verify_ctx *x = ud;
    const char *p[2] = {x->plan, x->after};
    if (exec1(tx, "rb_plan_after",
              "UPDATE rebalance.rebalance_history SET after_state = $2::jsonb WHERE id = $1", 2, p,
              err, errlen) != 0 ||
        set_status(tx, x->plan, x->status, x->error, err, errlen) != 0)
        return -1;
    if (strcmp(x->status, "mismatch") == 0) {
        cJSON *labels = cJSON_CreateObject();
        cJSON_AddStringToObject(labels, "plan_id", x->plan);
        return store_out_alert(tx, "warning", "Rebalance result differs from the plan", x->error,
                               "rebalance.mismatch", labels, err, errlen);
    }
    return 0;
}

/* Reads the holdings back and compares them with the plan: each sold token balance fell by
 * exactly the amount sold, each bought one rose by at least its guard; then the weights. */
static int verify(exec_runner *r, const char *plan, const leg_row *legs, size_t n, char *err,
                  size_t errlen)
{
    rb_app *app = r->app;
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    const char *p[1] = {plan};
    PGresult *res = query(c, "rb_before",
                          "SELECT before_state::text FROM "
                          "rebalance.rebalance_history WHERE id = $1",
                          1, p, err, errlen);
    db_release(app->db, c);
    if (!res)
        return -1;
    cJSON *before = PQntuples(res) ? cJSON_Parse(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    vault_state vs;
    if (vault_read(app, RPC_BLOCK_LATEST, &vs, err, errlen) != 0) {
        cJSON_Delete(before);
        return -1;
    }
    char problem[600] = "";
    for (size_t i = 0; i < n && !problem[0]; i++) {
        money_u256 b0, b1, d;
        money_zero(&b0);
        money_zero(&b1);
        cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItem(before, "assets"))
        {
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(a, "token"));
            if (t && strcmp(t, legs[i].token) == 0)
                money_from_dec(&b0, cJSON_GetStringValue(cJSON_GetObjectItem(a, "balance")), NULL,
                               0);
        }
        for (size_t k = 0; k < vs.n; k++)
            if (strcmp(vs.assets[k].token, legs[i].token) == 0)
                b1 = vs.assets[k].balance;
        if (legs[i].side == PLANNER_SELL) {
            if (money_sub(&d, &b0, &b1) != 0 || money_cmp(&d, &legs[i].amount_in) != 0)
                snprintf(problem, sizeof problem,
                         "leg %d: %s balance did not fall by the amount sold", legs[i].seq,
                         legs[i].token);
        } else {
            if (money_sub(&d, &b1, &b0) != 0 || money_cmp(&d, &legs[i].min_out) < 0)
                snprintf(problem, sizeof problem, "leg %d: %s balance rose by less than its guard",
                         legs[i].seq, legs[i].token);
        }
    }
    cJSON_Delete(before);
    /* Weights after the plan (other flows may have moved L1 meanwhile: reported, not judged). */
    cJSON *after = vault_state_json(&vs);
    vault_state_free(&vs);
    cJSON *alloc = NULL;
    if (exec_allocation(app, &alloc, NULL, 0) == 0)
        cJSON_AddItemToObject(after, "allocation", alloc);
    verify_ctx x = {plan, problem[0] ? "mismatch" : "verified", cJSON_PrintUnformatted(after),
                    problem[0] ? problem : NULL};
    cJSON_Delete(after);
    int rc = run_fenced(r, verify_tx, &x, err, errlen);
    free(x.after);
    if (rc == 0)
        hook(r, "finished", plan);
    return rc == 0 ? 1 : -1;
}

static int advance(exec_runner *r, const char *plan, char *err, size_t errlen)
{
    rb_app *app = r->app;
    leg_row *legs = NULL;
    size_t n = 0;
    if (load_legs(app, plan, &legs, &n, err, errlen) != 0)
        return -1;
    int changed = 0, rc = 0;
    size_t i = 0;
    for (; i < n; i++) {
        leg_row *l = &legs[i];
        if (strcmp(l->status, "confirmed") == 0)
            continue;
        if (strcmp(l->status, "planned") == 0) {
            if (paused(r))
                goto out;
            /* Simulated again at the head right before it is queued: state has moved since
             * the plan (approval wait, earlier legs). */
            uint8_t *data = NULL;
            size_t len = 0;
            vault_sim sim;
            const char *method;
            uint64_t head;
            if (vault_leg_calldata(app, l->token, l->side, &l->amount_in, &l->min_out, &data, &len,
                                   err, errlen) != 0 ||
                rpc_block_number(app->rpc, &head, err, errlen) != 0) {
                free(data);
                rc = -1;
                goto out;
            }
            vault_call call = {data, len, l->side};
            long first = vault_simulate(app, head, &call, 1, &sim, &method, err, errlen);
            if (first < 0) {
                free(data);
                rc = -1;
                goto out;
            }
            leg_ctx x = {.app = app, .plan = plan, .leg = l};
            if (first == 0) {
                x.status = "failed";
                x.error = sim.reason;
                x.fail_plan = 1;
            } else {
                x.status = "queued";
                x.data = data;
                x.len = len;
            }
            rc = run_fenced(r, leg_tx, &x, err, errlen);
            free(data);
            if (rc != 0)
                goto out;
            changed = 1;
            hook(r, first == 0 ? "failed" : "queued", plan);
            goto out;
        }
        if (strcmp(l->status, "queued") == 0) {
            db_conn *c = db_acquire(app->db, 5000, err, errlen);
            if (!c) {
                rc = -1;
                goto out;
            }
            outbox_row row;
            int got = outbox_get(c, RB_SCHEMA, l->key, &row, err, errlen);
            db_release(app->db, c);
            if (got != 1) {
                rc = got < 0 ? -1 : util_err(err, errlen, "leg %s has no outbox row", l->key);
                goto out;
            }
            leg_ctx x = {
                .app = app, .plan = plan, .leg = l, .tx_hash = row.tx_hash[0] ? row.tx_hash : NULL};
            if (strcmp(row.status, "confirmed") == 0) {
                x.status = "confirmed";
            } else if (strcmp(row.status, "reverted") == 0 || strcmp(row.status, "failed") == 0) {
                x.status = row.status;
                x.error = row.revert_reason[0] ? row.revert_reason : row.error;
                x.fail_plan = 1;
            } else {
                goto out; /* still on its way */
            }
            if ((rc = run_fenced(r, leg_tx, &x, err, errlen)) != 0)
                goto out;
            changed = 1;
            util_strlcpy(l->status, x.status, sizeof l->status);
            hook(r, x.status, plan);
            if (x.fail_plan)
                goto out;
            continue;
        }
        goto out; /* failed / reverted leg: the plan is already failed */
    }
    if (i == n) {
        rc = verify(r, plan, legs, n, err, errlen);
        if (rc > 0) {
            changed = 1;
            rc = 0;
        }
    }
out:
    free(legs);
    return rc < 0 ? -1 : changed;
}

/* ---- one pass */

static int active_plan(rb_app *app, char *id, size_t idlen, char *status, size_t stlen, char *err,
                       size_t errlen)
{
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    PGresult *r = query(c, "rb_active",
                        "SELECT id, status FROM rebalance.rebalance_history WHERE status IN "
                        "('awaiting_approval', 'approved', 'executing')",
                        0, NULL, err, errlen);
    db_release(app->db, c);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found) {
        util_strlcpy(id, PQgetvalue(r, 0, 0), idlen);
        util_strlcpy(status, PQgetvalue(r, 0, 1), stlen);
    }
    PQclear(r);
    return found;
}

/* Pending triggers: 1 with the highest id and the largest L1 asked for, 0 none. */
static int pending_triggers(rb_app *app, char *max_id, size_t len, money_u256 *need, int *has_need,
                            char *err, size_t errlen)
{
    db_conn *c = db_acquire(app->db, 5000, err, errlen);
    if (!c)
        return -1;
    PGresult *r = query(c, "rb_pending",
                        "SELECT max(id)::text, max(l1_needed)::text FROM "
                        "rebalance.rebalance_triggers WHERE consumed_by IS NULL",
                        0, NULL, err, errlen);
    db_release(app->db, c);
    if (!r)
        return -1;
    int found = !PQgetisnull(r, 0, 0);
    if (found) {
        util_strlcpy(max_id, PQgetvalue(r, 0, 0), len);
        *has_need =
            !PQgetisnull(r, 0, 1) && money_from_dec(need, PQgetvalue(r, 0, 1), NULL, 0) == 0;
    }
    PQclear(r);
    return found;
}

static int step_locked(exec_runner *r, char *err, size_t errlen)
{
    rb_app *app = r->app;
    char id[64], status[32];
    int a = active_plan(app, id, sizeof id, status, sizeof status, err, errlen);
    if (a < 0)
        return -1;
    if (a == 1) {
        if (strcmp(status, "awaiting_approval") == 0)
            return 0;
        return advance(r, id, err, errlen);
    }
    char max_id[32];
    money_u256 need;
    int has_need = 0;
    int p = pending_triggers(app, max_id, sizeof max_id, &need, &has_need, err, errlen);
    if (p <= 0)
        return p;
    built b;
    if (build(app, has_need ? &need : NULL, &b, err, errlen) != 0)
        return -1;
    record_ctx x = {.app = app, .b = &b, .max_trigger = max_id};
    uint32_t rnd = 0;
    util_random(&rnd, sizeof rnd);
    snprintf(x.id, sizeof x.id, "rb-%lld-%06x", (long long)util_now_ms(), rnd & 0xffffff);
    int rc = run_fenced(r, record_tx, &x, err, errlen);
    const char *st = b.status;
    if (rc == 0)
        log_info("rebalance plan", "plan", x.id, "status", st, "error", b.error);
    int approved = rc == 0 && strcmp(st, "approved") == 0;
    built_free(&b);
    if (rc != 0)
        return -1;
    hook(r, "planned", x.id);
    if (approved && advance(r, x.id, err, errlen) < 0)
        return -1;
    return 1;
}

int exec_step(exec_runner *r, char *err, size_t errlen)
{
    redisContext *rc = redis(r, err, errlen);
    if (!rc)
        return -1;
    lock_result lr = lock_acquire(rc, EXEC_LOCK_NAME, r->app->lock_ttl_ms, &r->lease, err, errlen);
    if (lr == LOCK_BUSY)
        return 0;
    if (lr != LOCK_OK)
        return -1;
    int out = step_locked(r, err, errlen);
    char e2[UTIL_ERRLEN];
    if (store_out_flush(r->app->db, rc, 200, e2, sizeof e2) < 0)
        log_warn("outgoing messages not published yet", "error", e2);
    lock_release(rc, &r->lease, NULL, 0);
    return out;
}

/* ------------------------------------------------------------------ scheduled check */

typedef struct trig_ctx {
    const char *kind;
    const char *why;
    int added;
} trig_ctx;

static int trig_tx(db_conn *tx, void *ud, char *err, size_t errlen)
{
    trig_ctx *x = ud;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "reason", x->why);
    x->added = store_trigger_add(tx, x->kind, d, NULL, NULL, 1, err, errlen);
    return x->added < 0 ? -1 : 0;
}

int exec_check(rb_app *app, char *err, size_t errlen)
{
    vault_state vs;
    if (vault_read(app, RPC_BLOCK_LATEST, &vs, err, errlen) != 0)
        return -1;
    store_asset *set = NULL;
    size_t nset = 0;
    if (load_settings(app, &set, &nset, err, errlen) != 0) {
        vault_state_free(&vs);
        return -1;
    }
    planner_asset *pa = NULL;
    planner_input in;
    exec_planner_input(app, &vs, set, nset, NULL, &pa, &in);
    char why[256] = "";
    int need =
        planner_needs_rebalance(&in, app->dev_bps, app->l1_lo_bps, app->l1_hi_bps, why, sizeof why);
    free(pa);
    free(set);
    vault_state_free(&vs);
    if (need < 0)
        return util_err(err, errlen, "%s", why);
    if (need == 0)
        return 0;
    trig_ctx x = {strncmp(why, "L1", 2) == 0 ? "l1_band" : "deviation", why, 0};
    if (db_tx(app->db, trig_tx, &x, err, errlen) != 0)
        return -1;
    return x.added;
}
