#!/bin/sh
# Installs kiln from a build directory into a temporary prefix and builds
# examples/ out of tree as a user would, against that prefix only: each
# installed header compiled alone, then attention.c and train_mlp.c with
# the pkg-config line (shared, and static through --static), and with a
# CMake project that does find_package(kiln) (kiln::kiln, kiln::kiln_static);
# every program is run and its output checked. The headers are also
# compiled as C++.
# Usage: tools/install-test.sh [BUILD_DIR]   (default: build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P=$tmp/prefix
fail() {
  echo "install-test: $*" >&2
  exit 1
}

cmake --install "$build" --prefix "$P" >"$tmp/install.log" || fail "cmake --install failed: $(cat "$tmp/install.log")"
headers=$(cd "$P/include/kiln" && ls)
[ "$(echo $headers)" = "kiln.h kiln_compile.h kiln_run.h kiln_train.h" ] ||
  fail "installed headers are '$(echo $headers)', expected the four public ones"
[ -f "$P/lib/libkiln.a" ] && [ -e "$P/lib/libkiln.so" ] || fail "no libkiln.a / libkiln.so in $P/lib"
# Only the public API leaves the shared library.
leaked=$(nm -D --defined-only "$P/lib/libkiln.so" | awk '$2 ~ /[TDBR]/ && $3 !~ /^kl_/ {print $3}' | head -5)
[ -z "$leaked" ] || fail "libkiln.so exports internal symbols: $leaked"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
# The JIT's cache of compiled code goes with the prefix, not to ~/.cache.
export XDG_CACHE_HOME="$tmp/cache"
CC=${CC:-cc}
cflags=$(pkg-config --cflags kiln)
for h in $headers; do
  printf '#include <kiln/%s>\n' "$h" >"$tmp/h.c"
  $CC -std=c17 -Wall -Wextra -Werror $cflags -c "$tmp/h.c" -o "$tmp/h.o" ||
    fail "<kiln/$h> does not compile on its own"
  # The headers' extern "C" blocks are for C++ users (g++ comes with build-essential).
  c++ -std=c++17 -Wall -Wextra -Werror $cflags -fsyntax-only -x c++ "$tmp/h.c" ||
    fail "<kiln/$h> does not compile as C++"
done

mkdir "$tmp/src"
cp "$root/examples/attention.c" "$root/examples/train_mlp.c" "$tmp/src/"
# check NAME BINARY: runs it and checks the example's output.
check() {
  out=$("$2" 2>&1) || fail "$1: exit status $?: $out"
  case $1 in
  attention*)
    echo "$out" | grep -q '^fused regions: 1$' || fail "$1: no fused attention region: $out"
    echo "$out" | grep -q '^out\[0,0,:3\] = ' || fail "$1: no output line: $out"
    ;;
  train_mlp*)
    l0=$(echo "$out" | awk '/^step   0 /{print $4}')
    l500=$(echo "$out" | awk '/^step 500 /{print $4}')
    [ -n "$l0" ] && [ -n "$l500" ] || fail "$1: no loss lines: $out"
    awk -v a="$l0" -v b="$l500" 'BEGIN{exit !(b < 0.1 * a)}' || fail "$1: loss $l0 -> $l500 did not fall"
    ;;
  esac
  echo "install-test: $1 ok"
}

# pkg-config, shared: the one line README shows (-lm for the example's sinf).
for ex in attention train_mlp; do
  $CC -std=c17 -Wall -Wextra -Werror "$tmp/src/$ex.c" -o "$tmp/$ex" $(pkg-config --cflags --libs kiln) -lm
  LD_LIBRARY_PATH="$P/lib" check "$ex (pkg-config)" "$tmp/$ex"
done
# pkg-config --static: libkiln.a plus Libs.private and Requires.private.
static_libs=$(pkg-config --libs --static kiln | sed 's/-lkiln\b/-l:libkiln.a/')
for ex in attention train_mlp; do
  $CC -std=c17 "$tmp/src/$ex.c" -o "$tmp/$ex-static" $cflags $static_libs -lm
  if ldd "$tmp/$ex-static" | grep -q libkiln; then fail "$ex-static links libkiln.so"; fi
  check "$ex (pkg-config --static)" "$tmp/$ex-static"
done

cat >"$tmp/src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(kiln_user LANGUAGES C)
find_package(kiln 0.1 REQUIRED)
foreach(ex attention train_mlp)
  add_executable(${ex} ${ex}.c)
  target_link_libraries(${ex} PRIVATE kiln::kiln m)
  add_executable(${ex}_static ${ex}.c)
  target_link_libraries(${ex}_static PRIVATE kiln::kiln_static m)
endforeach()
EOF
cmake -S "$tmp/src" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$P" >"$tmp/cmake.log" 2>&1 ||
  fail "find_package(kiln) project does not configure: $(cat "$tmp/cmake.log")"
cmake --build "$tmp/cbuild" -j2 >"$tmp/cmake.log" 2>&1 || fail "find_package(kiln) project does not build: $(cat "$tmp/cmake.log")"
for ex in attention train_mlp; do
  check "$ex (find_package)" "$tmp/cbuild/$ex"
  check "$ex (find_package, static)" "$tmp/cbuild/${ex}_static"
done
echo "install-test: ok"
