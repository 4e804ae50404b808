#!/usr/bin/env bash
# I/O benchmark of init and verify against a plain large-block write of the same bytes to the same
# filesystem, alternating, medians of REPEAT runs, reported as ratios (docs/architecture.md).
#
#   scripts/bench-io.sh [DIR (default /dev/shm)] [REPEAT (default 3)] [MANIFEST]
#
# MANIFEST defaults to a Llama-shaped 1.1B model (scripts/make-llama-manifest.py: 201 tensors, bf16,
# 2.2 GB, 1D tensor parallel over 2). Rates are bytes of the file per second of wall time, flush
# included (the plain write is dd bs=16M conv=fsync).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shardinit=${SHARDINIT:-$here/build/src/shardinit}
dir=${1:-/dev/shm}
repeat=${2:-3}
manifest=${3:-$dir/bench-io-llama.json}
[ -f "$manifest" ] || python3 "$here/scripts/make-llama-manifest.py" "$manifest"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
out=$dir/bench-io.safetensors
"$shardinit" init "$manifest" -o "$out" --force -q
bytes=$(stat -c %s "$out")
blocks=$(( (bytes + 16777215) / 16777216 ))

seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A runs
kinds=(write init init_t1 np2 np4 verify)
for _ in $(seq "$repeat"); do
  rm -f "$out" "$dir/bench-io.plain"
  runs[write]+="$(seconds dd if=/dev/zero of="$dir/bench-io.plain" bs=16M count="$blocks" conv=fsync) "
  rm -f "$dir/bench-io.plain"
  runs[init]+="$(seconds "$shardinit" init "$manifest" -o "$out" --force -q) "
  runs[init_t1]+="$(seconds "$shardinit" init "$manifest" -o "$out" --force -q --threads 1) "
  runs[np2]+="$(seconds mpirun -np 2 "$shardinit" init "$manifest" -o "$out" --force -q) "
  runs[np4]+="$(seconds mpirun -np 4 "$shardinit" init "$manifest" -o "$out" --force -q) "
  runs[verify]+="$(seconds "$shardinit" verify "$manifest" "$out" -q) "
done
plain_bytes=$((blocks * 16777216))
declare -A med
for k in "${kinds[@]}"; do med[$k]=$(echo "${runs[$k]}" | tr ' ' '\n' | grep . | median); done
rate() { echo "$1 / $2 / 1e9" | bc -l; }
w=$(rate "$plain_bytes" "${med[write]}")
printf 'bench-io: %s, %d bytes, medians of %d (runs: %s)\n' "$dir" "$bytes" "$repeat" "$(for k in "${kinds[@]}"; do printf '%s=[%s] ' "$k" "${runs[$k]}"; done)"
printf 'plain write            %6.2f GB/s\n' "$w"
for k in init init_t1 np2 np4 verify; do
  r=$(rate "$bytes" "${med[$k]}")
  printf '%-22s %6.2f GB/s  %.2fx plain write  %.2fx one-process init\n' "$k" "$r" "$(echo "$r / $w" | bc -l)" \
    "$(echo "$r / $(rate "$bytes" "${med[init]}")" | bc -l)"
done
rm -f "$out" "$dir/bench-io.plain"
