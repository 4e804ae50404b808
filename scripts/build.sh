#!/usr/bin/env bash
# Configures and builds shardinit (Release) in build/ (or $SHARDINIT_BUILD_DIR). Usage: scripts/build.sh [cmake args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDINIT_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
