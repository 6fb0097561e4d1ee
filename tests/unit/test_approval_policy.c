/* Unit tests of the approval service's domain rules (services/approval/policy.c and the
 * block-time parser of book.c): thresholds per channel (below, exactly at, above),
 * approval tiers at their boundaries, T+7 / T+1 due times, SLA step math, role ranks,
 * policy validation, and the settlement forecast. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "approval/book.h"
#include "approval/policy.h"

static money_u256 usdt(uint64_t whole)
{
    money_u256 w, s, out;
    money_from_u64(&w, whole);
    money_from_u64(&s, 1000000000000000000ULL);
    assert_int_equal(money_mul(&out, &w, &s), 0);
    return out;
}

static money_u256 plus1(money_u256 v)
{
    money_u256 one;
    money_from_u64(&one, 1);
    assert_int_equal(money_add(&v, &v, &one), 0);
    return v;
}

static money_u256 minus1(money_u256 v)
{
    money_u256 one;
    money_from_u64(&one, 1);
    assert_int_equal(money_sub(&v, &v, &one), 0);
    return v;
}

static void test_thresholds(void **state)
{
    (void)state;
    pol_policy p;
    pol_defaults(&p);
    money_u256 std = usdt(100000), em = usdt(30000), rb = usdt(50000);
    /* Strictly above needs a ticket; exactly at the threshold is approved automatically. */
    assert_int_equal(pol_needs_ticket(&p, POL_STANDARD, &std), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_STANDARD, (money_u256[]){plus1(std)}), 1);
    assert_int_equal(pol_needs_ticket(&p, POL_STANDARD, (money_u256[]){minus1(std)}), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_EMERGENCY, &em), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_EMERGENCY, (money_u256[]){plus1(em)}), 1);
    /* An emergency redemption of 50K needs a ticket, a standard one does not. */
    money_u256 fifty = usdt(50000);
    assert_int_equal(pol_needs_ticket(&p, POL_EMERGENCY, &fifty), 1);
    assert_int_equal(pol_needs_ticket(&p, POL_STANDARD, &fifty), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_REBALANCE, &rb), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_REBALANCE, (money_u256[]){plus1(rb)}), 1);
    /* Manual operations always need approval, even for nothing. */
    money_u256 zero;
    money_zero(&zero);
    assert_int_equal(pol_needs_ticket(&p, POL_OTHER, &zero), 1);
}

static void test_tiers(void **state)
{
    (void)state;
    pol_policy p;
    pol_defaults(&p);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){minus1(usdt(100000))}), 1);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){usdt(100000)}), 2);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){minus1(usdt(1000000))}), 2);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){usdt(1000000)}), 3);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){usdt(50000000)}), 3);
    /* Tiers are configuration. */
    assert_int_equal(pol_set(&p, "tier.3.approvals", "5", NULL, 0), 0);
    assert_int_equal(pol_required_approvals(&p, (money_u256[]){usdt(2000000)}), 5);
}

static void test_due_times(void **state)
{
    (void)state;
    pol_policy p;
    pol_defaults(&p);
    int64_t bt = 1767225600000LL; /* 2026-01-01T00:00:00Z */
    assert_int_equal(pol_due_ms(&p, 0, bt), bt + 7LL * 86400000);
    assert_int_equal(pol_due_ms(&p, 1, bt), bt + 86400000LL);
    assert_int_equal(pol_set(&p, "settle.standard_s", "3600", NULL, 0), 0);
    assert_int_equal(pol_due_ms(&p, 0, bt), bt + 3600000LL);
    int64_t ms = 0;
    assert_int_equal(book_parse_time("2026-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, bt);
    assert_int_equal(book_parse_time("2026-01-01T00:00:01.250Z", &ms), 0);
    assert_int_equal(ms, bt + 1250);
    assert_int_equal(book_parse_time("2026-01-01T00:00:01.5Z", &ms), 0);
    assert_int_equal(ms, bt + 1500);
    assert_int_equal(book_parse_time("2026-01-01 00:00:00Z", &ms), -1);
    assert_int_equal(book_parse_time("2026-01-01T00:00:00+01:00", &ms), -1);
    assert_int_equal(book_parse_time("2026-13-01T00:00:00Z", &ms), -1);
    assert_int_equal(book_parse_time("2026-01-01T00:00:00.Z", &ms), -1);
    assert_int_equal(book_parse_time(NULL, &ms), -1);
}

static void test_sla_math(void **state)
{
    (void)state;
    pol_policy p;
    pol_defaults(&p);
    int64_t t0 = 1000000, sla = pol_sla_ms(&p, POL_EMERGENCY);
    assert_int_equal(sla, 2 * 3600 * 1000);
    assert_int_equal(pol_sla_ms(&p, POL_STANDARD), 24 * 3600 * 1000);
    assert_int_equal(pol_sla_ms(&p, POL_REBALANCE), 4 * 3600 * 1000);
    assert_int_equal(pol_sla_step_ms(&p, t0, sla, 1), t0 + sla / 2);
    assert_int_equal(pol_sla_step_ms(&p, t0, sla, 2), t0 + sla);
    assert_int_equal(pol_sla_step_ms(&p, t0, sla, 3), t0 + 2 * sla);
    assert_int_equal(pol_sla_step_ms(&p, t0, sla, 4), -1);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0), 0);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + sla / 2 - 1), 0);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + sla / 2), 1);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + sla - 1), 1);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + sla), 2);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + 2 * sla), 3);
    assert_int_equal(pol_sla_step_at(&p, t0, sla, t0 + 100 * sla), 3);
}

static void test_roles(void **state)
{
    (void)state;
    assert_true(pol_role_rank("viewer") < pol_role_rank("operator"));
    assert_true(pol_role_rank("operator") < pol_role_rank("admin"));
    assert_true(pol_role_rank("admin") < pol_role_rank("super_admin"));
    assert_int_equal(pol_role_rank("root"), -1);
    assert_int_equal(pol_role_rank("Operator"), -1);
    assert_int_equal(pol_role_rank(NULL), -1);
}

static void test_policy_validation(void **state)
{
    (void)state;
    pol_policy p, before;
    pol_defaults(&p);
    before = p;
    char err[256];
    assert_int_equal(pol_set(&p, "threshold.nope", "1", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "threshold.standard", "-1", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "threshold.standard", "1e5", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "threshold.standard", "", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "tier.1.approvals", "0", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "tier.1.approvals", "21", err, sizeof err), -1);
    /* Cross-key consistency: tiers and SLA percentages must keep their order. */
    assert_int_equal(pol_set(&p, "tier.1.below", "1000000000000000000000000", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "sla.reminder_pct", "100", err, sizeof err), -1);
    assert_int_equal(pol_set(&p, "tier.1.approvals", "3", err, sizeof err), -1);
    assert_memory_equal(&p, &before, sizeof p); /* untouched on every failure */
    assert_int_equal(pol_set(&p, "threshold.standard", "5", err, sizeof err), 0);
    assert_int_equal(pol_needs_ticket(&p, POL_STANDARD, (money_u256[]){usdt(1)}), 1);
    assert_true(pol_known_key("sla.escalate_super_pct"));
    assert_false(pol_known_key("sla.escalate"));
    cJSON *j = pol_to_json(&p);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "threshold.standard")), "5");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "threshold.emergency")),
                        "30000000000000000000000");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "sla.emergency_s")), "7200");
    cJSON_Delete(j);
}

static void test_forecast(void **state)
{
    (void)state;
    int64_t day = 86400000LL, today = 1767225600000LL, now = today + 5 * 3600000LL;
    pol_due items[] = {
        {today - 3 * day, usdt(10)},      /* overdue: day 0 */
        {now + 1000, usdt(20)},           /* today */
        {today + day + 5, usdt(30)},      /* tomorrow */
        {today + 6 * day + 1, usdt(40)},  /* last day of a 7-day horizon */
        {today + 7 * day, usdt(1000000)}, /* beyond the horizon: ignored */
    };
    pol_day out[7];
    money_u256 l1 = usdt(60);
    int first = pol_forecast(items, 5, &l1, now, 7, out);
    assert_int_equal(first, 6); /* 10 + 20 + 30 = 60 exactly covered on day 1 */
    /* One unit less and day 1 is already short. */
    money_u256 l1b = usdt(59);
    assert_int_equal(pol_forecast(items, 5, &l1b, now, 7, out), 1);
    first = pol_forecast(items, 5, &l1, now, 7, out);
    assert_int_equal(out[0].day_ms, today);
    assert_int_equal(out[0].count, 2);
    assert_int_equal(money_cmp(&out[0].due, (money_u256[]){usdt(30)}), 0);
    assert_int_equal(out[1].count, 1);
    assert_int_equal(money_cmp(&out[1].cumulative, (money_u256[]){usdt(60)}), 0);
    assert_true(money_is_zero(&out[1].shortfall));
    assert_int_equal(out[6].count, 1);
    assert_int_equal(money_cmp(&out[6].cumulative, (money_u256[]){usdt(100)}), 0);
    assert_int_equal(money_cmp(&out[6].shortfall, (money_u256[]){usdt(40)}), 0);
    assert_int_equal(first, 6);
    /* Plenty of L1: no shortfall day (returns the horizon). */
    money_u256 rich = usdt(1000);
    assert_int_equal(pol_forecast(items, 5, &rich, now, 7, out), 7);
    assert_int_equal(pol_forecast(NULL, 0, &rich, now, 7, out), 7);
    assert_int_equal(pol_forecast(items, 5, &rich, now, 0, out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thresholds), cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_due_times),  cmocka_unit_test(test_sla_math),
        cmocka_unit_test(test_roles),      cmocka_unit_test(test_policy_validation),
        cmocka_unit_test(test_forecast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
