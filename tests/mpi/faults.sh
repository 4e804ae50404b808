#!/usr/bin/env bash
# Faults under MPI: one rank fails, the whole job must end quickly with one clear error and leave no
# file at the target path. Faults are injected with SHARDINIT_FAULT=SITE@RANK (src/mpi/
# fault_injection.hpp) on the last rank and on rank 0, at every site, for init (one file, a Hugging
# Face directory, and --per-rank) and verify. The one-file and HF runs use a manifest written here,
# large enough that every rank has bytes of its own to write (each rank writes its range of the file:
# docs/architecture.md); the per-rank runs use MANIFEST.
#
#   faults.sh SHARDINIT MPIEXEC NP MANIFEST SCRATCH_DIR
#
# Prints "FAIL: ..." for every failed check and "faults: P passed, F failed" at the end.
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
np=$3
manifest=$(realpath "$4")
scratch=$(realpath -m "$5")

passed=0
failed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

rm -rf "$scratch"
mkdir -p "$scratch"
cd "$scratch" || exit 2

# run_faulty LABEL FAULT COMMAND...: runs mpirun with the fault; sets rc, seconds, errors (the
# number of "shardinit: error" lines) and leaves stderr in LABEL.err.
run_faulty() {
  local label=$1 fault=$2
  shift 2
  local start=$SECONDS
  SHARDINIT_FAULT=$fault timeout 60 "$mpiexec" -n "$np" --oversubscribe "$shardinit" "$@" >"$label.out" 2>"$label.err"
  rc=$?
  seconds=$((SECONDS - start))
  errors=$(grep -c "shardinit: error" "$label.err")
}

last=$((np - 1))
per_rank_manifest=$manifest
manifest=$scratch/sized.json
rows=$((np * 1024 + 37))
cat >"$manifest" <<JSON
{"seed": 3, "tensors": [
  {"name": "w", "shape": [$rows, 16], "init": {"fn": "normal", "std": 0.02}},
  {"name": "b", "shape": [100], "dtype": "bf16", "init": {"fn": "uniform"}}]}
JSON
shard=$((rows * 16 * 4 / 3))  # --max-shard-size: w is larger, so it gets a shard of its own
# A good file for the verify faults.
check "np $np: init without faults" "$mpiexec" -n "$np" --oversubscribe "$shardinit" init "$manifest" -o good.safetensors -q

for rank in "$last" 0; do
  for site in plan fill write; do
    label="hf.$site.$rank"
    mkdir -p "$label"
    run_faulty "$label" "$site@$rank" init "$manifest" -o "$label/out" --format hf --max-shard-size "$shard" -q
    check "$label: exits 3, not by timeout (rc $rc): $(head -c 300 "$label.err")" test "$rc" -eq 3
    check "$label: ends within 30 s (took $seconds s)" test "$seconds" -le 30
    check "$label: exactly one error line (got $errors): $(head -c 300 "$label.err")" test "$errors" -eq 1
    check "$label: the error names rank $rank: $(head -c 300 "$label.err")" grep -q "rank $rank" "$label.err"
    check "$label: no directory, no staging directory ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
  done
  for site in plan fill write; do
    label="init.$site.$rank"
    mkdir -p "$label"
    run_faulty "$label" "$site@$rank" init "$manifest" -o "$label/out.safetensors" -q
    check "$label: exits 3, not by timeout (rc $rc): $(head -c 300 "$label.err")" test "$rc" -eq 3
    check "$label: ends within 30 s (took $seconds s)" test "$seconds" -le 30
    check "$label: exactly one error line (got $errors): $(head -c 300 "$label.err")" test "$errors" -eq 1
    check "$label: the error names rank $rank: $(head -c 300 "$label.err")" grep -q "rank $rank" "$label.err"
    check "$label: nothing left, no temporary ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
  done
  # --per-rank: every rank stages its own file and none appears unless all succeeded.
  for site in plan write; do
    label="per-rank.$site.$rank"
    run_faulty "$label" "$site@$rank" init "$per_rank_manifest" --per-rank "$label" -q
    check "$label: exits 3, not by timeout (rc $rc): $(head -c 300 "$label.err")" test "$rc" -eq 3
    check "$label: ends within 30 s (took $seconds s)" test "$seconds" -le 30
    check "$label: exactly one error line (got $errors): $(head -c 300 "$label.err")" test "$errors" -eq 1
    check "$label: no rank file and no temporary ($(ls -A "$label" 2>/dev/null | tr '\n' ' '))" \
      test -z "$(ls -A "$label" 2>/dev/null)"
  done
  for site in plan read; do
    label="verify.$site.$rank"
    run_faulty "$label" "$site@$rank" verify "$manifest" good.safetensors -q
    check "$label: exits 3, not by timeout (rc $rc): $(head -c 300 "$label.err")" test "$rc" -eq 3
    check "$label: ends within 30 s (took $seconds s)" test "$seconds" -le 30
    check "$label: exactly one error line (got $errors): $(head -c 300 "$label.err")" test "$errors" -eq 1
    check "$label: the error names rank $rank: $(head -c 300 "$label.err")" grep -q "rank $rank" "$label.err"
  done
done
check "the good file still verifies" "$mpiexec" -n "$np" --oversubscribe "$shardinit" verify "$manifest" good.safetensors -q

# kill -9 of a rank mid-write (SIGKILL to itself after its first piece reached the file): the job
# ends, non-zero, and nothing is left: not the target, not the temporary. When rank 0 (which holds
# the temporary) is the one killed, its guardian process removes it (src/format/leftovers.hpp).
if [ "$np" -gt 1 ]; then
  for rank in "$last" 0; do
    label="kill.$rank"
    mkdir -p "$label"
    run_faulty "$label" "kill@$rank" init "$manifest" -o "$label/out.safetensors" -q
    check "$label: exits non-zero, not by timeout (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "$label: ends within 30 s (took $seconds s)" test "$seconds" -le 30
    check "$label: no file at the target path" test ! -e "$label/out.safetensors"
    for _ in $(seq 50); do [ -z "$(ls -A "$label")" ] && break; sleep 0.1; done  # the guardian's moment
    check "$label: no temporary either ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
    # The same during a Hugging Face write: the staging directory goes too.
    label="kill-hf.$rank"
    mkdir -p "$label"
    run_faulty "$label" "kill@$rank" init "$manifest" -o "$label/out" --format hf --max-shard-size "$shard" -q
    check "$label: exits non-zero, not by timeout (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "$label: no directory at the target path" test ! -e "$label/out"
    for _ in $(seq 50); do [ -z "$(ls -A "$label")" ] && break; sleep 0.1; done
    check "$label: no staging directory either ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
  done
fi

# A malformed SHARDINIT_FAULT is a usage error, on every rank count.
run_faulty bad-variable "bogus" init "$manifest" -o bad.safetensors -q
check "malformed SHARDINIT_FAULT: exits 2 (rc $rc)" test "$rc" -eq 2
check "malformed SHARDINIT_FAULT: names the value: $(head -c 300 bad-variable.err)" grep -q '"bogus"' bad-variable.err

echo "faults: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
