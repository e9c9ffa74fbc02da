#!/bin/sh
# Installs what kiln builds and tests against, from Debian 12's own packages.
# Idempotent: does nothing when everything is present; otherwise runs
# `apt-get update` once and installs only what is missing.
set -eu
# clang-19 and libclang-rt-19-dev: libFuzzer for the fuzz harnesses (make fuzz-ci).
pkgs="build-essential cmake pkg-config clang-format llvm-19-dev libopenblas-dev libcriterion-dev libjansson-dev clang-19 libclang-rt-19-dev"
# Goldens are regenerated with Debian's python3 and python3-torch; the test
# suite itself never needs torch. `--with-torch` adds it.
[ "${1:-}" = "--with-torch" ] && pkgs="$pkgs python3 python3-torch"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
