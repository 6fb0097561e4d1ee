#!/usr/bin/env bash
# The local EVM devnet: anvil (npm) on a loopback port with the PaimonVault fixture
# deployed and seeded. Writes $PAIMON_RUN_DIR/devchain.json (addresses, dev accounts) for
# the daemons and tests. Dev keys only: the accounts come from anvil's well-known mnemonic.
#
#   devchain.sh start|stop|status
#   PAIMON_RUN_DIR          run folder                        (default <repo>/.run/local)
#   PAIMON_ANVIL_PORT       JSON-RPC + WebSocket port         (default 8545)
#   PAIMON_CHAIN_ID         chain id                          (default 31337)
#   PAIMON_ANVIL_BLOCK_TIME seconds per block after seeding   (default: automine)
#   PAIMON_DEVCHAIN_CACHE   compiled-contract cache           (default <repo>/.run/devchain-cache)
#   PAIMON_DEVCHAIN_EXTRA_ASSETS  assets listed after the fixture's four (default 0; deploy.mjs)
#   PAIMON_DEVCHAIN_PROFILE fixture (tests' numbers) | healthy (local demo fund)  (default fixture)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${PAIMON_RUN_DIR:-$repo/.run/local}
port=${PAIMON_ANVIL_PORT:-8545}
chain_id=${PAIMON_CHAIN_ID:-31337}
block_time=${PAIMON_ANVIL_BLOCK_TIME:-0}
extra_assets=${PAIMON_DEVCHAIN_EXTRA_ASSETS:-}
profile=${PAIMON_DEVCHAIN_PROFILE:-fixture}
cache=${PAIMON_DEVCHAIN_CACHE:-$repo/.run/devchain-cache}
nm=$repo/deploy/node_modules
dir=$run/anvil
pidfile=$dir/anvil.pid
out=$run/devchain.json
rpc_url=http://127.0.0.1:$port
ws_url=ws://127.0.0.1:$port
mnemonic="test test test test test test test test test test test junk"

case "$port$chain_id$block_time$extra_assets" in
  *[!0-9]*) echo "devchain: PAIMON_ANVIL_PORT, PAIMON_CHAIN_ID, PAIMON_ANVIL_BLOCK_TIME and PAIMON_DEVCHAIN_EXTRA_ASSETS must be numbers" >&2; exit 2 ;;
esac
case "$profile" in
  fixture|healthy) ;;
  *) echo "devchain: PAIMON_DEVCHAIN_PROFILE must be fixture or healthy" >&2; exit 2 ;;
esac
seed_args=(--profile "$profile")
if [ -n "$extra_assets" ]; then seed_args+=(--extra-assets "$extra_assets"); fi

# The platform packages' native binaries start faster than the node wrappers, and the pid
# file must name anvil itself so stop signals reach it.
tool() {
  local b
  for b in "$nm"/@foundry-rs/"$1"-*/bin/"$1"; do
    if [ -x "$b" ]; then echo "$b"; return 0; fi
  done
  echo "$nm/.bin/$1"
}
cast=$(tool cast)

rpc_up() { [ "$("$cast" chain-id --rpc-timeout 2 -r "$rpc_url" 2>/dev/null)" = "$chain_id" ]; }
# A stale pid file may name a recycled pid: only an anvil process counts as ours.
ours_alive() {
  local pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q anvil
}
vault_of() {
  node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (d.chainId === Number(process.argv[2]) && d.contracts && d.contracts.vault) console.log(d.contracts.vault)' \
    "$out" "$chain_id" 2>/dev/null
}

# devchain.json is valid when it names this chain and the vault has code on it.
deployed() {
  [ -f "$out" ] || return 1
  local vault code
  vault=$(vault_of) || return 1
  [ -n "$vault" ] || return 1
  code=$("$cast" code --rpc-timeout 2 -r "$rpc_url" "$vault" 2>/dev/null) || return 1
  [ "${#code}" -gt 2 ]
}

stop_anvil() {
  if ours_alive; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

status() {
  if ours_alive && rpc_up; then
    echo "anvil      up   $rpc_url (chain $chain_id, block $("$cast" block-number -r "$rpc_url"), pid $(cat "$pidfile"))"
    if deployed; then
      echo "devchain   vault $(vault_of) ($out)"
    else
      echo "devchain   not deployed"; return 1
    fi
  else
    echo "anvil      down $rpc_url"; return 1
  fi
}

start() {
  if ours_alive && rpc_up && deployed; then status; return 0; fi
  stop_anvil
  if rpc_up; then
    echo "devchain: port $port already answers JSON-RPC but is not our anvil ($pidfile)" >&2; return 1
  fi
  mkdir -p "$dir"
  # The chain persists in the run folder (anvil --state, dumped every few seconds and
  # on exit), so `make stop` / `make run` resumes the same chain — same block hashes —
  # instead of a new one the listener would have to treat as a reorg of everything.
  local state=$dir/state.json resume=0
  if [ -s "$state" ] && [ -f "$out" ]; then resume=1; else rm -f "$state" "$out" "$dir/accounts.json"; fi
  local args=(--host 127.0.0.1 --port "$port" --chain-id "$chain_id" --mnemonic "$mnemonic"
    --accounts 13 --balance 10000 --config-out "$dir/accounts.json"
    --state "$state" --state-interval 5)
  if [ "$resume" = 1 ] && [ "$block_time" != 0 ]; then args+=(--block-time "$block_time"); fi
  setsid "$(tool anvil)" "${args[@]}" >"$dir/anvil.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if [ "$resume" = 1 ]; then
    for _ in $(seq 1 100); do rpc_up && break; ours_alive || break; sleep 0.1; done
    if rpc_up && deployed; then status; return 0; fi
    echo "devchain: saved state did not hold the deployment; starting a fresh chain" >&2
    stop_anvil
    rm -f "$state" "$out" "$dir/accounts.json"
    setsid "$(tool anvil)" --host 127.0.0.1 --port "$port" --chain-id "$chain_id" \
      --mnemonic "$mnemonic" --accounts 13 --balance 10000 --config-out "$dir/accounts.json" \
      --state "$state" --state-interval 5 >"$dir/anvil.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  # Compile while anvil boots; the cache makes this a no-op when the sources are unchanged.
  local artifacts
  artifacts=$(node "$here/build.mjs" --cache "$cache") || { stop_anvil; return 1; }
  for _ in $(seq 1 100); do
    if rpc_up && [ -s "$dir/accounts.json" ]; then break; fi
    if ! ours_alive; then break; fi
    sleep 0.1
  done
  if ! rpc_up; then
    echo "devchain: anvil did not answer on $rpc_url (see $dir/anvil.log)" >&2
    tail -5 "$dir/anvil.log" >&2 || true
    stop_anvil; return 1
  fi
  if ! node "$here/deploy.mjs" --rpc "$rpc_url" --ws "$ws_url" --chain-id "$chain_id" \
    --accounts "$dir/accounts.json" --artifacts "$artifacts" --out "$out" --block-time "$block_time" \
    "${seed_args[@]}"; then
    stop_anvil; return 1
  fi
  status
}

case "${1:-status}" in
  start) start ;;
  stop)
    stop_anvil
    echo "devchain: stopped ($run)"
    ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
