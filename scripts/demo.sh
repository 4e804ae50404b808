#!/usr/bin/env bash
# The main job, end to end: install what is missing, build, then initialize the example GPT-2 block
# (1D tensor parallel over 4 ranks) under mpirun, each rank computing only its own shards and all of
# them writing ONE safetensors file together; check that it is byte-identical to the file a single
# process writes, and verify it under mpirun. With no arguments, then the same for a small Llama
# made from its Hugging Face config.json (docs/models.md): a directory from_pretrained loads.
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

# With the default example, also a Hugging Face model from its config.json alone: the directory
# from_pretrained loads, written by the default 4 ranks with tensor x pipeline layouts (2 x 2),
# against one process's.
if [ $# -eq 0 ]; then
  config=$root/examples/hf/tiny-llama/config.json
  hf_parallel=$out_dir/tiny-llama
  hf_single=$out_dir/tiny-llama.single-process
  echo "== ${mpirun[*]} shardinit init --hf $config --tp 2 --pp 2 -o $hf_parallel"
  "${mpirun[@]}" "$shardinit" init --hf "$config" --tp 2 --pp 2 -o "$hf_parallel" --force
  echo "== shardinit init --hf $config -o $hf_single   (one process)"
  "$shardinit" init --hf "$config" -o "$hf_single" --force
  if diff -r "$hf_parallel" "$hf_single" >/dev/null; then
    echo "== the two directories are byte-identical: $(cd "$hf_parallel" && echo *)"
  else
    echo "== ERROR: the $ranks-rank directory differs from the single-process directory" >&2
    exit 1
  fi
  echo "== shardinit verify --hf $config $hf_parallel"
  "$shardinit" verify --hf "$config" "$hf_parallel"
fi
