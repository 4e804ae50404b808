#!/usr/bin/env bash
# Cost follows the shard, never the global size: one rank of a tensor far larger than this machine
# (f32 [2^19, 2^19] = 2^38 elements, 1 TiB, row-split over 4096 ranks by a 1-D mesh) against a
# standalone tensor of the shard's own size (f32 [128, 2^19] = 2^26 elements, 256 MiB), both written
# with `shardinit init --per-rank` as one process. Prints the wall time and peak resident memory of
# each (median of --repeat runs) and their ratios.
#
# Usage: scripts/scale-check.sh [--repeat R] [--rank R]
# Environment: SHARDINIT is the CLI (default build/src/shardinit; build it with scripts/build.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cli=${SHARDINIT:-$root/build/src/shardinit}
repeat=3
rank=2741
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --rank) rank=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "scale-check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$cli" ] || { echo "scale-check.sh: no CLI at $cli (run scripts/build.sh, or set SHARDINIT)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "scale-check.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/global.json" <<JSON
{"seed": 7, "mesh": [4096],
 "tensors": [{"name": "w", "shape": [524288, 524288], "dtype": "f32", "init": {"fn": "normal", "std": 0.02},
              "layout": {"shard": {"0": [0]}}}]}
JSON
cat >"$work/standalone.json" <<JSON
{"seed": 7,
 "tensors": [{"name": "w", "shape": [128, 524288], "dtype": "f32", "init": {"fn": "normal", "std": 0.02}}]}
JSON

# Median wall seconds and peak RSS (KiB) of `init` over $repeat runs, as "seconds kib".
measure() {
  local manifest=$1; shift
  local runs=()
  for _ in $(seq "$repeat"); do
    rm -rf "$work/out"
    /usr/bin/time -f "%e %M" -o "$work/time" "$cli" init "$manifest" --per-rank "$work/out" --quiet "$@"
    runs+=("$(cat "$work/time")")
  done
  printf '%s\n' "${runs[@]}" | sort -n | sed -n "$(( (repeat + 1) / 2 ))p"
}

read -r shard_s shard_kib < <(measure "$work/global.json" --rank "$rank" --world 4096)
shard_file=$(ls "$work/out")
shard_bytes=$(stat -c %s "$work/out/$shard_file")
read -r alone_s alone_kib < <(measure "$work/standalone.json" --rank 0 --world 1)
alone_bytes=$(stat -c %s "$work/out/$(ls "$work/out")")
echo "rank $rank of 4096, f32 [524288, 524288] (2^38 elements): ${shard_s} s, peak ${shard_kib} KiB, file $shard_bytes bytes"
echo "standalone f32 [128, 524288] (2^26 elements):            ${alone_s} s, peak ${alone_kib} KiB, file $alone_bytes bytes"
awk -v a="$shard_s" -v b="$alone_s" -v c="$shard_kib" -v d="$alone_kib" \
  'BEGIN { printf "ratio shard/standalone: time %.3f, peak memory %.3f\n", a / b, c / d }'
