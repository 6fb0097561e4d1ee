#!/usr/bin/env bash
# make run / make stop: the whole local stack on embedded defaults — Redis and
# PostgreSQL (stack.sh), the anvil devnet with the fixture vault (when present),
# the migrations, then every daemon that has been built, each logging to the run
# folder. Prints where everything is.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
export PAIMON_RUN_DIR=${PAIMON_RUN_DIR:-$repo/.run/local}
build=${BUILD:-$repo/build}
daemons=(listener approval rebalance risk notifier api)
# Internal HTTP ports, the same defaults the daemons have built in (svc_new);
# PAIMON_LOCAL_HTTP_BASE moves all six (e.g. a second stack next to a running one).
hb=${PAIMON_LOCAL_HTTP_BASE:-8080}
declare -A ports=([api]=$hb [listener]=$((hb + 1)) [approval]=$((hb + 2)) [rebalance]=$((hb + 3)) [risk]=$((hb + 4)) [notifier]=$((hb + 5)))
export PAIMON_WS_PORT=${PAIMON_WS_PORT:-$((hb + 10))}
# PAIMON_DAEMON_WRAP runs every daemon under a tool ("{name}" becomes the daemon's name),
# e.g. valgrind (tests/valgrind.sh); PAIMON_STOP_WAIT_S is how long a stop may take.
read -r -a wrap <<<"${PAIMON_DAEMON_WRAP:-}"
stop_wait=$((${PAIMON_STOP_WAIT_S:-11} * 10))

stop_daemons() {
  for d in "${daemons[@]}"; do
    pidf=$PAIMON_RUN_DIR/daemons/$d.pid
    [ -f "$pidf" ] || continue
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 "$stop_wait"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$pidf"
  done
}

cd "$repo" # daemons find schemas/abi relative to the repository
case "${1:-start}" in
  start)
    # Local chain: a block every second, so confirmations accrue without traffic.
    export PAIMON_ANVIL_BLOCK_TIME=${PAIMON_ANVIL_BLOCK_TIME:-1}
    # A healthy demo fund: ten assets at equal targets (largest 9 %, top 3 27 %, L1 10 %),
    # not the test fixture whose concentration is critical on purpose — otherwise the
    # emergency protocol would fire the moment the stack starts. A chain resumed from an
    # earlier run keeps whatever it was deployed with.
    export PAIMON_DEVCHAIN_PROFILE=${PAIMON_DEVCHAIN_PROFILE:-healthy}
    export PAIMON_DEVCHAIN_JSON=$PAIMON_RUN_DIR/devchain.json
    export PAIMON_RPC_URLS=${PAIMON_RPC_URLS:-http://127.0.0.1:${PAIMON_ANVIL_PORT:-8545}}
    export PAIMON_LISTENER_CONFIRMATIONS=${PAIMON_LISTENER_CONFIRMATIONS:-2}
    # The gateway: a local super_admin on first start, a stable token key, its files.
    export PAIMON_BOOTSTRAP_ADMIN_EMAIL=${PAIMON_BOOTSTRAP_ADMIN_EMAIL:-admin@paimon.local}
    export PAIMON_BOOTSTRAP_ADMIN_PASSWORD=${PAIMON_BOOTSTRAP_ADMIN_PASSWORD:-paimon-local-admin}
    export PAIMON_JWT_SECRET=${PAIMON_JWT_SECRET:-paimon-local-jwt-secret-not-for-production}
    export PAIMON_OPENAPI_PATH=$repo/schemas/openapi.yaml
    export PAIMON_SWAGGER_UI_DIR=$repo/deploy/node_modules/swagger-ui-dist
    "$repo/deploy/local/stack.sh" start
    set -a; . "$PAIMON_RUN_DIR/stack.env"; set +a
    if [ -x "$repo/deploy/devchain/devchain.sh" ]; then
      "$repo/deploy/devchain/devchain.sh" start
    fi
    "$build/bin/paimon-migrate" --dir "$repo/migrations" --db "$PAIMON_DATABASE_URL" up
    # Signing keys go through the real keystore path even locally: a local master key and
    # the devchain's keys imported into an encrypted keystore.
    [ -f "$PAIMON_RUN_DIR/master.key" ] || (umask 077; openssl rand -hex 32 > "$PAIMON_RUN_DIR/master.key")
    export PAIMON_MASTER_KEY PAIMON_MASTER_KEY_ID=local
    PAIMON_MASTER_KEY=$(cat "$PAIMON_RUN_DIR/master.key")
    export PAIMON_SIGNER_KEYSTORE=$PAIMON_RUN_DIR/keystore.json
    # One devchain account per signing service, each with just the vault role it needs, so
    # no two outboxes share a signer's nonces: approval = operator (approve / settle),
    # rebalance = rebalancer (REBALANCER_ROLE trades), risk = guardian (setEmergencyMode).
    import_key() { # $1 = account name in devchain.json; prints it when the chain has it
      [ -f "$PAIMON_DEVCHAIN_JSON" ] || return 0
      node -e 'process.exit(require(process.argv[1]).accounts[process.argv[2]] ? 0 : 1)' "$PAIMON_DEVCHAIN_JSON" "$1" || return 0
      if ! "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" list 2>/dev/null | grep -q "^$1"; then
        node -e 'process.stdout.write(require(process.argv[1]).accounts[process.argv[2]].privateKey + "\n")' \
          "$PAIMON_DEVCHAIN_JSON" "$1" | "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" import "$1" >/dev/null
      fi
      echo "$1"
    }
    declare -A signer_of=([approval]=$(import_key operator) [rebalance]=$(import_key rebalancer) [risk]=$(import_key guardian))
    mkdir -p "$PAIMON_RUN_DIR/daemons"
    stop_daemons
    for d in "${daemons[@]}"; do
      bin=$build/bin/paimon-$d
      [ -x "$bin" ] || continue
      port=${ports[$d]}
      # Each daemon logs in as its own role, so schema isolation holds locally too. No key
      # (a daemon that never signs, or a chain deployed before the guardian existed): none.
      signer_name=${signer_of[$d]:-} keystore=$PAIMON_SIGNER_KEYSTORE
      [ -n "$signer_name" ] || { signer_name=none; keystore=; }
      PAIMON_HTTP_PORT=$port PAIMON_DATABASE_URL="postgresql://paimon_$d@127.0.0.1:$PAIMON_PG_PORT/paimon" \
        PAIMON_SIGNER_NAME=$signer_name PAIMON_SIGNER_KEYSTORE=$keystore \
        "${wrap[@]//\{name\}/$d}" "$bin" >>"$PAIMON_RUN_DIR/daemons/$d.log" 2>&1 &
      echo $! > "$PAIMON_RUN_DIR/daemons/$d.pid"
      echo "$d  http://127.0.0.1:$port  pid $!  log $PAIMON_RUN_DIR/daemons/$d.log"
    done
    if [ -x "$build/bin/paimon-api" ]; then
      echo "API        http://127.0.0.1:${ports[api]}/api/v1  docs http://127.0.0.1:${ports[api]}/docs  websocket ws://127.0.0.1:$PAIMON_WS_PORT/ws"
      echo "           login $PAIMON_BOOTSTRAP_ADMIN_EMAIL / $PAIMON_BOOTSTRAP_ADMIN_PASSWORD (local only)"
    fi
    echo "local stack is up (run folder: $PAIMON_RUN_DIR); stop it with: make stop"
    ;;
  stop)
    stop_daemons
    [ -x "$repo/deploy/devchain/devchain.sh" ] && "$repo/deploy/devchain/devchain.sh" stop || true
    "$repo/deploy/local/stack.sh" stop
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
