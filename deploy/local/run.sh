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

stop_daemons() {
  for d in "${daemons[@]}"; do
    pidf=$PAIMON_RUN_DIR/daemons/$d.pid
    [ -f "$pidf" ] || continue
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 110); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
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
    # Signing keys go through the real keystore path even locally: a local master key,
    # and the devchain's operator key imported into an encrypted keystore. paimon-risk
    # signs setEmergencyMode with its own key (the devchain's guardian, OPERATOR_ROLE), so
    # no two outboxes share a signer's nonces.
    [ -f "$PAIMON_RUN_DIR/master.key" ] || (umask 077; openssl rand -hex 32 > "$PAIMON_RUN_DIR/master.key")
    export PAIMON_MASTER_KEY PAIMON_MASTER_KEY_ID=local
    PAIMON_MASTER_KEY=$(cat "$PAIMON_RUN_DIR/master.key")
    export PAIMON_SIGNER_KEYSTORE=$PAIMON_RUN_DIR/keystore.json PAIMON_SIGNER_NAME=operator
    if [ -f "$PAIMON_DEVCHAIN_JSON" ] && ! "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" list 2>/dev/null | grep -q '^operator'; then
      node -e 'process.stdout.write(require(process.argv[1]).accounts.operator.privateKey + "\n")' \
        "$PAIMON_DEVCHAIN_JSON" | "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" import operator >/dev/null
    fi
    risk_signer=
    if [ -f "$PAIMON_DEVCHAIN_JSON" ] && node -e 'process.exit(require(process.argv[1]).accounts.guardian ? 0 : 1)' "$PAIMON_DEVCHAIN_JSON"; then
      risk_signer=guardian
      if ! "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" list 2>/dev/null | grep -q '^guardian'; then
        node -e 'process.stdout.write(require(process.argv[1]).accounts.guardian.privateKey + "\n")' \
          "$PAIMON_DEVCHAIN_JSON" | "$build/bin/paimon-keys" --keystore "$PAIMON_SIGNER_KEYSTORE" import guardian >/dev/null
      fi
    fi
    mkdir -p "$PAIMON_RUN_DIR/daemons"
    stop_daemons
    for d in "${daemons[@]}"; do
      bin=$build/bin/paimon-$d
      [ -x "$bin" ] || continue
      port=${ports[$d]}
      # Each daemon logs in as its own role, so schema isolation holds locally too.
      signer_name=operator keystore=$PAIMON_SIGNER_KEYSTORE
      if [ "$d" = risk ]; then
        # no guardian (a chain deployed before it existed): risk runs without a signer
        signer_name=${risk_signer:-none}; [ -n "$risk_signer" ] || keystore=
      fi
      PAIMON_HTTP_PORT=$port PAIMON_DATABASE_URL="postgresql://paimon_$d@127.0.0.1:$PAIMON_PG_PORT/paimon" \
        PAIMON_SIGNER_NAME=$signer_name PAIMON_SIGNER_KEYSTORE=$keystore \
        "$bin" >>"$PAIMON_RUN_DIR/daemons/$d.log" 2>&1 &
      echo $! > "$PAIMON_RUN_DIR/daemons/$d.pid"
      echo "$d  http://127.0.0.1:$port  pid $!  log $PAIMON_RUN_DIR/daemons/$d.log"
    done
    if [ -x "$build/bin/paimon-api" ]; then
      echo "API        http://127.0.0.1:${ports[api]}/api/v1  docs http://127.0.0.1:${ports[api]}/docs  websocket ws://127.0.0.1:8090/ws"
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
