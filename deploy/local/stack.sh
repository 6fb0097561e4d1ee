#!/usr/bin/env bash
# The local stack: a real redis-server (AOF on) and a real PostgreSQL 15 cluster,
# each with its own data directory and loopback port inside a run folder of the
# repo. `make run` uses it with the local defaults; the test harness uses it with
# its own run folder and ports so tests never touch a developer's running stack.
#
#   stack.sh start|stop|status
#   PAIMON_RUN_DIR     run folder        (default <repo>/.run/local)
#   PAIMON_REDIS_PORT  redis port        (default 6380)
#   PAIMON_PG_PORT     PostgreSQL port   (default 5433)
#   PAIMON_PG_FAST=1   fsync off: for throwaway test clusters only
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
run=${PAIMON_RUN_DIR:-$repo/.run/local}
rport=${PAIMON_REDIS_PORT:-6380}
pport=${PAIMON_PG_PORT:-5433}
pgbin=/usr/lib/postgresql/15/bin
pgdata=$run/pg/data
pgsock=$run/pg/sock
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

redis_up() { redis-cli -h 127.0.0.1 -p "$rport" ping >/dev/null 2>&1; }
pg_up() { "$pgbin/pg_isready" -h 127.0.0.1 -p "$pport" -q >/dev/null 2>&1; }

start_redis() {
  mkdir -p "$run/redis"
  if redis_up; then return 0; fi
  redis-server --bind 127.0.0.1 --port "$rport" --dir "$run/redis" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$run/redis/redis.pid" --logfile "$run/redis/redis.log"
  for _ in $(seq 1 50); do redis_up && return 0; sleep 0.1; done
  echo "stack: redis did not start on port $rport (see $run/redis/redis.log)" >&2; return 1
}

start_pg() {
  mkdir -p "$run/pg" "$pgsock"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$run/pg" "$pgsock"; fi
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    as_pg "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$run/pg/initdb.log" 2>&1 || { cat "$run/pg/initdb.log" >&2; return 1; }
  fi
  if pg_up; then return 0; fi
  local opts="-p $pport -k $pgsock -c listen_addresses=127.0.0.1 -c max_connections=200"
  if [ "${PAIMON_PG_FAST:-0}" = 1 ]; then
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  as_pg "$pgbin/pg_ctl" -D "$pgdata" -o "$opts" -l "$run/pg/postgres.log" -w -t 30 start >/dev/null \
    || { tail -20 "$run/pg/postgres.log" >&2; return 1; }
  psql -h 127.0.0.1 -p "$pport" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='paimon'" \
    | grep -q 1 || psql -h 127.0.0.1 -p "$pport" -U postgres -qc "CREATE DATABASE paimon" >/dev/null
}

write_env() {
  cat > "$run/stack.env" <<ENV
PAIMON_REDIS_URL=redis://127.0.0.1:$rport
PAIMON_DATABASE_URL=postgresql://postgres@127.0.0.1:$pport/paimon
PAIMON_PG_PORT=$pport
PAIMON_REDIS_PORT=$rport
ENV
}

case "${1:-status}" in
  start)
    start_redis; start_pg; write_env
    echo "redis      redis://127.0.0.1:$rport      (data: $run/redis, AOF on)"
    echo "postgresql postgresql://postgres@127.0.0.1:$pport/paimon (data: $pgdata)"
    ;;
  stop)
    if [ -f "$run/redis/redis.pid" ] && redis_up; then redis-cli -h 127.0.0.1 -p "$rport" shutdown nosave >/dev/null 2>&1 || true; fi
    if [ -f "$pgdata/postmaster.pid" ]; then as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; fi
    echo "stack: stopped ($run)"
    ;;
  status)
    rc=0
    if redis_up; then echo "redis      up   127.0.0.1:$rport"; else echo "redis      down 127.0.0.1:$rport"; rc=1; fi
    if pg_up; then echo "postgresql up   127.0.0.1:$pport"; else echo "postgresql down 127.0.0.1:$pport"; rc=1; fi
    exit $rc
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
