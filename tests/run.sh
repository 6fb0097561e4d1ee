#!/usr/bin/env bash
# Test harness: starts a throwaway Redis + PostgreSQL (and anvil when the devchain is
# present) on its own loopback ports in a run folder of the repo, runs every test
# binary under $BUILD/tests, and ends with one line: "N passed, N failed".
#   PAIMON_TEST_PORT_BASE  first port of this run's block (default 17100)
#   TESTS="unit/test_money ..." run only these
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
base=${PAIMON_TEST_PORT_BASE:-17100}
export PAIMON_RUN_DIR=$repo/.run/test-$base
export PAIMON_REDIS_PORT=$((base + 1)) PAIMON_PG_PORT=$((base + 2)) PAIMON_PG_FAST=1
export PAIMON_TEST_REDIS_PORT=$PAIMON_REDIS_PORT PAIMON_TEST_PG_PORT=$PAIMON_PG_PORT
export PAIMON_TEST_PORT_BASE=$base PAIMON_REPO=$repo PAIMON_BUILD=$repo/$build
export PAIMON_TEST_RUN_DIR=$PAIMON_RUN_DIR
export CMOCKA_MESSAGE_OUTPUT=TAP

export PAIMON_ANVIL_PORT=$((base + 3))
cleanup() {
  "$repo/deploy/devchain/devchain.sh" stop >/dev/null 2>&1 || true
  "$repo/deploy/local/stack.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
rm -rf "$PAIMON_RUN_DIR"; mkdir -p "$repo/.run"
if ! "$repo/deploy/local/stack.sh" start >"$repo/.run/test-$base.stack.log" 2>&1; then
  cat "$repo/.run/test-$base.stack.log" >&2
  echo "0 passed, 1 failed"; exit 1
fi

if ! "$repo/deploy/devchain/devchain.sh" start >>"$repo/.run/test-$base.stack.log" 2>&1; then
  cat "$repo/.run/test-$base.stack.log" >&2
  echo "0 passed, 1 failed"; exit 1
fi
export PAIMON_DEVCHAIN_JSON=$PAIMON_RUN_DIR/devchain.json

list=${TESTS:-$(cd "$build/tests" 2>/dev/null && find unit integration -type f -perm -u+x 2>/dev/null | sort)}
passed=0; failed=0; failed_names=()
for t in $list; do
  bin="$build/tests/$t"
  log="$PAIMON_RUN_DIR/logs/${t//\//_}.log"; mkdir -p "$(dirname "$log")"
  start=$(date +%s%N)
  timeout 300 "$bin" >"$log" 2>&1; rc=$?
  plan=$(grep -E '^1\.\.[0-9]+' "$log" | tail -1 | cut -d. -f3)
  ok=$(grep -cE '^ok [0-9]+' "$log"); nok=$(grep -cE '^not ok [0-9]+' "$log")
  [ -n "$plan" ] || plan=$((ok + nok))
  missing=$((plan - ok - nok)); [ $missing -lt 0 ] && missing=0
  nok=$((nok + missing))
  # A binary that crashed or leaked (sanitizers exit non-zero) fails even if its tests said ok.
  if [ $rc -ne 0 ] && [ $nok -eq 0 ]; then nok=1; [ $ok -gt 0 ] && ok=$((ok - 1)); fi
  passed=$((passed + ok)); failed=$((failed + nok))
  ms=$((($(date +%s%N) - start) / 1000000)); dur="$((ms / 1000)).$((ms % 1000 / 100))"
  if [ $nok -gt 0 ]; then
    failed_names+=("$t"); echo "FAIL $t ($ok ok, $nok failed, rc=$rc, ${dur}s)"
    grep -E '^not ok|ERROR|error|Assert|FAIL|Sanitizer|runtime error' "$log" | head -20 | sed 's/^/    /'
    echo "    full log: $log"
  else
    echo "ok   $t ($ok tests, ${dur}s)"
  fi
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed binaries: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
