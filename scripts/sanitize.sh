#!/usr/bin/env bash
# The whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer (gcc), in
# build-asan/. Any sanitizer report fails the test that triggered it (halt_on_error, and UBSan
# reports are made fatal). Leaks are checked in every test that does not start MPI (see below).
#
# Usage: scripts/sanitize.sh [ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDINIT_SANITIZE_BUILD_DIR:-$root/build-asan}

"$root/scripts/install-deps.sh"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DSHARDINIT_BUILD_TESTS=ON -DSHARDINIT_TEST_TIMEOUT_SCALE=5
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
# Everything that runs without MPI, leak checks included. The peak-memory tests (mpi.memory.*) are
# not run at all: ASan's shadow memory and quarantine inflate the resident size they bound.
# The Python tests are not run: the interpreter itself is not built with the sanitizers.
mpi_tests='^(mpi|example|multihost)\.'
status=0
ctest --output-on-failure -j "$(nproc)" -E '^(mpi|example|multihost|python)\.' "$@" || status=1
# Everything that calls MPI_Init, without leak checks: Open MPI and its runtime (PMIx, hwloc, its
# dlopen'ed components, unloaded before LeakSanitizer runs and so unnamed in its reports) keep
# allocations for the life of the process that no suppression can name. Memory errors and
# undefined behaviour still fail these tests.
ASAN_OPTIONS=halt_on_error=1:detect_leaks=0:detect_stack_use_after_return=1 \
  ctest --output-on-failure -j "$(nproc)" -R "$mpi_tests" -E '^mpi\.memory\.' "$@" || status=1
exit $status
