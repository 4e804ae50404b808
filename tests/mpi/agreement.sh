#!/usr/bin/env bash
# Ranks that disagree, and paths that differ per rank, on one machine: every rank must run the same
# program, command and manifest, and see the same file, before any collective step. Each case must
# end within a bounded time with exactly one "shardinit: error" line that names the ranks, the
# documented exit status, and nothing left: no output and no temporary in any directory involved.
# Ranks are given different manifests by a wrapper that picks by OMPI_COMM_WORLD_RANK, different
# command lines with mpirun's ':' (MPMD), and different working directories with -wdir (a relative
# path then leads to a different directory per rank, as a node-local path does on many nodes).
#
#   agreement.sh SHARDINIT MPIEXEC NP SCRATCH_DIR          (NP >= 2)
#
# Prints "FAIL: ..." for every failed check and "agreement: P passed, F failed" at the end.
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
np=$3
scratch=$(realpath -m "$4")
last=$((np - 1))
first_np=$((np - 1))  # ranks 0 .. np-2 in the first MPMD context, rank np-1 in the second

passed=0
failed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

rm -rf "$scratch"
logs=$scratch.logs  # beside the scratch directory, whose listing the checks compare
rm -rf "$logs"
mkdir -p "$scratch" "$logs"
cd "$scratch" || exit 2

cat >m.json <<'JSON'
{"seed": 1, "mesh": [2], "tensors": [
  {"name": "w", "shape": [64, 48], "init": {"fn": "normal", "std": 0.02}, "layout": {"shard": {"0": [0]}}},
  {"name": "b", "shape": [48], "init": {"fn": "zeros"}}]}
JSON
# The default mesh is [world]: the manifests below run at any rank count.
sed 's/"mesh": \[2\], //' m.json >base.json
sed 's/"seed": 1/"seed": 2/' base.json >seed2.json
sed 's/"init": {"fn": "zeros"}}]}/"init": {"fn": "zeros"}}, {"name": "c", "shape": [3], "init": {"fn": "ones"}}]}/' base.json >more.json
sed 's/"layout": {"shard": {"0": \[0\]}}/"layout": {"shard": {"1": [0]}}/' base.json >layout.json

# per_rank_manifest OTHER: a command that runs shardinit with base.json on every rank but the last,
# which gets OTHER in its place.
cat >pick.sh <<'SH'
#!/bin/sh
# pick.sh OTHER SHARDINIT ARGS...: ARGS with "MANIFEST" replaced by base.json, or OTHER on the last rank.
other=$1
shardinit=$2
shift 2
if [ "$OMPI_COMM_WORLD_RANK" -eq $((OMPI_COMM_WORLD_SIZE - 1)) ]; then m=$other; else m=base.json; fi
for a in "$@"; do
  if [ "$a" = MANIFEST ]; then set -- "$@" "$m"; else set -- "$@" "$a"; fi
  shift
done
exec "$shardinit" "$@"
SH
chmod +x pick.sh

# expect_refused LABEL STATUS PATTERN DIRS COMMAND...: runs COMMAND (an mpirun line) under a time
# limit; checks the status, one error line matching PATTERN (grep -E), and that each directory of
# DIRS (space-separated) holds nothing but what it held before.
expect_refused() {
  local label=$1 status=$2 pattern=$3 dirs=$4
  shift 4
  local before=() d
  for d in $dirs; do before+=("$(ls -A "$d" | tr '\n' ' ')"); done
  local start=$SECONDS
  label=$logs/$label
  timeout 60 "$@" >"$label.out" 2>"$label.err"
  local rc=$? seconds=$((SECONDS - start))
  local errors
  errors=$(grep -c "shardinit: error" "$label.err")
  check "$label: exits $status, not by timeout (rc $rc): $(grep shardinit "$label.err" | head -c 400)" test "$rc" -eq "$status"
  check "$label: within 30 s (took $seconds s)" test "$seconds" -le 30
  check "$label: exactly one error line (got $errors): $(grep shardinit "$label.err" | head -c 600)" test "$errors" -eq 1
  check "$label: the error says what is wrong: $(grep shardinit "$label.err" | head -c 600)" grep -Eq -e "$pattern" "$label.err"
  local i=0
  for d in $dirs; do
    check "$label: nothing new in $d ($(ls -A "$d" | tr '\n' ' '))" test "$(ls -A "$d" | tr '\n' ' ')" = "${before[$i]}"
    i=$((i + 1))
  done
}

mpi=("$mpiexec" --oversubscribe)
out=$scratch/out
mkdir -p "$out"

# ---- 1. The ranks agree on the manifest -------------------------------------------------------
expect_refused seed 2 "do not agree on the manifest: .*seed 1.* on ranks? 0.*; .*seed 2.* on rank $last" "$out $scratch" \
  "${mpi[@]}" -n "$np" ./pick.sh seed2.json "$shardinit" init MANIFEST -o "$out/x.safetensors"
expect_refused tensor 2 "do not agree on the manifest: .*2 tensors.*; .*3 tensors.* on rank $last" "$out" \
  "${mpi[@]}" -n "$np" ./pick.sh more.json "$shardinit" init MANIFEST -o "$out/x.safetensors"
expect_refused layout 2 "do not agree on the manifest: .*on rank $last" "$out" \
  "${mpi[@]}" -n "$np" ./pick.sh layout.json "$shardinit" init MANIFEST -o "$out/x.safetensors"
expect_refused per-rank-seed 2 "do not agree on the manifest" "$out" \
  "${mpi[@]}" -n "$np" ./pick.sh seed2.json "$shardinit" init MANIFEST --per-rank "$out/ranks"
check "per-rank-seed: no rank directory was made" test ! -e "$out/ranks"
"${mpi[@]}" -n "$np" "$shardinit" init base.json -o good.safetensors -q
expect_refused verify-seed 2 "do not agree on the manifest" "$scratch" \
  "${mpi[@]}" -n "$np" ./pick.sh seed2.json "$shardinit" verify MANIFEST good.safetensors

# The last rank's manifest, a copy of the others' (so the ranks agree on it), is the others' output:
# never replaced, even with --force, by the ranks that do not read it.
cp base.json copy.json
expect_refused output-is-another-ranks-manifest 2 "refusing to write copy.json: it is the manifest of rank $last, an input of this run" "$scratch" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o copy.json --force : \
  -n 1 "$shardinit" init copy.json -o copy.json --force
check "the last rank's manifest is intact" cmp base.json copy.json

# ---- 2. ... on the command, and every option that changes what it does --------------------------
expect_refused command 2 "do not agree on the command: init -o .* on ranks? 0.*; verify .* on rank $last" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/x.safetensors" : \
  -n 1 "$shardinit" verify base.json "$out/x.safetensors"
expect_refused output 2 "do not agree on the command: init -o $out/a.safetensors .*; init -o $out/b.safetensors on rank $last" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/a.safetensors" : \
  -n 1 "$shardinit" init base.json -o "$out/b.safetensors"
expect_refused force 2 "do not agree on the command: .*--force on rank $last" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/a.safetensors" : \
  -n 1 "$shardinit" init base.json -o "$out/a.safetensors" --force
expect_refused bench 2 "do not agree on the command: bench --elements 1000 .*; bench --elements 2000 .* on rank $last" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" bench --elements 1000 --repeat 1 --threads 1 : \
  -n 1 "$shardinit" bench --elements 2000 --repeat 1 --threads 1
# --threads and --quiet change neither the work nor the bytes: they may differ.
check "different --threads and --quiet: the ranks still agree" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/t.safetensors" -q --threads 2 : \
  -n 1 "$shardinit" init base.json -o "$out/t.safetensors" --threads 1
check "different --threads: the file equals the one-process file" cmp "$out/t.safetensors" good.safetensors
rm -f "$out/t.safetensors"

# ---- 3. Errors before the first collective step: one line, however many ranks see them --------
expect_refused usage-one-rank 2 "--threads: Value 0 not in range.* \\(rank $last on host" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/x.safetensors" : \
  -n 1 "$shardinit" init base.json -o "$out/x.safetensors" --threads 0
expect_refused usage-every-rank 2 "--threads: Value 0 not in range 1 to 4096 \\(see shardinit --help\\)$" "$out" \
  "${mpi[@]}" -n "$np" "$shardinit" init base.json -o "$out/x.safetensors" --threads 0
expect_refused rank-option 2 "--rank and --world are for runs without an MPI launcher$" "$out" \
  "${mpi[@]}" -n "$np" "$shardinit" init base.json --per-rank "$out/r" --rank 0 --world "$np"
expect_refused missing-manifest 3 "cannot read manifest $scratch/nowhere.json: No such file or directory \\(rank $last on host" "$out" \
  "${mpi[@]}" -n "$first_np" "$shardinit" init base.json -o "$out/x.safetensors" : \
  -n 1 "$shardinit" init "$scratch/nowhere.json" -o "$out/x.safetensors"
not_two=$((np == 2 ? 3 : np))  # m.json's mesh has 2 ranks
expect_refused bad-manifest-everywhere 2 "mesh \\[2\\] has 2 ranks, but $not_two ranks are running$" "$out" \
  "${mpi[@]}" -n "$not_two" "$shardinit" init m.json -o "$out/x.safetensors"
expect_refused big-bench 2 "--elements 4611686018427387904: .*more than 2\\^63 - 1 bytes, more than any memory holds$" "$out" \
  "${mpi[@]}" -n "$np" "$shardinit" bench --elements 4611686018427387904 --repeat 1 --threads 1

expect_refused inspect-missing 3 "cannot read safetensors file $scratch/nowhere.safetensors: No such file or directory" "$out" \
  "${mpi[@]}" -n "$np" "$shardinit" inspect "$scratch/nowhere.safetensors"

# ---- 4. Every rank sees the file it reads or writes ---------------------------------------------
# Two working directories: a relative path leads to a different directory on the last rank.
mkdir -p here/out there/out
expect_refused not-shared 3 "cannot see the output file that rank 0 \\(host [^)]*\\) created at out/\\.x\\.safetensors\\.tmp-.*every rank shares.* \\(rank $last on host" \
  "$scratch/here/out $scratch/there/out" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" init "$scratch/base.json" -o out/x.safetensors : \
  -n 1 -wdir "$scratch/there" "$shardinit" init "$scratch/base.json" -o out/x.safetensors
rmdir there/out
expect_refused missing-there 3 "cannot write out/x.safetensors: directory out does not exist \\(rank $last on host" \
  "$scratch/here/out $scratch/there" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" init "$scratch/base.json" -o out/x.safetensors : \
  -n 1 -wdir "$scratch/there" "$shardinit" init "$scratch/base.json" -o out/x.safetensors
cp good.safetensors here/x.safetensors
expect_refused verify-missing-there 3 "cannot read file x.safetensors: No such file or directory, although rank 0 .* can read it \\(rank $last on host" \
  "$scratch/here $scratch/there" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" verify "$scratch/base.json" x.safetensors : \
  -n 1 -wdir "$scratch/there" "$shardinit" verify "$scratch/base.json" x.safetensors
"${mpi[@]}" -n "$np" "$shardinit" init seed2.json -o there/x.safetensors -q  # same size, other values
expect_refused verify-other-file-there 3 "sees another file at x.safetensors than rank 0 .* \\(rank $last on host" \
  "$scratch/here $scratch/there" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" verify "$scratch/base.json" x.safetensors : \
  -n 1 -wdir "$scratch/there" "$shardinit" verify "$scratch/base.json" x.safetensors
# A copy that keeps the size, the modification time and the first 64 KiB (cp -p, a byte changed past
# them, touch -r): still another file (its change time and identity differ).
sed 's/"shape": \[64, 48\]/"shape": [512, 48]/' base.json >big.json
"${mpi[@]}" -n "$np" "$shardinit" init big.json -o here/big.safetensors -q
cp -p here/big.safetensors there/big.safetensors
printf '\377' | dd of=there/big.safetensors bs=1 seek=90000 conv=notrunc status=none
touch -r here/big.safetensors there/big.safetensors
expect_refused verify-touched-copy-there 3 "sees another file at big.safetensors than rank 0 .* \\(rank $last on host" \
  "$scratch/here $scratch/there" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" verify "$scratch/big.json" big.safetensors : \
  -n 1 -wdir "$scratch/there" "$shardinit" verify "$scratch/big.json" big.safetensors
rm -f here/big.safetensors there/big.safetensors
# Per-rank files may be node-local: each directory gets its own ranks' files, and verify finds them.
rm -f here/x.safetensors there/x.safetensors
check "per-rank into different directories: init" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" init "$scratch/base.json" --per-rank ranks -q : \
  -n 1 -wdir "$scratch/there" "$shardinit" init "$scratch/base.json" --per-rank ranks -q
last_file=$(printf 'rank-%05d-of-%05d.safetensors' "$last" "$np")
check "per-rank: the last rank's file is there, alone ($(ls -A there/ranks | tr '\n' ' '))" test "$(ls -A there/ranks)" = "$last_file"
check "per-rank: the other ranks' files are here ($(ls -A here/ranks | wc -l))" test "$(ls -A here/ranks | wc -l)" -eq "$first_np"
check "per-rank into different directories: verify" \
  "${mpi[@]}" -n "$first_np" -wdir "$scratch/here" "$shardinit" verify "$scratch/base.json" --per-rank ranks -q : \
  -n 1 -wdir "$scratch/there" "$shardinit" verify "$scratch/base.json" --per-rank ranks -q

echo "agreement: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
