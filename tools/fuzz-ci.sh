#!/usr/bin/env bash
# CI's fuzz stage: builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with
# clang-19 under ASan+UBSan in build-fuzz/, runs each for FUZZ_SECONDS
# (default 60) on a scratch copy of its seed corpus with its dictionary, at
# most FUZZ_JOBS (default 2) at a time, and fails on any finding, printing
# the crashing input's path and the tail of the fuzzer's report.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-60}
jobs_max=${FUZZ_JOBS:-2}
build=${FUZZ_BUILD:-build-fuzz}
harnesses=${FUZZ_HARNESSES:-"ir safetensors checkpoint text cli"}

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang-19 -DKILN_FUZZ=ON "$@" >/dev/null
cmake --build "$build" -j2 --target fuzzers >"$build/fuzz-build.log" 2>&1 ||
  { tail -40 "$build/fuzz-build.log"; exit 1; }
rm -rf "$build/fuzz-run"
scratch="$(pwd)/$build/fuzz-run"
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm="$scratch"
mkdir -p "$scratch"

run_one() {
  local name=$1 dir="$scratch/$1"
  mkdir -p "$dir/corpus"
  # The checkpoint harness writes each input to a file under TMPDIR: tmpfs if
  # there is one, so a run costs no disk writes.
  local tmp
  tmp=$(mktemp -d "$shm/kiln-fuzz-$name.XXXXXX")
  cp tests/fuzz/corpus/"$name"/* "$dir/corpus/"
  local dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  # -close_fd_mask=3: the harnesses' own messages (usage errors) are noise;
  # libFuzzer and the sanitizers still report on a duplicate of stderr.
  set +e
  TMPDIR="$tmp" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/bin/fuzz_$name" -max_total_time="$secs" -timeout=10 -close_fd_mask=3 \
    -print_final_stats=1 -artifact_prefix="$dir/" "${dict[@]}" "$dir/corpus" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
  rm -rf "$tmp"
}

for name in $harnesses; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  run_one "$name" &
done
wait

fail=0
for name in $harnesses; do
  dir="$scratch/$name"
  found=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | head -1)
  rc=$(cat "$dir/rc")
  if [ "$rc" != 0 ] || [ -n "$found" ]; then
    fail=1
    echo "fuzz-ci: $name: FINDING (exit $rc), input: ${found:-none saved}; log $dir/log:"
    tail -60 "$dir/log"
    echo "fuzz-ci: minimize it (build-fuzz/bin/fuzz_$name -minimize_crash=1 -runs=100000 INPUT)," \
      "fix, and add it to tests/fuzz/regress/$name/"
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log")
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$dir/log" | tail -1)
  echo "fuzz-ci: $name: ${execs:-?} execs, ${rate:-?} exec/s, $cov, no finding"
done
exit $fail
