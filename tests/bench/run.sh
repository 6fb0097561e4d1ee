#!/usr/bin/env bash
# make bench: every benchmark against a throwaway Redis + PostgreSQL of its own (default
# durability settings: fsync and synchronous_commit on), baselines measured in the
# same run so the figures are ratios, not absolute numbers from a noisy machine.
#   BENCH_ONLY (space-separated section names), BENCH_MESSAGES (default 100000), BENCH_RATE for the latency run (default 5000/s)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
base=${PAIMON_BENCH_PORT_BASE:-17050}
export PAIMON_RUN_DIR=$repo/.run/bench-$base PAIMON_REDIS_PORT=$((base + 1)) PAIMON_PG_PORT=$((base + 2))
n=${BENCH_MESSAGES:-100000}
rate=${BENCH_RATE:-5000}
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1' EXIT
rm -rf "$PAIMON_RUN_DIR"; mkdir -p "$repo/.run"
"$repo/deploy/local/stack.sh" start >/dev/null || exit 1
redis_url=redis://127.0.0.1:$PAIMON_REDIS_PORT
pg_url=postgresql://postgres@127.0.0.1:$PAIMON_PG_PORT/paimon
out=$PAIMON_RUN_DIR/bench.jsonl; : > "$out"
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
# BENCH_ONLY="listener api" runs just those sections (names as in the == headers).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
# Each section defines its own stop; these keep the exit traps valid when it is skipped.
chain_stop() { :; }; lst_stop() { :; }; appr_stop() { :; }; risk_stop() { :; }; rb_stop() { :; }; api_stop() { :; }

# Waits for the background work a previous section left behind (autovacuum of its
# 100,000-row tables, a Redis AOF rewrite after its 100,000 XADDs) and checkpoints,
# so a section measures itself and not the one before it. At most 60 s.
quiesce() {
  psql "$pg_url" -qAtc "CHECKPOINT" >/dev/null 2>&1
  local i av busy
  for i in $(seq 1 120); do
    av=$(psql "$pg_url" -qAtc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'" 2>/dev/null)
    busy=$(redis-cli -p "$PAIMON_REDIS_PORT" INFO persistence 2>/dev/null | grep -cE '^(aof_rewrite|rdb_bgsave)_in_progress:1')
    if [ "$av" = 0 ] && [ "$busy" = 0 ]; then return 0; fi
    sleep 0.5
  done
  echo "bench: background work still running after 60 s; measuring anyway" >&2
}

if want bus; then
quiesce
echo "== bus: publish -> consume -> commit row in PostgreSQL -> ack ($n messages)"
xadd=$(redis-benchmark -h 127.0.0.1 -p "$PAIMON_REDIS_PORT" -n 200000 -c 50 -q XADD benchstream '*' f v \
  | tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
redis-cli -p "$PAIMON_REDIS_PORT" DEL benchstream >/dev/null
echo "redis-benchmark XADD (50 clients, no pipelining): ${xadd} ops/s"
declare -A ours bull
for c in 1 4; do
  for h in per-message batch; do
    ours[$c$h]=$("$build/bench/bus_bench" "$redis_url" "$pg_url" "$n" "$c" 0 "$h") || echo "bus_bench failed" >&2
    echo "paimon bus  consumers=$c ${ours[$c$h]}"; echo "${ours[$c$h]}" >> "$out"
  done
  bull[$c]=$(node "$repo/tests/bench/bullmq_bench.mjs" "$PAIMON_REDIS_PORT" "$pg_url" "$n" "$c") || echo "bullmq failed" >&2
  echo "bullmq      concurrency=$c ${bull[$c]}"; echo "${bull[$c]}" >> "$out"
done
lat=$("$build/bench/bus_bench" "$redis_url" "$pg_url" $((rate * 4)) 4 "$rate")
echo "paimon bus  paced ${rate}/s: $lat"
blat=$(node "$repo/tests/bench/bullmq_bench.mjs" "$PAIMON_REDIS_PORT" "$pg_url" $((rate * 4)) 4 "$rate")
echo "bullmq      paced ${rate}/s: $blat"
echo "-- ratios (same run)"
for c in 1 4; do
  for h in per-message batch; do
    o=$(field "${ours[$c$h]}" msgs_per_s); b=$(field "${bull[$c]}" msgs_per_s)
    awk -v o="$o" -v b="$b" -v x="$xadd" -v c="$c" -v h="$h" 'BEGIN { printf "consumers=%d %-11s: paimon %d msg/s = %.1fx BullMQ (%d jobs/s) = %.2f of raw XADD rate; target >= 3x BullMQ and >= 20000 msg/s: %s\n", c, h, o, o/b, b, o/x, (o >= 3*b && o >= 20000) ? "MET" : "NOT MET" }'
  done
done
echo "latency at ${rate}/s: paimon p50 $(field "$lat" p50_ms) ms p99 $(field "$lat" p99_ms) ms; bullmq p50 $(field "$blat" p50_ms) ms p99 $(field "$blat" p99_ms) ms"
# Each benchmark has its own section below (they need different set-ups).

fi

if want chain; then
quiesce
echo "== chain: ABI log decoding, signing, eth_getLogs fetch+decode vs bare fetch (anvil devchain)"
chain_port=$((base + 3))
chain_stop() { PAIMON_ANVIL_PORT=$chain_port "$repo/deploy/devchain/devchain.sh" stop >/dev/null 2>&1; }
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; chain_stop' EXIT
if PAIMON_ANVIL_PORT=$chain_port "$repo/deploy/devchain/devchain.sh" start >"$PAIMON_RUN_DIR/devchain.log" 2>&1; then
  chain=$(PAIMON_REPO=$repo "$build/bench/chain_bench" "$PAIMON_RUN_DIR/devchain.json") || echo "chain_bench failed" >&2
  echo "$chain"; echo "$chain" >> "$out"
  pct=$(sed -n 's/.*"decode_pct_of_fetch":\([0-9.]*\).*/\1/p' <<<"$chain")
  [ -n "$pct" ] && awk -v p="$pct" 'BEGIN { printf "eth_getLogs decode cost = %.1f%% of the bare fetch; target < 20%%: %s\n", p, (p < 20) ? "MET" : "NOT MET" }'
  chain_stop
else
  echo "devchain did not start (see $PAIMON_RUN_DIR/devchain.log)" >&2
fi

fi

if want listener; then
quiesce
echo "== listener: backfill of 100,000+ events vs a bare eth_getLogs loop, live latency block mined -> stream (anvil)"
lst_port=$((base + 10))
lst_anvil=
lst_stop() { if [ -n "$lst_anvil" ]; then kill "$lst_anvil" 2>/dev/null; wait "$lst_anvil" 2>/dev/null; lst_anvil=; fi; }
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; chain_stop; lst_stop' EXIT
# The native anvil, not the node shim, so the pid we stop is anvil itself.
anvil=$repo/deploy/node_modules/.bin/anvil
for b in "$repo"/deploy/node_modules/@foundry-rs/anvil-*/bin/anvil; do [ -x "$b" ] && anvil=$b && break; done
emitter=$PAIMON_RUN_DIR/listener-emitter
if node "$repo/tests/integration/data/listener/build.mjs" "$emitter" >"$PAIMON_RUN_DIR/listener-anvil.log" 2>&1; then
  "$anvil" --host 127.0.0.1 --port "$lst_port" --silent >>"$PAIMON_RUN_DIR/listener-anvil.log" 2>&1 &
  lst_anvil=$!
  lst=$(PAIMON_REPO=$repo "$build/bench/listener_bench" "http://127.0.0.1:$lst_port" "$redis_url" "$pg_url" \
    "$emitter" "$build/bin/paimon-listener" $((base + 11)) "$PAIMON_RUN_DIR") || echo "listener_bench failed" >&2
  if [ -n "$lst" ]; then
    echo "$lst"; echo "$lst" >> "$out"
    bare=$(grep '"bare_eth_getLogs"' <<<"$lst"); back=$(grep '"listener_backfill"' <<<"$lst")
    live=$(grep '"listener_live_latency"' <<<"$lst"); cpu=$(grep '"listener_backfill_cpu"' <<<"$lst")
    [ -n "$back" ] && awk -v l="$(field "$back" events_per_s)" -v b="$(field "$bare" events_per_s)" \
      'BEGIN { printf "listener backfill %d events/s (median of 3 runs) = %.2fx the bare eth_getLogs loop (%d events/s, median of 3); target >= 0.8x: %s\n", l, l/b, b, (l >= 0.8*b) ? "MET" : "NOT MET" }'
    [ -n "$cpu" ] && awk -v pg="$(field "$cpu" postgres_cpu_s)" -v r="$(field "$cpu" redis_cpu_s)" \
      -v a="$(field "$cpu" anvil_cpu_s)" -v l="$(field "$cpu" listener_cpu_s)" -v s="$(field "$cpu" seconds)" \
      -v n="$(field "$cpu" cores)" -v f="$(field "$cpu" floor_s_without_listener)" -v c="$(field "$cpu" ratio_ceiling)" \
      -v cl="$(field "$cpu" ratio_ceiling_with_listener)" \
      'BEGIN { printf "  CPU over the median run (%.2f s): postgres %.2f s, redis %.2f s, anvil %.2f s, listener %.2f s; on %d cores the first three alone need >= %.2f s: ratio ceiling %.2fx (%.2fx with the listener'"'"'s own CPU)\n", s, pg, r, a, l, n, f, c, cl }'
    [ -n "$live" ] && awk -v p50="$(field "$live" p50_ms)" -v p99="$(field "$live" p99_ms)" \
      'BEGIN { printf "live latency block mined -> stream (0 confirmations): p50 %d ms p99 %d ms; target p99 < 100 ms: %s\n", p50, p99, (p99 < 100) ? "MET" : "NOT MET" }'
  fi
  lst_stop
else
  echo "cannot build the Emitter fixture (see $PAIMON_RUN_DIR/listener-anvil.log)" >&2
fi

fi

if want notifier; then
quiesce
echo "== notifier: alerts stream -> paimon-notifier -> local Slack-like receiver (real daemon)"
ntf=$(PAIMON_REPO=$repo "$build/bench/notifier_bench" "$redis_url" \
  "postgresql://postgres@127.0.0.1:$PAIMON_PG_PORT/postgres" "$build/bin/paimon-notifier" \
  $((base + 20)) $((base + 21)) "${BENCH_ALERTS:-5000}" 500 50 "$PAIMON_RUN_DIR") || echo "notifier_bench failed" >&2
if [ -n "$ntf" ]; then
  echo "$ntf"; echo "$ntf" >> "$out"
  nl=$(grep '"notifier_latency"' <<<"$ntf")
  [ -n "$nl" ] && awk -v p99="$(field "$nl" p99_ms)" \
    'BEGIN { printf "critical alert publish -> receiver p99 %.1f ms; target < 200 ms: %s\n", p99, (p99 < 200) ? "MET" : "NOT MET" }'
fi

fi

if want approval; then
quiesce
echo "== approval: redemption events handled end to end by paimon-approval (stream -> tables -> ack), 10,000 queued, vs the bus's no-op handler (anvil)"
appr_port=$((base + 30))
appr_stop() { PAIMON_ANVIL_PORT=$appr_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/approval "$repo/deploy/devchain/devchain.sh" stop >/dev/null 2>&1; }
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; chain_stop; lst_stop; appr_stop' EXIT
mkdir -p "$PAIMON_RUN_DIR/approval"
if PAIMON_ANVIL_PORT=$appr_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/approval "$repo/deploy/devchain/devchain.sh" start >"$PAIMON_RUN_DIR/approval-devchain.log" 2>&1; then
  for c in 1 4; do
    appr=$(PAIMON_REPO=$repo "$build/bench/approval_bench" "$redis_url" \
      "postgresql://postgres@127.0.0.1:$PAIMON_PG_PORT/postgres" "$build/bin/paimon-approval" \
      $((base + 31)) "$PAIMON_RUN_DIR/approval/devchain.json" "${BENCH_REDEMPTIONS:-10000}" "$c" "$PAIMON_RUN_DIR") || echo "approval_bench failed" >&2
    [ -n "$appr" ] || continue
    echo "$appr"; echo "$appr" >> "$out"
    an=$(grep '"bus_noop_handler"' <<<"$appr"); ad=$(grep '"approval_redemption_events"' <<<"$appr")
    [ -n "$ad" ] && awk -v d="$(field "$ad" events_per_s)" -v b="$(field "$an" events_per_s)" -v c="$c" \
      'BEGIN { printf "consumers=%d: paimon-approval %d redemption events/s end to end = %.1f%% of the bus no-op handler rate (%d/s) in the same run\n", c, d, (b > 0) ? 100*d/b : 0, b }'
  done
  appr_stop
else
  echo "devchain did not start (see $PAIMON_RUN_DIR/approval-devchain.log)" >&2
fi

fi

if want risk; then
quiesce
echo "== risk: one full metrics cycle on a devchain vault listing 50 assets; 1 year of minute data resampled to 1 d / 1 h"
risk_port=$((base + 40))
risk_stop() { PAIMON_ANVIL_PORT=$risk_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/risk "$repo/deploy/devchain/devchain.sh" stop >/dev/null 2>&1; }
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; for f in chain_stop lst_stop appr_stop risk_stop; do declare -F $f >/dev/null && $f; done' EXIT
mkdir -p "$PAIMON_RUN_DIR/risk"
# The fixture's four assets plus 46 seeded ones (deploy.mjs --extra-assets), each with its
# own aggregator and a holding.
if PAIMON_DEVCHAIN_EXTRA_ASSETS=46 PAIMON_ANVIL_PORT=$risk_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/risk "$repo/deploy/devchain/devchain.sh" start >"$PAIMON_RUN_DIR/risk-devchain.log" 2>&1; then
  rsk=$(PAIMON_REPO=$repo "$build/bench/risk_bench" "$PAIMON_RUN_DIR/risk/devchain.json" \
    "postgresql://postgres@127.0.0.1:$PAIMON_PG_PORT/postgres" 50 "$redis_url" 2>"$PAIMON_RUN_DIR/risk-bench.log") || echo "risk_bench failed" >&2
  if [ -n "$rsk" ]; then
    echo "$rsk"; echo "$rsk" >> "$out"
    rc=$(grep '"risk_cycle"' <<<"$rsk"); rh=$(grep '"risk_history"' <<<"$rsk")
    [ -n "$rc" ] && echo "risk cycle (chain read at a pinned block + compute + store + publish) with $(field "$rc" assets) assets listed on the vault: p50 $(field "$rc" p50_ms) ms p99 $(field "$rc" p99_ms) ms (chain read mean $(field "$rc" chain_read_mean_ms) ms)"
    [ -n "$rh" ] && awk -v p="$(field "$rh" p50_1d_ms)" -v q="$(field "$rh" p99_1d_ms)" -v r="$(field "$rh" rows)" \
      'BEGIN { printf "risk history %d minute rows -> 1 d buckets: p50 %.1f ms p99 %.1f ms; target < 50 ms: %s\n", r, p, q, (q < 50) ? "MET" : "NOT MET" }'
  fi
  risk_stop
else
  echo "risk devchain did not start (see $PAIMON_RUN_DIR/risk-devchain.log)" >&2
fi

fi

if want rebalance; then
quiesce
echo "== rebalance: planner time for 200 assets; preview latency (plan + eth_simulateV1) on a real paimon-rebalance (anvil)"
rb_port=$((base + 50))
rb_stop() { PAIMON_ANVIL_PORT=$rb_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/rebalance "$repo/deploy/devchain/devchain.sh" stop >/dev/null 2>&1; }
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; for f in chain_stop lst_stop appr_stop risk_stop rb_stop; do declare -F $f >/dev/null && $f; done' EXIT
mkdir -p "$PAIMON_RUN_DIR/rebalance"
if PAIMON_ANVIL_PORT=$rb_port PAIMON_RUN_DIR=$PAIMON_RUN_DIR/rebalance "$repo/deploy/devchain/devchain.sh" start \
    >"$PAIMON_RUN_DIR/rebalance-devchain.log" 2>&1; then
  rb=$(PAIMON_REPO=$repo "$build/bench/rebalance_bench" "$PAIMON_RUN_DIR/rebalance/devchain.json" "$redis_url" \
    "$pg_url" "$build/bin/paimon-rebalance" $((base + 51)) "$PAIMON_RUN_DIR") || echo "rebalance_bench failed" >&2
  rb_stop
else
  echo "rebalance devchain did not start (see $PAIMON_RUN_DIR/rebalance-devchain.log)" >&2
  rb=$("$build/bench/rebalance_bench") || echo "rebalance_bench failed" >&2
fi
if [ -n "${rb:-}" ]; then
  echo "$rb"; echo "$rb" >> "$out"
  rp=$(grep '"rebalance_planner"' <<<"$rb"); rv=$(grep '"rebalance_preview"' <<<"$rb")
  [ -n "$rp" ] && awk -v p99="$(field "$rp" p99_us)" -v p50="$(field "$rp" p50_us)" \
    'BEGIN { printf "planner, 200 assets: p50 %d us p99 %d us; target < 1 ms: %s\n", p50, p99, (p99 < 1000) ? "MET" : "NOT MET" }'
  [ -n "$rv" ] && echo "preview latency against the devchain: p50 $(field "$rv" p50_ms) ms p99 $(field "$rv" p99_ms) ms"
fi

fi

if want api; then
quiesce
echo "== api: wrk GET /api/v1/fund/overview with a valid token, paimon-api vs FastAPI + uvicorn (same JSON, same JWT check), same run"
api_port=$((base + 60)) api_up=$((base + 61)) api_peer=$((base + 62))
api_pids=()
api_stop() { for p in "${api_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; api_pids=(); }
# shellcheck disable=SC2154 # f is the loop variable inside the trap string
trap '"$repo/deploy/local/stack.sh" stop >/dev/null 2>&1; for f in chain_stop lst_stop appr_stop risk_stop rb_stop api_stop; do declare -F $f >/dev/null && $f; done' EXIT
api_secret=bench-secret-bench-secret-bench-secret
api_cpus=$(nproc)
api_dur=${BENCH_API_SECONDS:-10}
api_conns=${BENCH_API_CONNECTIONS:-64}
export BENCH_JWT_SECRET=$api_secret BENCH_JWT_ISSUER=paimon-api
if command -v wrk >/dev/null && /usr/bin/python3 -c 'import fastapi, uvicorn, jwt' 2>/dev/null; then
  "$build/bin/paimon-migrate" --dir "$repo/migrations" --db "$pg_url" up api >"$PAIMON_RUN_DIR/api-migrate.log" 2>&1 || echo "api migrations failed" >&2
  # The risk service's internal overview, served by the peer app's internal route.
  /usr/bin/python3 -m uvicorn --app-dir "$repo/tests/bench" api_bench:app --host 127.0.0.1 --port "$api_up" \
    --log-level warning >"$PAIMON_RUN_DIR/api-upstream.log" 2>&1 &
  api_pids+=($!)
  PAIMON_HTTP_PORT=$api_port PAIMON_WS_PORT=0 PAIMON_REDIS_URL=$redis_url \
  PAIMON_DATABASE_URL="postgresql://paimon_api@127.0.0.1:$PAIMON_PG_PORT/paimon" \
  PAIMON_JWT_SECRET=$api_secret PAIMON_BOOTSTRAP_ADMIN_EMAIL=bench@example.com \
  PAIMON_BOOTSTRAP_ADMIN_PASSWORD=bench-password PAIMON_LOG_LEVEL=warn \
  PAIMON_RATE_LIMIT_IP=10000000 PAIMON_RATE_LIMIT_PRINCIPAL=10000000 PAIMON_RATE_LIMIT_BURST=10000000 \
  PAIMON_INTERNAL_URL_RISK=http://127.0.0.1:$api_up PAIMON_OPENAPI_PATH=$repo/schemas/openapi.yaml \
    "$build/bin/paimon-api" >"$PAIMON_RUN_DIR/api.log" 2>&1 &
  api_pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$api_port/health/ready" >/dev/null 2>&1 && \
    curl -sf "http://127.0.0.1:$api_up/v1/fund/overview" >/dev/null 2>&1 && break; sleep 0.1; done
  api_token=$(curl -s -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' \
    "http://127.0.0.1:$api_port/api/v1/auth/login" | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
  api_url=http://127.0.0.1:$api_port/api/v1/fund/overview
  api_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $api_token" "$api_url")
  peer_url=http://127.0.0.1:$api_peer/api/v1/fund/overview
  if [ -z "$api_token" ] || [ "$api_code" != 200 ]; then
    echo "paimon-api did not serve the overview (login token '${api_token:0:12}', status $api_code; see $PAIMON_RUN_DIR/api.log)" >&2
  else
    api_wrk() { BENCH_TOKEN=$api_token BENCH_DELAY_MS=${3:-0} wrk -t2 -c"$2" -d"${api_dur}s" --latency \
      -s "$repo/tests/bench/api_bench.lua" "$1" 2>&1 | sed -n 's/^BENCH_JSON //p'; }
    api_res=$(api_wrk "$api_url" "$api_conns")
    echo "{\"bench\":\"api_paimon_peak\",\"connections\":$api_conns,\"loops\":$api_cpus,${api_res#\{}"; echo "{\"bench\":\"api_paimon_peak\",${api_res#\{}" >> "$out"
    /usr/bin/python3 -m uvicorn --app-dir "$repo/tests/bench" api_bench:app --host 127.0.0.1 --port "$api_peer" \
      --workers "$api_cpus" --log-level warning --no-access-log >"$PAIMON_RUN_DIR/api-peer.log" 2>&1 &
    api_pids+=($!)
    for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $api_token" "$peer_url")" = 200 ] && break; sleep 0.1; done
    api_peer_res=$(api_wrk "$peer_url" "$api_conns")
    echo "{\"bench\":\"api_fastapi_peak\",\"connections\":$api_conns,\"workers\":$api_cpus,${api_peer_res#\{}"; echo "{\"bench\":\"api_fastapi_peak\",${api_peer_res#\{}" >> "$out"
    # Half our peak, paced: c connections each sending one request every d ms.
    api_half=$(awk -v r="$(field "$api_res" rps)" 'BEGIN { printf "%d", r / 2 }')
    pace_d=10; pace_c=$(awk -v h="$api_half" -v d="$pace_d" 'BEGIN { c = int(h * d / 1000 + 0.5); if (c < 1) c = 1; print c }')
    api_paced=$(api_wrk "$api_url" "$pace_c" "$pace_d")
    echo "{\"bench\":\"api_paimon_paced\",\"target_rps\":$api_half,\"connections\":$pace_c,${api_paced#\{}"; echo "{\"bench\":\"api_paimon_paced\",${api_paced#\{}" >> "$out"
    awk -v o="$(field "$api_res" rps)" -v p="$(field "$api_peer_res" rps)" -v op99="$(field "$api_res" p99_ms)" -v pp99="$(field "$api_peer_res" p99_ms)" \
      'BEGIN { printf "paimon-api %d req/s (p99 %.2f ms) = %.1fx FastAPI+uvicorn %d req/s (p99 %.2f ms), %d connections; target >= 10x: %s\n", o, op99, (p>0)?o/p:0, p, pp99, '"$api_conns"', (o >= 10*p) ? "MET" : "NOT MET" }'
    awk -v r="$(field "$api_paced" rps)" -v h="$api_half" -v p99="$(field "$api_paced" p99_ms)" -v n="$(field "$api_paced" non2xx)" \
      'BEGIN { printf "paced at half our peak (target %d req/s, achieved %d): p99 %.2f ms, non-2xx %d; target p99 < 5 ms: %s\n", h, r, p99, n, (p99 < 5) ? "MET" : "NOT MET" }'
  fi
  api_stop
else
  echo "wrk or the FastAPI/uvicorn/PyJWT Debian packages are missing (make deps installs them)" >&2
fi
fi
