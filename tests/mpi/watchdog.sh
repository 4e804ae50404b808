#!/usr/bin/env bash
# Ranks that stop making progress: stopped by the batch system (SIGSTOP), stuck in a system call (a
# hung filesystem: the "stall" fault blocks in pause() answering nobody), or a job cancelled through
# mpirun. Each must end within a bounded time with one error that names the rank, while the waiting
# ranks sleep rather than spin, and leave nothing; and a rank that is slow but alive must not be
# taken for stuck, even with a limit shorter than one of its steps. CPU is measured per rank, while
# the ranks live (a job the watchdog ends is killed, and then `time` never sees its ranks).
#
#   watchdog.sh SHARDINIT MPIEXEC NP MANIFEST SCRATCH_DIR          (NP >= 2)
#
# Prints "FAIL: ..." for every failed check and "watchdog: P passed, F failed" at the end.
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
np=$3
manifest=$(realpath "$4")
scratch=$(realpath -m "$5")
last=$((np - 1))

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
mpi=("$mpiexec" --oversubscribe -n "$np")
# No process of this test may outlive its job (a guardian, io/leftovers.hpp, takes a moment to see
# its rank's end: allow it 10 s).
leftovers() {
  local left
  for _ in $(seq 100); do
    left=$(pgrep -f "$scratch/.*safetensors|--per-rank $scratch" | tr '\n' ' ')
    [ -z "$left" ] && return
    sleep 0.1
  done
  echo "$left"
}

# Wall time: bash's `time` reports it to the millisecond ($SECONDS counts whole seconds, too coarse
# for a ratio over a job of a second or two).
TIMEFORMAT='%R %U %S'
wall_of() { awk '{printf "%.2f", $1}' "$1"; }
cpu_of() { awk '{printf "%.2f", $2 + $3}' "$1"; }

# CPU seconds used so far by the ranks of the job whose `timeout` has pid $1 (timeout -> mpirun ->
# the ranks), from /proc/PID/stat (utime + stime, fields 14 and 15, in clock ticks). Read while the
# ranks live: a job that ends by the watchdog is killed, and then `time` does not see its ranks' CPU.
ticks_per_second=$(getconf CLK_TCK)
ranks_cpu() {
  local launcher ticks=0 pid t
  launcher=$(pgrep -P "$1" | head -1)
  for pid in $( [ -n "$launcher" ] && pgrep -P "$launcher"); do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && ticks=$((ticks + t))
  done
  awk -v t="$ticks" -v hz="$ticks_per_second" 'BEGIN { printf "%.2f", t / hz }'
}

# stuck LABEL FAULT RANK COMMAND...: runs the job with SHARDINIT_FAULT=FAULT and a 3 s watchdog;
# checks status 3, the time, one error naming RANK as not responding, that the job's ranks used
# little CPU while they waited (blocking MPI collectives spin at 100 %), and no leftovers.
stuck() {
  local label=$1 fault=$2 rank=$3
  shift 3
  mkdir -p "$label"
  { time SHARDINIT_FAULT=$fault timeout 120 "${mpi[@]}" "$shardinit" "$@" --watchdog 3 \
      >"$label.out" 2>"$label.err"; } 2>"$label.time" &
  local job=$!
  # The faulty rank stops after its first piece, within a second of the start; the job ends no
  # sooner than the first roll call (1.5 s into the wait) plus the 3 s limit. From 2 s to 4 s every
  # live rank is waiting: their CPU over those 2 s is measured.
  sleep 2
  local before after
  before=$(ranks_cpu "$(pgrep -P "$job" -f '^timeout' | head -1)")
  sleep 2
  after=$(ranks_cpu "$(pgrep -P "$job" -f '^timeout' | head -1)")
  wait "$job"
  local rc=$? seconds errors waited
  seconds=$(wall_of "$label.time")
  waited=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')
  errors=$(grep -c "shardinit: error" "$label.err")
  check "$label: exits 3, not by timeout (rc $rc): $(grep shardinit "$label.err" | head -c 400)" test "$rc" -eq 3
  # 3 s limit; the roll call waits 2 s; other ranks than 0 call it 4 s later: at most ~10 s, bounded at 40.
  check "$label: ends within 40 s (took $seconds s)" awk -v wall="$seconds" 'BEGIN { exit !(wall <= 40) }'
  check "$label: one error line (got $errors)" test "$errors" -eq 1
  check "$label: the error names rank $rank as not responding: $(grep shardinit "$label.err" | head -c 400)" \
    grep -Eq "no progress for [0-9]+ s while .*: rank $rank \(host [^)]*\) does not respond" "$label.err"
  # Waiting ranks sleep: all of them together used under 0.6 s of CPU in those 2 s, where one
  # spinning rank alone would use nearly 2.
  check "$label: the waiting ranks slept ($waited s of CPU from 2 s to 4 s, all ranks; $before s before)" \
    awk -v cpu="$waited" 'BEGIN { exit !(cpu < 0.6) }'
  check "$label: no process left ($(leftovers))" test -z "$(leftovers)"  # waits for the guardians too
  check "$label: nothing left in $label ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
}

cat >tiny.json <<'JSON'
{"seed": 1, "tensors": [{"name": "t", "shape": [16], "init": {"fn": "normal"}}]}
JSON

# The global-file runs use a manifest large enough that every rank has bytes of its own to write
# (each writes its range of the file: docs/architecture.md), so that its first piece comes.
sized=$scratch/sized.json
cat >"$sized" <<JSON
{"seed": 4, "tensors": [{"name": "w", "shape": [$((np * 1024 + 5)), 16], "init": {"fn": "normal", "std": 0.02}}]}
JSON
check "a good file to verify" "${mpi[@]}" "$shardinit" init "$sized" -o good.safetensors -q
stuck init.stop.last "stop@$last" "$last" init "$sized" -o "init.stop.last/out.safetensors"
stuck init.stop.0 "stop@0" 0 init "$sized" -o "init.stop.0/out.safetensors"
stuck init.stall.last "stall@$last" "$last" init "$sized" -o "init.stall.last/out.safetensors"
stuck per-rank.stop.last "stop@$last" "$last" init "$manifest" --per-rank "$scratch/per-rank.stop.last/ranks"
stuck per-rank.stall.0 "stall@0" 0 init "$manifest" --per-rank "$scratch/per-rank.stall.0/ranks"
stuck verify.stall.last "stall@$last" "$last" verify "$sized" good.safetensors
# Stopped as it starts generating, while the others finish their ranges and wait for it.
stuck init.stop_in_fill.last "stop_in_fill@$last" "$last" init "$sized" -o "init.stop_in_fill.last/out.safetensors"
check "the per-rank jobs removed the rank directories they made" test ! -e per-rank.stop.last/ranks -a ! -e per-rank.stall.0/ranks

# Slow but alive. Per-rank files over a pipeline of NP stages: only rank 0 (stage 0) holds the big
# tensor (8 pieces of 64 MiB, f64 trunc_normal: about 2 s of one core here) while the others wait for
# it in the commit's agreement, under a watchdog limit shorter than that step: roll calls come while
# rank 0 generates, and it answers them between pieces. Each rank's own CPU is measured (timed_rank),
# so that the waiting ranks are told from the working one: a spinning rank would burn most of a core.
cat >staged.json <<JSON
{"seed": 9, "parallel": {"pipeline": $np}, "tensors": [
  {"name": "big", "shape": [8, 8388608], "dtype": "f64", "init": {"fn": "trunc_normal", "std": 0.5}, "stage": 0},
  {"name": "small", "shape": [16], "init": {"fn": "normal"}, "stage": $last}]}
JSON
cat >timed_rank.sh <<'SH'
#!/usr/bin/env bash
# timed_rank.sh PREFIX COMMAND...: runs COMMAND; writes its "wall user system" seconds to PREFIX.RANK.
prefix=$1
shift
TIMEFORMAT='%R %U %S'
{ time "$@" 2>&3; } 3>&2 2>"$prefix.${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}"
SH
chmod +x timed_rank.sh
# The same wrapper on the tiny job: each rank's start-up CPU.
"${mpi[@]}" ./timed_rank.sh "$scratch/tiny-rank" "$shardinit" init tiny.json --per-rank tiny-ranks -q >/dev/null 2>&1
timeout 300 "${mpi[@]}" ./timed_rank.sh "$scratch/staged-rank" "$shardinit" init staged.json --per-rank staged-ranks \
  -q --threads 1 --watchdog 1 >staged.out 2>staged.err
rc=$?
check "slow but alive, per-rank files, --watchdog 1: completes (rc $rc): $(grep shardinit staged.err | head -c 300)" test "$rc" -eq 0
check "slow but alive: rank 0 worked longer than the limit ($(cat staged-rank.0 2>/dev/null) s wall/user/system)" \
  awk '{ exit !($2 + $3 > 1) }' staged-rank.0
for ((r = 1; r < np; r++)); do
  cpu=$(cpu_of "staged-rank.$r" 2>/dev/null)
  seconds=$(wall_of "staged-rank.$r" 2>/dev/null)
  startup=$(cpu_of "tiny-rank.$r" 2>/dev/null)
  check "slow but alive: waiting rank $r slept (CPU ${cpu:-?} s over ${seconds:-?} s of wall time; start-up ${startup:-?} s)" \
    awk -v cpu="${cpu:-1e9}" -v wall="${seconds:-0}" -v startup="${startup:-0}" 'BEGIN { exit !(cpu < startup + 0.25 * wall + 0.1) }'
done
rm -rf tiny-ranks staged-ranks

# Slow but alive, the global file: each rank generates and writes its byte range of a replicated
# tensor of 4 pieces of 64 MiB; the job completes, verifies and equals one process's file.
cat >slow.json <<'JSON'
{"seed": 9, "tensors": [
  {"name": "big", "shape": [4, 8388608], "dtype": "f64", "init": {"fn": "trunc_normal", "std": 0.5}},
  {"name": "small", "shape": [16], "init": {"fn": "normal"}}]}
JSON
timeout 300 "${mpi[@]}" "$shardinit" init slow.json -o slow.safetensors -q --threads 1 --watchdog 2 >slow.out 2>slow.err
rc=$?
check "slow but alive, global file: completes (rc $rc): $(grep shardinit slow.err | head -c 300)" test "$rc" -eq 0
check "slow but alive, global file: verifies" timeout 300 "${mpi[@]}" "$shardinit" verify slow.json slow.safetensors -q
check "slow but alive, global file: equals one process's" \
  sh -c "env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE '$shardinit' init slow.json -o one.safetensors -q && cmp one.safetensors slow.safetensors"
rm -f slow.safetensors one.safetensors
rm -rf slow-ranks

# A rank on a slow filesystem: 3 s without an answer after every piece, under a 5 s limit. The
# others call the roll while it is silent (after 2.5 s of waiting); it answers within the limit of
# being asked, and the job completes. (Before, a rank had only a quarter of the limit to answer.)
cat >two.json <<'JSON'
{"seed": 3, "tensors": [
  {"name": "a", "shape": [64, 48], "init": {"fn": "normal"}, "layout": {"shard": {"0": [0]}}},
  {"name": "b", "shape": [64, 48], "init": {"fn": "uniform"}, "layout": {"shard": {"1": [0]}}}]}
JSON
check "silent for 3 s per piece under --watchdog 5: completes" \
  env SHARDINIT_FAULT="slow@$last" timeout 300 "${mpi[@]}" "$shardinit" init two.json -o two.safetensors -q --watchdog 5
check "... and the file verifies" timeout 300 "${mpi[@]}" "$shardinit" verify two.json two.safetensors -q
check "silent for 3 s per piece under --watchdog 5, per-rank files: completes" \
  env SHARDINIT_FAULT="slow@$last" timeout 300 "${mpi[@]}" "$shardinit" init two.json --per-rank two-ranks -q --watchdog 5
rm -rf two.safetensors two-ranks

# A file appears at one rank's target while it writes (--per-rank): no rank's file is committed.
SHARDINIT_FAULT="squat@$last" timeout 120 "${mpi[@]}" "$shardinit" init "$manifest" --per-rank squat -q >squat.out 2>squat.err
rc=$?
squatted=$(printf 'rank-%05d-of-%05d.safetensors' "$last" "$np")
check "squatted target: exits 3 (rc $rc): $(grep shardinit squat.err | head -c 300)" test "$rc" -eq 3
check "squatted target: the error names it and rank $last" grep -q "refusing to replace existing file squat/$squatted (use --force) (rank $last" squat.err
check "squatted target: no rank file committed, the squatter's file untouched ($(ls -A squat | tr '\n' ' '))" \
  test "$(ls -A squat)" = "$squatted" -a "$(cat "squat/$squatted")" = "not ours"

# A job cancelled through mpirun (Ctrl-C, scancel): mpirun stops every rank; nothing is left. Rank 0
# is "slow" (3 s after each piece), so the job is still writing when the signal comes, however fast
# the machine: a job that had already committed would leave its file, rightly.
cat >long.json <<'JSON'
{"seed": 5, "tensors": [{"name": "w", "shape": [64, 1048576], "dtype": "f64", "init": {"fn": "trunc_normal"}}]}
JSON
for signal in INT TERM; do
  label=cancel.$signal
  mkdir -p "$label"
  SHARDINIT_FAULT=slow@0 "${mpi[@]}" "$shardinit" init long.json -o "$label/out.safetensors" -q >"$label.out" 2>"$label.err" &
  job=$!
  for _ in $(seq 600); do  # until the temporary exists (at most 60 s)
    ls -A "$label" | grep -q tmp && break
    sleep 0.1
  done
  seen=$(ls -A "$label" | tr '\n' ' ')
  kill -s "$signal" "$job"
  start=$SECONDS
  for _ in $(seq 600); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  wait "$job"
  rc=$?
  check "$label: the temporary existed when mpirun got SIG$signal ($seen)" test -n "$seen"
  check "$label: mpirun ended non-zero within 60 s (rc $rc, $((SECONDS - start)) s)" test "$rc" -ne 0 -a "$((SECONDS - start))" -le 60
  check "$label: no process left ($(leftovers))" test -z "$(leftovers)"
  check "$label: nothing left ($(ls -A "$label" | tr '\n' ' '))" test -z "$(ls -A "$label")"
done

echo "watchdog: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
