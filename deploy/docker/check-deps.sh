#!/usr/bin/env bash
# Static check of deploy/docker/Dockerfile (no Docker engine needed):
#  - ARG BUILD_PKGS is exactly build-essential, pkg-config and the -dev packages of
#    deploy/install-deps.sh's APT_PKGS (less libcmocka-dev: tests are not built);
#  - ARG RUNTIME_PKGS is exactly the Debian packages that ship the shared libraries
#    `pkg-config --libs` of the Makefile's PKGS links (found through dpkg, so a
#    library added to the Makefile without its runtime package is caught);
#  - the runtime stage runs as a numeric non-root user and has an ENTRYPOINT.
# Usage: check-deps.sh [DOCKERFILE]     exit 0 ok, 1 mismatch (listed), 2 usage
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
df=${1:-$repo/deploy/docker/Dockerfile}
[ -f "$df" ] || { echo "check-deps: no such file: $df" >&2; exit 2; }
fail=0
problem() { echo "check-deps: $*" >&2; fail=1; }
words() { tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u; }

arg() { sed -n "s/^ARG $1=\"\(.*\)\"\$/\1/p" "$df"; }
have_build=$(arg BUILD_PKGS | words)
have_runtime=$(arg RUNTIME_PKGS | words)
[ -n "$have_build" ] || problem "$df: no ARG BUILD_PKGS=\"...\""
[ -n "$have_runtime" ] || problem "$df: no ARG RUNTIME_PKGS=\"...\""

apt_pkgs=$(sed -n '/^APT_PKGS=(/,/)/p' "$repo/deploy/install-deps.sh" | sed 's/APT_PKGS=(//; s/)//' | words)
want_build=$({ echo build-essential pkg-config; echo "$apt_pkgs" | grep -- '-dev$' | grep -vx libcmocka-dev; } | words)

pkgs=$(sed -n '/^PKGS *:=/,/[^\\]$/p' "$repo/Makefile" | sed 's/^PKGS *:=//; s/\\//g' | words | tr '\n' ' ')
libdirs="/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu) /lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu) /usr/lib /lib"
want_runtime=$(
  # shellcheck disable=SC2086
  for flag in $(pkg-config --libs $pkgs); do
    case $flag in -l*) ;; *) continue ;; esac
    name=${flag#-l}
    case $name in c | m | rt | dl | pthread) continue ;; esac # libc6, in every image
    found=
    for d in $libdirs; do
      [ -e "$d/lib$name.so" ] || continue
      real=$(readlink -f "$d/lib$name.so")
      pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true)
      pkg=${pkg%%:*}
      [ -n "$pkg" ] && { echo "$pkg"; found=1; break; }
    done
    [ -n "$found" ] || echo "check-deps: cannot find the package of lib$name.so" >&2
  done | words
)
[ -n "$want_runtime" ] || problem "could not derive the runtime packages (pkg-config / dpkg missing?)"

diffsets() { # what have want
  local extra missing
  missing=$(comm -13 <(echo "$2") <(echo "$3") | tr '\n' ' ')
  extra=$(comm -23 <(echo "$2") <(echo "$3") | tr '\n' ' ')
  [ -z "${missing// /}" ] || problem "$1 lacks: $missing"
  [ -z "${extra// /}" ] || problem "$1 has packages nothing needs: $extra"
}
diffsets BUILD_PKGS "$have_build" "$want_build"
diffsets RUNTIME_PKGS "$have_runtime" "$want_runtime"

runtime=$(sed -n '/^FROM .* AS runtime/,$p' "$df")
[ -n "$runtime" ] || problem "no 'FROM ... AS runtime' stage"
echo "$runtime" | grep -Eq '^USER [1-9][0-9]*(:[0-9]+)?$' || problem "runtime stage must end as a numeric non-root USER"
echo "$runtime" | grep -q '^ENTRYPOINT \[' || problem "runtime stage has no exec-form ENTRYPOINT"
echo "$runtime" | grep -q '^FROM debian:' || problem "runtime stage is not Debian"
grep -Eq '^FROM debian:[^ ]+ AS build' "$df" || problem "no Debian build stage"
grep -q '^ARG DEBIAN=bookworm' "$df" || problem "base image is not Debian 12 (bookworm)"

if [ $fail -eq 0 ]; then
  echo "check-deps: ok ($(echo "$have_runtime" | wc -l) runtime packages, $(echo "$have_build" | wc -l) build packages)"
fi
exit $fail
