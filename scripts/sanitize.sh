#!/usr/bin/env bash
# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc), in
# build-asan/. Any sanitizer report fails the test that triggered it (halt_on_error, and UBSan
# reports are made fatal). Leaks are checked too, except the ones Open MPI keeps for the life of a
# process (tests/sanitizers/lsan.supp).
#
# Usage: scripts/sanitize.sh [ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDINIT_SANITIZE_BUILD_DIR:-$root/build-asan}

"$root/scripts/install-deps.sh"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSHARDINIT_BUILD_TESTS=ON
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
# Sanitized runs are several times slower: allow each test more time. The peak-memory tests
# (mpi.memory.*) are left out: ASan's shadow memory and quarantine inflate the resident size they
# bound, which says nothing about shardinit.
ctest --output-on-failure -j "$(nproc)" --timeout 900 -E '^mpi\.memory\.' "$@"
