#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# in build-fuzz/ and runs each for a bounded time on a copy of its seed corpus. A finding (crash,
# sanitizer report, leak, timeout, out-of-memory) stops that target, is saved under
# build-fuzz/findings/TARGET/ and makes the script exit 1: reproduce it with
#   build-fuzz/tests/fuzz/fuzz_TARGET FILE
# then fix it and copy FILE into tests/fuzz/regressions/TARGET/, which CTest replays from then on.
#
# Usage: scripts/fuzz.sh [SECONDS per target, default 60] [TARGET ...]   (targets: manifest safetensors_header)
# Installs clang and the libFuzzer runtime with apt-get when missing (as scripts/install-deps.sh does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest safetensors_header)
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  SHARDINIT_EXTRA_PACKAGES="clang libclang-rt-14-dev" "$root/scripts/install-deps.sh"
fi
"$root/scripts/install-deps.sh"

build=$root/build-fuzz
sanitizers="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
CC=clang CXX=clang++ SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$sanitizers" -DSHARDINIT_BUILD_FUZZERS=ON \
  -DSHARDINIT_BUILD_TESTS=OFF -DSHARDINIT_BUILD_CLI=OFF -DSHARDINIT_MPI=OFF -DSHARDINIT_BUILD_EXAMPLES=OFF \
  -DSHARDINIT_INSTALL=OFF

status=0
for target in "${targets[@]}"; do
  binary=$build/tests/fuzz/fuzz_$target
  [ -x "$binary" ] || { echo "fuzz.sh: unknown target '$target' (manifest, safetensors_header)" >&2; exit 2; }
  corpus=$build/corpus/$target
  findings=$build/findings/$target
  mkdir -p "$corpus" "$findings"
  cp -n "$root/tests/fuzz/corpus/$target/"* "$corpus/"
  log=$build/fuzz-$target.log
  echo "== fuzz_$target for $seconds s (corpus $corpus, log $log)"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
     "$binary" "$corpus" "$root/tests/fuzz/regressions/$target" -max_total_time="$seconds" -rss_limit_mb=2048 \
       -max_len=65536 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1)
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
    corpus_size=$(ls "$corpus" | wc -l)
    echo "fuzz_$target: no finding; ${execs:-?} execs ($runs), corpus $corpus_size inputs"
  else
    status=1
    echo "fuzz_$target: FINDING (see $log and $findings):"
    grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5
  fi
done
exit $status
