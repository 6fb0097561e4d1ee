#!/usr/bin/env bash
# make valgrind: every daemon started and stopped under valgrind on a private local stack
# (deploy/local/run.sh with its own ports and run folder), then each daemon's report must
# show no errors and nothing definitely or indirectly lost. Slow (valgrind), so not part
# of make test.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
base=${PAIMON_VG_PORT_BASE:-17900}
export PAIMON_RUN_DIR=$repo/.run/valgrind-$base BUILD=${BUILD:-$repo/build}
export PAIMON_REDIS_PORT=$((base + 1)) PAIMON_PG_PORT=$((base + 2)) PAIMON_ANVIL_PORT=$((base + 3))
export PAIMON_LOCAL_HTTP_BASE=$((base + 30)) PAIMON_WS_PORT=$((base + 40)) PAIMON_STOP_WAIT_S=60
vg=$PAIMON_RUN_DIR/valgrind
export PAIMON_DAEMON_WRAP="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --log-file=$vg/{name}.log"
rm -rf "$PAIMON_RUN_DIR"; mkdir -p "$vg"
trap '"$repo/deploy/local/run.sh" stop >/dev/null 2>&1' EXIT
"$repo/deploy/local/run.sh" start >"$PAIMON_RUN_DIR/start.log" 2>&1 || { cat "$PAIMON_RUN_DIR/start.log"; exit 1; }
# Let each daemon get through start-up (under valgrind) and serve its health endpoint.
for i in 0 1 2 3 4 5; do
  port=$((PAIMON_LOCAL_HTTP_BASE + i))
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null 2>&1 && break; sleep 0.2; done
done
sleep "${PAIMON_VG_RUN_S:-5}"
"$repo/deploy/local/run.sh" stop >/dev/null 2>&1
trap - EXIT
fail=0
for d in listener approval rebalance risk notifier api; do
  f=$vg/$d.log
  if [ ! -s "$f" ]; then echo "$d: no valgrind report"; fail=1; continue; fi
  errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
  def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1)
  ind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1)
  echo "$d: errors ${errs:-?}, definitely lost ${def:-0} bytes, indirectly lost ${ind:-0} bytes (report $f)"
  [ "${errs:-1}" = 0 ] && [ "${def:-0}" = 0 ] && [ "${ind:-0}" = 0 ] || fail=1
done
[ $fail = 0 ] && echo "valgrind: every daemon clean" || echo "valgrind: FAILED"
exit $fail
