#!/usr/bin/env bash
# Configures and builds shardinit (Release) in build/ (or $SHARDINIT_BUILD_DIR), printing the
# compiler's output only if the build fails. Usage: scripts/build.sh [cmake args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDINIT_BUILD_DIR:-$root/build}
mkdir -p "$build"
log=$build/build.log
echo "== building shardinit in $build (log: $log)"
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" && cmake --build "$build" -j "$(nproc)"; } >"$log" 2>&1; then
  cat "$log"
  echo "scripts/build.sh: build failed" >&2
  exit 1
fi
