#!/usr/bin/env bash
# Installs what the build, the local stack and the tests need, and nothing when it
# is all already there: a fresh Debian 12 machine as root gets there with one call.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

APT_PKGS=(build-essential pkg-config libhiredis-dev libpq-dev libevent-dev libcjson-dev
  libcurl4-openssl-dev libwebsockets-dev libssl-dev libsecp256k1-dev libargon2-dev
  libcmocka-dev nettle-dev redis-server redis-tools postgresql-15 postgresql-contrib
  nodejs npm cppcheck clang-format valgrind wrk python3-fastapi python3-uvicorn python3-jwt)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node and npm may come from outside apt (the machine image ships its own).
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}) and not root" >&2; exit 1
  fi
  echo "install-deps: apt installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The Debian redis/postgres packages start system-wide services; ours run in the
# project's run folder, so the system ones are left as they are.

# npm tools, pinned by package-lock.json; reinstall only when the lock changed.
stamp="$here/node_modules/.paimon-lock.sha256"
want=$(sha256sum "$here/package-lock.json" 2>/dev/null | cut -d' ' -f1 || true)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ -z "$want" ]; then
  echo "install-deps: npm install in deploy/ (versions from package-lock.json)"
  # Not `npm ci`: the registry this project uses lacks the other platforms' optional
  # binaries of anvil/cast, so the lock cannot list them and `npm ci` refuses it.
  # `npm install` takes the locked versions and leaves the lock file untouched.
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
  sha256sum "$here/package-lock.json" | cut -d' ' -f1 > "$stamp"
fi
