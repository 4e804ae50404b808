#!/usr/bin/env bash
# shardinit across hosts: a bed of 2 hosts (bed.sh: network, mount and UTS namespaces; Open MPI over
# TCP between them), 2 ranks each. Checks that the global file made by 2 hosts x 2 ranks is
# byte-identical to one process's; that per-rank files land in each host's node-local directory; and
# that each fault of a real multi-node job ends within a bounded time with one error and nothing left
# on any host: a node-local output directory missing on one host, an output path that is node-local,
# a stale manifest on one host, every process of one host killed mid-write, one host's rank stopped.
#
#   multihost.sh SHARDINIT SCRATCH_DIR
#
# Exit status: 0 if every check passed, 77 if this machine refuses namespaces ("SKIP: ..."), 1
# otherwise (with a "FAIL: ..." line per failed check).
set -u

shardinit=$(realpath -- "$1")
scratch=$(realpath -m -- "$2")
here=$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")
bed=$here/bed.sh
dir=$scratch/bed
shared=$dir/shared
local0=$dir/hosts/h0-local  # host 0's node-local directory, as seen from here
local1=$dir/hosts/h1-local

passed=0
failed=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

job=
on_exit() {
  local rc=$?
  [[ -n $job ]] && kill -KILL "$job" 2>/dev/null
  "$bed" down "$dir" || { echo "FAIL: bed.sh down $dir"; rc=1; }
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$scratch" && cd "$scratch" || exit 1
"$bed" down "$dir" >/dev/null 2>&1  # what a killed earlier run may have left
out=$("$bed" up "$dir" 2)
case $? in
  0) ;;
  77) echo "$out"; exit 77 ;;
  *) echo "FAIL: bed.sh up $dir 2: $out"; exit 1 ;;
esac

# mpirun across the bed, 2 ranks per host (ranks 0-1 on mh0, 2-3 on mh1), under a time limit. The
# bed starts remote daemons with a clean environment, as ssh does: the sanitizers' settings (of
# scripts/sanitize.sh) must travel with -x.
forward=()
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do [[ -n ${!v:-} ]] && forward+=(-x "$v"); done
mh_mpirun() { timeout 120 "$bed" mpirun "$dir" -np 4 --map-by ppr:2:node "${forward[@]}" "$@"; }
# What the processes of both hosts are: none may be left once a job is over (guardians included:
# they need a moment after their rank ends).
processes_left() {
  local left
  for _ in $(seq 100); do
    left="$("$bed" pids "$dir" 0; "$bed" pids "$dir" 1)"
    [[ -z $left ]] && return 1
    sleep 0.1
  done
  echo "$left" | tr '\n' ' '
  return 0
}
# nothing_in DIR...: no file (no temporary either) in any of them.
nothing_in() {
  local d
  for d in "$@"; do [[ -z $(ls -A "$d" 2>/dev/null) ]] || return 1; done
}

cp "$here/../mpi/manifests/uneven.json" "$shared/m.json"
plain() { env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE "$@"; }

# ---- 1. The global file over 2 hosts x 2 ranks is one process's, byte for byte ----------------
check "2 hosts x 2 ranks: init -o shared/x" mh_mpirun "$shardinit" init "$shared/m.json" -o "$shared/x.safetensors" -q
check "one process: init" plain "$shardinit" init "$shared/m.json" -o "$scratch/one.safetensors" -q --force
check "the 4-rank file equals the one-process file" cmp "$shared/x.safetensors" "$scratch/one.safetensors"
check "2 hosts x 2 ranks: verify" mh_mpirun "$shardinit" verify "$shared/m.json" "$shared/x.safetensors" -q

# ---- 2. Per-rank files land in node-local directories ------------------------------------------
check "per-rank into node-local directories" mh_mpirun "$shardinit" init "$shared/m.json" --per-rank "$dir/node-local/ranks" -q
check "host mh0 holds ranks 0 and 1 ($(ls -A "$local0/ranks" 2>/dev/null | tr '\n' ' '))" \
  test "$(ls -A "$local0/ranks" | tr '\n' ' ')" = "rank-00000-of-00004.safetensors rank-00001-of-00004.safetensors "
check "host mh1 holds ranks 2 and 3 ($(ls -A "$local1/ranks" 2>/dev/null | tr '\n' ' '))" \
  test "$(ls -A "$local1/ranks" | tr '\n' ' ')" = "rank-00002-of-00004.safetensors rank-00003-of-00004.safetensors "
check "per-rank verify, each rank in its node-local directory" \
  mh_mpirun "$shardinit" verify "$shared/m.json" --per-rank "$dir/node-local/ranks" -q
plain "$shardinit" inspect "$local0/ranks" >inspect.out 2>inspect.err
check "inspect of one host's directory says which ranks are missing ($(head -c 300 inspect.err))" \
  grep -q "missing rank-00002-of-00004.safetensors, rank-00003-of-00004.safetensors (2 of 4 ranks)" inspect.err
check "inspect --partial of one host's directory" sh -c "env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE '$shardinit' inspect '$local0/ranks' --partial >/dev/null"
rm -rf "$local0/ranks" "$local1/ranks"

# expect_error LABEL STATUS PATTERN COMMAND...: the job ends within 60 s with STATUS and exactly one
# "shardinit: error" line matching PATTERN; afterwards no process of the job is left on either host.
expect_error() {
  local label=$1 status=$2 pattern=$3
  shift 3
  local start=$SECONDS
  "$@" >"$label.out" 2>"$label.err"
  local rc=$? seconds=$((SECONDS - start)) errors
  errors=$(grep -c "shardinit: error" "$label.err")
  check "$label: exits $status (rc $rc): $(grep shardinit "$label.err" | head -c 400)" test "$rc" -eq "$status"
  check "$label: within 60 s (took $seconds s)" test "$seconds" -le 60
  check "$label: one error line (got $errors)" test "$errors" -eq 1
  check "$label: the error names the rank and its host: $(grep shardinit "$label.err" | head -c 500)" grep -Eq -e "$pattern" "$label.err"
  local left
  left=$(processes_left) && check "$label: no process left on any host ($left)" false
}

# ---- 3. A node-local output directory, missing on one host; an output path that is node-local ---
mkdir -p "$local0/out"  # on mh0 only
expect_error local-missing 3 "cannot write $dir/node-local/out/x.safetensors: directory $dir/node-local/out does not exist \(rank 2 on host mh1\)" \
  mh_mpirun "$shardinit" init "$shared/m.json" -o "$dir/node-local/out/x.safetensors"
check "local-missing: nothing left on either host" nothing_in "$local0/out" "$local1"
mkdir -p "$local1/out"  # now on both, but not the same directory
expect_error local-output 3 "cannot see the output file that rank 0 \(host mh0\) created .* \(rank 2 on host mh1\)" \
  mh_mpirun "$shardinit" init "$shared/m.json" -o "$dir/node-local/out/x.safetensors"
check "local-output: nothing left on either host" nothing_in "$local0/out" "$local1/out"

# ---- 4. A stale copy of the manifest on one host -------------------------------------------------
cp "$shared/m.json" "$local0/m.json"
sed 's/"seed": 777/"seed": 778/' "$shared/m.json" >"$local1/m.json"
expect_error stale-manifest 2 "do not agree on the manifest: .*seed 777.* on ranks 0-1 \(host mh0\); .*seed 778.* on ranks 2-3 \(host mh1\)" \
  mh_mpirun "$shardinit" init "$dir/node-local/m.json" -o "$shared/stale.safetensors"
check "stale-manifest: no output" nothing_in "$shared/stale.safetensors"

# ---- 5. Every process of one host killed mid-write -----------------------------------------------
# Rank 2 stalls after its first piece (so the write is surely under way), then all of mh1 is killed.
mkdir -p "$shared/killed"
SHARDINIT_FAULT=stall@2 mh_mpirun -x SHARDINIT_FAULT "$shardinit" init "$shared/m.json" -o "$shared/killed/x.safetensors" \
  >killed.out 2>killed.err &
job=$!
for _ in $(seq 300); do  # until the temporary exists and rank 2 has had time to stall
  [[ -n $(ls -A "$shared/killed") ]] && break
  sleep 0.1
done
sleep 1
start=$SECONDS
"$bed" pids "$dir" 1 | xargs -r kill -KILL
wait "$job"
rc=$?
job=
check "host killed: mpirun ends non-zero (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "host killed: within 60 s (took $((SECONDS - start)) s)" test $((SECONDS - start)) -le 60
check "host killed: at most one shardinit error line ($(grep -c 'shardinit: error' killed.err))" \
  test "$(grep -c 'shardinit: error' killed.err)" -le 1
left=$(processes_left) && check "host killed: no process left on any host ($left)" false
check "host killed: nothing left in shared/killed ($(ls -A "$shared/killed" | tr '\n' ' '))" nothing_in "$shared/killed"

# ---- 6. One host's rank stopped (SIGSTOP by the batch system) ------------------------------------
mkdir -p "$shared/stopped"
expect_error stopped 3 "no progress for [0-9]+ s while .*: rank 3 \(host mh1\) does not respond" \
  env SHARDINIT_FAULT=stop@3 timeout 120 "$bed" mpirun "$dir" -np 4 --map-by ppr:2:node "${forward[@]}" -x SHARDINIT_FAULT \
  "$shardinit" init "$shared/m.json" -o "$shared/stopped/x.safetensors" --watchdog 3
check "stopped: nothing left in shared/stopped ($(ls -A "$shared/stopped" | tr '\n' ' '))" nothing_in "$shared/stopped"

echo "multihost: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
