#!/usr/bin/env bash
# The shardinit command end to end under mpirun, and as one rank without it.
#
#   cli_mpi.sh SHARDINIT MPIEXEC MANIFEST_DIR SCRATCH_DIR
#
# Needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 when run as root (CTest sets them).
# Prints "FAIL: ..." for every failed check and "cli_mpi: P passed, F failed" at the end.
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
manifests=$(realpath "$3")
scratch=$(realpath -m "$4")

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass; else fail "$what"; fi
}

# Four ranks on a two-core machine.
mpirun4() { "$mpiexec" -n 4 --oversubscribe "$@"; }
# Runs without any MPI launcher variable, as a plain process would.
plain() { env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE -u RANK -u WORLD_SIZE -u SLURM_PROCID -u SLURM_NTASKS "$@"; }

# The data offset of a safetensors file: 8 + the little-endian header length.
data_start() { echo $((8 + $(od -An -t u8 -N 8 "$1" | tr -d ' '))); }
# XORs the byte at OFFSET of FILE with 0x5a.
flip_byte() {
  local file=$1 offset=$2 byte
  byte=$(od -An -t u1 -j "$offset" -N 1 "$file" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 0x5a)))" | dd of="$file" bs=1 seek="$offset" conv=notrunc status=none
}
# No output and no temporary file in DIR (besides the ones listed).
no_tmp_in() { ! ls -A "$1" | grep -q '\.tmp'; }

rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch" || exit 2

uneven=$manifests/uneven.json   # default mesh [world]: valid at any rank count
tp2d=$manifests/tp2d.json       # "parallel" 2d, size 4
tp3d=$manifests/tp3d.json       # "parallel" 3d, size 8

for m in "$uneven" "$tp2d"; do
  name=$(basename "$m" .json)
  # 1. mpirun -np 4 init == single-process init, byte for byte.
  check "$name: mpirun -n 4 shardinit init" mpirun4 "$shardinit" init "$m" -o "$name.mpi.safetensors" -q
  check "$name: single-process shardinit init" plain "$shardinit" init "$m" -o "$name.one.safetensors" -q
  check "$name: the mpirun file equals the single-process file (cmp)" cmp "$name.mpi.safetensors" "$name.one.safetensors"
  # 2. verify under mpirun.
  check "$name: mpirun -n 4 shardinit verify exits 0" mpirun4 "$shardinit" verify "$m" "$name.mpi.safetensors" -q
done

# 3. A corrupted byte: exit 1 and the tensor on stderr. Data order is decreasing element size, then
# name: tp2d.json's 8-byte tensors ln.weight, pos come first; its 2-byte ones custom, fc2.bias,
# fc2.weight, ln2.bias last, so the file's last byte is ln2.bias's.
file=tp2d.mpi.safetensors
size=$(stat -c %s "$file")
flip_byte "$file" $((size - 1))
mpirun4 "$shardinit" verify "$tp2d" "$file" >verify.out 2>verify.err
rc=$?
check "corrupted last byte: verify exits 1 (got $rc)" test "$rc" -eq 1
check "corrupted last byte: stderr names tensor 'ln2.bias' ($(head -c 400 verify.err))" grep -q "ln2.bias" verify.err
flip_byte "$file" $((size - 1))
# ... and the first data byte: ln.weight's element 0.
offset=$(data_start "$file")
flip_byte "$file" "$offset"
mpirun4 "$shardinit" verify "$tp2d" "$file" >verify.out 2>verify.err
rc=$?
check "corrupted first data byte: verify exits 1 (got $rc)" test "$rc" -eq 1
check "corrupted first data byte: stderr names tensor 'ln.weight' ($(head -c 400 verify.err))" grep -q "ln.weight" verify.err
flip_byte "$file" "$offset"
check "restored file verifies again" mpirun4 "$shardinit" verify "$tp2d" "$file" -q

# 4. A "parallel" size that is not the rank count: a quick non-zero exit, one error, nothing left.
mkdir -p mismatch
start=$(date +%s)
timeout 60 "$mpiexec" -n 4 --oversubscribe "$shardinit" init "$tp3d" -o mismatch/out.safetensors >mismatch.out 2>mismatch.err
rc=$?
seconds=$(($(date +%s) - start))
check "size mismatch: exits non-zero, not by timeout (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "size mismatch: exits within 30 s (took $seconds s)" test "$seconds" -le 30
errors=$(grep -c "shardinit: error" mismatch.err)
check "size mismatch: exactly one 'shardinit: error' line (got $errors): $(cat mismatch.err)" test "$errors" -eq 1
check "size mismatch: the error names the rank count or the mesh: $(cat mismatch.err)" grep -Eq "mesh|rank" mismatch.err
check "size mismatch: no output file" test ! -e mismatch/out.safetensors
check "size mismatch: no temporary file ($(ls -A mismatch))" test -z "$(ls -A mismatch)"
# The same for verify (the file exists; the rank count is wrong).
timeout 60 "$mpiexec" -n 2 --oversubscribe "$shardinit" verify "$tp2d" tp2d.mpi.safetensors >mismatch.out 2>mismatch.err
rc=$?
check "verify with 2 ranks for a size-4 manifest: exits non-zero and not 1 (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 1 -a "$rc" -ne 124
errors=$(grep -c "shardinit: error" mismatch.err)
check "verify size mismatch: exactly one error line (got $errors): $(cat mismatch.err)" test "$errors" -eq 1

# 5. --per-rank under mpirun: init and verify; a corrupted rank file is found.
check "mpirun -n 4 init --per-rank" mpirun4 "$shardinit" init "$uneven" --per-rank per-rank -q
check "per-rank: four files" test "$(ls -A per-rank | wc -l)" -eq 4
for r in 0 1 2 3; do
  check "per-rank: rank-0000$r-of-00004.safetensors exists" test -s "per-rank/rank-0000$r-of-00004.safetensors"
done
check "mpirun -n 4 verify --per-rank" mpirun4 "$shardinit" verify "$uneven" --per-rank per-rank -q
file=per-rank/rank-00002-of-00004.safetensors
offset=$(data_start "$file")
flip_byte "$file" "$offset"
mpirun4 "$shardinit" verify "$uneven" --per-rank per-rank >verify.out 2>verify.err
rc=$?
check "per-rank corrupted: verify exits 1 (got $rc)" test "$rc" -eq 1
check "per-rank corrupted: stderr names the file ($(head -c 400 verify.err))" grep -q "rank-00002-of-00004" verify.err
flip_byte "$file" "$offset"

# 6. One rank without mpirun: --rank/--world, then RANK/WORLD_SIZE.
check "--rank 3 --world 8 init" plain "$shardinit" init "$uneven" --per-rank one --rank 3 --world 8 -q
check "--rank 3 --world 8 wrote only rank-00003-of-00008.safetensors ($(ls -A one | tr '\n' ' '))" \
  test "$(ls -A one)" = "rank-00003-of-00008.safetensors"
check "--rank 3 --world 8 verify" plain "$shardinit" verify "$uneven" --per-rank one --rank 3 --world 8 -q
check "RANK=3 WORLD_SIZE=8 init" plain RANK=3 WORLD_SIZE=8 "$shardinit" init "$uneven" --per-rank env -q
check "RANK=3 WORLD_SIZE=8 wrote only rank-00003-of-00008.safetensors ($(ls -A env | tr '\n' ' '))" \
  test "$(ls -A env)" = "rank-00003-of-00008.safetensors"
check "RANK=3 WORLD_SIZE=8 verify" plain RANK=3 WORLD_SIZE=8 "$shardinit" verify "$uneven" --per-rank env -q
check "the --rank file equals the RANK file" cmp one/rank-00003-of-00008.safetensors env/rank-00003-of-00008.safetensors
# The one-rank file equals the same rank's file of an 8-rank mpirun.
check "mpirun -n 8 init --per-rank" "$mpiexec" -n 8 --oversubscribe "$shardinit" init "$uneven" --per-rank eight -q
check "rank 3 of 8 alone equals rank 3 of mpirun -n 8" cmp one/rank-00003-of-00008.safetensors eight/rank-00003-of-00008.safetensors
check "--rank 3 --world 8 verify of the mpirun rank files" plain "$shardinit" verify "$uneven" --per-rank eight --rank 3 --world 8 -q
# The 2d manifest needs a multiple of 4 ranks (8 is 2 data-parallel replicas): --world 6 is refused
# with status 2.
plain "$shardinit" init "$tp2d" --per-rank bad --rank 3 --world 6 -q 2>bad.err
rc=$?
check "--world 6 for a size-4 manifest exits 2 (got $rc): $(cat bad.err)" test "$rc" -eq 2
check "--world 6 for a size-4 manifest says why: $(cat bad.err)" grep -q "is 4, which does not divide the 6 ranks" bad.err
check "--world 6 for a size-4 manifest writes no rank file" test -z "$(ls -A bad 2>/dev/null)"
plain "$shardinit" init "$tp2d" --per-rank dp2 --rank 5 --world 8 -q
check "--world 8 for a size-4 manifest: data parallel 2, rank 5's file" test -f dp2/rank-00005-of-00008.safetensors

# 7. A file-size limit on every rank (ulimit -f: 100 KiB) while writing a 34 MiB file: a clear
# error naming the file and the limit, exit 3, within seconds (a collective write that one failing
# aggregator leaves half-done would hang here), and nothing at the target, no temporary file. Where
# the filesystem reserves blocks, rank 0 finds the limit as it gives the file its size, before any
# generation ("cannot reserve"); elsewhere a rank's write finds it ("cannot write").
mkdir -p limited
cat > limited/m.json <<'JSON'
{"seed": 1, "parallel": {"tensor": {"mode": "1d", "size": 3}},
 "tensors": [{"name": "w", "shape": [3000, 3000], "layout": "linear_col", "init": {"fn": "normal"}}]}
JSON
start=$(date +%s)
timeout 60 "$mpiexec" -n 3 --oversubscribe sh -c "ulimit -f 100; exec \"$shardinit\" init limited/m.json -o limited/out.safetensors" \
  >limited.out 2>limited.err
rc=$?
seconds=$(( $(date +%s) - start ))
check "file-size limit: exits 3, not by timeout (rc $rc)" test "$rc" -eq 3
check "file-size limit: within 30 s (took $seconds s)" test "$seconds" -le 30
check "file-size limit: the error says what happened ($(grep shardinit limited.err | head -c 300))" \
  grep -Eq "shardinit: error: cannot (write|reserve [0-9]+ bytes for) limited/out.safetensors.*File too large" limited.err
check "file-size limit: nothing but the manifest left ($(ls -A limited | tr '\n' ' '))" test "$(ls -A limited)" = "m.json"

echo "cli_mpi: $passed passed, $failed failed"
test "$failed" -eq 0
