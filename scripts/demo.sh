#!/usr/bin/env bash
# The main job, end to end: install what is missing, build, then initialize the example GPT-2 block
# (1D tensor parallel over 4 ranks) under mpirun, each rank computing only its own shards and all of
# them writing ONE safetensors file together; check that it is byte-identical to the file a single
# process writes, and verify it under mpirun.
# Usage: scripts/demo.sh [MANIFEST [RANKS]]   (defaults: examples/manifests/gpt2-block-tp4.json, 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
manifest=${1:-$root/examples/manifests/gpt2-block-tp4.json}
ranks=${2:-4}
build=${SHARDINIT_BUILD_DIR:-$root/build}

"$root/scripts/install-deps.sh"
SHARDINIT_BUILD_DIR=$build "$root/scripts/build.sh" -DSHARDINIT_BUILD_TESTS=OFF

# Open MPI refuses root unless told, and this many ranks may exceed the cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe -np "$ranks")
shardinit=$build/src/shardinit

out_dir=$build/demo
mkdir -p "$out_dir"
name=$(basename "${manifest%.json}")
parallel=$out_dir/$name.safetensors
single=$out_dir/$name.single-process.safetensors

echo "== ${mpirun[*]} shardinit init $manifest -o $parallel"
"${mpirun[@]}" "$shardinit" init "$manifest" -o "$parallel" --force
echo "== shardinit init $manifest -o $single   (one process, every tensor whole)"
"$shardinit" init "$manifest" -o "$single" --force
if cmp -s "$parallel" "$single"; then
  echo "== the $ranks-rank file and the single-process file are byte-identical ($(stat -c %s "$parallel") bytes, sha256 $(sha256sum "$parallel" | cut -c1-16)...)"
else
  echo "== ERROR: the $ranks-rank file differs from the single-process file" >&2
  exit 1
fi
echo "== ${mpirun[*]} shardinit verify $manifest $parallel"
"${mpirun[@]}" "$shardinit" verify "$manifest" "$parallel"
