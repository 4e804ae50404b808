#!/usr/bin/env bash
# Installs the built shardinit into a scratch prefix, then configures, builds and runs a separate
# project that finds it with find_package(shardinit).
# Usage: check_find_package.sh BUILD_DIR SCRATCH_DIR [CXX_FLAGS [LINKER_FLAGS]]
# The flags are the library's own (a sanitizer build needs them in its consumers too).
set -euo pipefail
build=$1
scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$here" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_CXX_FLAGS="${3:-}" \
  -DCMAKE_EXE_LINKER_FLAGS="${4:-}" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
"$scratch/consumer/consumer"
