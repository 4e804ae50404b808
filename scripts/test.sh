#!/usr/bin/env bash
# The whole test suite from a clean clone: install what is missing, build with tests, run CTest.
# Usage: scripts/test.sh [ctest args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDINIT_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" -DSHARDINIT_BUILD_TESTS=ON -DSHARDINIT_PYTHON=ON
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
