#!/usr/bin/env bash
# The main job, end to end: install what is missing, build, initialize the example manifest into a
# safetensors checkpoint, verify it, and summarize. Usage: scripts/demo.sh [MANIFEST]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
manifest=${1:-$root/examples/manifests/gpt2-mlp.json}
build=${SHARDINIT_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" -DSHARDINIT_BUILD_TESTS=OFF

out_dir=$build/demo
mkdir -p "$out_dir"
out=$out_dir/$(basename "${manifest%.json}").safetensors
echo "== shardinit init $manifest -o $out"
"$build/src/shardinit" init "$manifest" -o "$out" --force
echo "== shardinit verify $manifest $out"
"$build/src/shardinit" verify "$manifest" "$out"
echo "== $out: $(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16)..."
