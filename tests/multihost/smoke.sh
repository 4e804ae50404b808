#!/usr/bin/env bash
# smoke.sh: checks the multi-host test bed (bed.sh) end to end, on a bed of 2 hosts.
#
#   smoke.sh SCRATCH_DIR
#
# The bed lives in SCRATCH_DIR/bed; the job outputs stay in SCRATCH_DIR. Checks: (1) the hosts'
# hostnames and bed.sh exec; (2) node-local and shared storage; (3) a 4-rank MPI job, 2 ranks per
# host: processor names, an allreduce, point to point between the hosts, -x, node-local files;
# (4) bed.sh pids of a running job, and kill -9 of all of host 1 ends the job, non-zero, within
# 60 s; (5) down leaves no namespace, mount or process. MPICC names the compiler (default mpicc).
#
# Prints "FAIL: ..." for every failed check, then the times taken. Exit status: 0 if every check
# passed, 77 if this machine refuses the bed ("SKIP: ..."), 1 otherwise.
set -u

if (($# != 1)); then
  echo "usage: smoke.sh SCRATCH_DIR" >&2
  exit 2
fi
here=$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")
bed=$here/bed.sh
scratch=$(realpath -m -- "$1")
dir=$scratch/bed

failed=0
fail() {
  echo "FAIL: $*"
  failed=$((failed + 1))
}
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  "$@" || fail "$what"
}
# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds; fails after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
running() { kill -0 "$1" 2>/dev/null; }

# On any exit: stop a job still running and take the bed down (a no-op after step 5).
job=
on_exit() {
  local rc=$?
  if [[ -n $job ]]; then kill -KILL "$job" 2>/dev/null; fi
  if ! "$bed" down "$dir"; then
    echo "FAIL: bed.sh down $dir, on exit"
    rc=1
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p -- "$scratch" && cd -- "$scratch" || exit 1
"$bed" down "$dir" >/dev/null 2>&1 # what a killed earlier run may have left

start=$EPOCHREALTIME
out=$("$bed" up "$dir" 2)
rc=$?
up_s=$(since "$start")
if ((rc == 77)); then
  echo "$out"
  exit 77
elif ((rc != 0)); then
  echo "FAIL: bed.sh up $dir 2 exited $rc: $out"
  exit 1
fi
mapfile -t bed_netns < <("$bed" info "$dir" | sed -n 's/^[a-z0-9_]*netns=//p')

# --- 1. hostnames, and bed.sh exec's working directory, stdin and exit status.
for i in 0 1; do
  name=$("$bed" exec "$dir" "$i" hostname)
  check "host $i's hostname is '$name', not mh$i" test "$name" = "mh$i"
done
name=$(hostname)
check "the root namespace's hostname changed to '$name'" test "${name#mh}" = "$name"
check "bed.sh exec keeps the working directory" test "$("$bed" exec "$dir" 1 pwd)" = "$scratch"
check "bed.sh exec passes stdin and stdout" test "$(echo in | "$bed" exec "$dir" 1 cat)" = in
"$bed" exec "$dir" 1 sh -c 'exit 42'
rc=$?
check "bed.sh exec passes the exit status (42, got $rc)" test "$rc" -eq 42
check "host mh1 and address 10.77.0.12 name host 1" \
  test "$("$bed" exec "$dir" mh1 hostname)$("$bed" exec "$dir" 10.77.0.12 hostname)" = mh1mh1

# --- 2. node-local and shared storage.
echo from-mh0 | "$bed" exec "$dir" 0 tee "$dir/node-local/probe.txt" >/dev/null
check "host 0 sees its node-local file" "$bed" exec "$dir" 0 grep -qx from-mh0 "$dir/node-local/probe.txt"
check "host 1 does not see host 0's node-local file" "$bed" exec "$dir" 1 test ! -e "$dir/node-local/probe.txt"
check "the root namespace does not see host 0's node-local file" test ! -e "$dir/node-local/probe.txt"
check "host 0's node-local file is in hosts/h0-local" grep -qx from-mh0 "$dir/hosts/h0-local/probe.txt"
echo from-mh1 | "$bed" exec "$dir" 1 tee "$dir/shared/probe.txt" >/dev/null
check "host 0 sees host 1's shared file" "$bed" exec "$dir" 0 grep -qx from-mh1 "$dir/shared/probe.txt"
check "the root namespace sees host 1's shared file" grep -qx from-mh1 "$dir/shared/probe.txt"

# --- 3. A job of 4 ranks, 2 per host.
if ! "${MPICC:-mpicc}" -O1 -o "$dir/shared/probe" "$here/probe.c"; then
  fail "${MPICC:-mpicc} $here/probe.c"
  exit 1
fi
token=token-$$-$RANDOM
start=$EPOCHREALTIME
MH_SMOKE_TOKEN=$token MH_SMOKE_UNPASSED=leaked timeout -k 10 120 \
  "$bed" mpirun "$dir" -np 4 --map-by ppr:2:node -x MH_SMOKE_TOKEN \
  "$dir/shared/probe" check "$dir/node-local" >job.out 2>job.err
rc=$?
job_s=$(since "$start")
check "the 4-rank job exits 0, not $rc: $(head -c 600 job.err)" test "$rc" -eq 0
for i in 0 1; do
  n=$(grep -c "^rank [0-3] of 4 on mh$i " job.out)
  check "2 ranks on mh$i, not $n: $(tr '\n' '|' <job.out)" test "$n" -eq 2
done
check "rank 1 runs on mh0" grep -q "^rank 1 of 4 on mh0 " job.out
check "rank 2 runs on mh1" grep -q "^rank 2 of 4 on mh1 " job.out
check "the allreduce sums to 6" grep -qx "allreduce: sum 6, expected 6: ok" job.out
check "rank 2 on mh1 got rank 1's 1 MiB intact" grep -qx "p2p: rank 2 on mh1 got 1 MiB from rank 1: intact" job.out
check "rank 1 on mh0 got rank 2's reply" grep -qx "p2p: rank 1 on mh0 got the reply 'rank 2 on mh1'" job.out
n=$(grep -c "token=$token " job.out)
check "-x MH_SMOKE_TOKEN reaches all 4 ranks, not $n" test "$n" -eq 4
# As through ssh, what mpirun is not told to pass does not reach the other hosts.
n=$(grep -c "on mh1 .*unpassed=(unset)$" job.out)
check "MH_SMOKE_UNPASSED (no -x) does not reach the 2 ranks on mh1 ($n do not have it)" test "$n" -eq 2
for r in 0 1 2 3; do
  h=$((r / 2))
  check "rank $r wrote its node-local file on mh$h" grep -qx "mh$h" "$dir/hosts/h$h-local/rank.$r"
done

# --- 4. bed.sh pids of a running job; kill -9 of all of host 1 ends the job.
ready=$dir/shared/ready
mkdir -p -- "$ready"
timeout -k 10 150 "$bed" mpirun "$dir" -np 4 --map-by ppr:2:node \
  "$dir/shared/probe" hang "$ready" >hang.out 2>hang.err &
job=$!
all_ready() { [[ -e $ready/rank.3 && -e $ready/rank.2 && -e $ready/rank.1 && -e $ready/rank.0 ]]; }
ready_or_ended() { all_ready || ! running "$job"; }
wait_for 60 ready_or_ended
if ! all_ready; then
  fail "the hanging job did not start 4 ranks within 60 s: $(head -c 600 hang.err)"
else
  mapfile -t pids0 < <("$bed" pids "$dir" 0)
  mapfile -t pids1 < <("$bed" pids "$dir" 1)
  comms1=$(for p in "${pids1[@]}"; do cat "/proc/$p/comm" 2>/dev/null; done | sort | tr '\n' ' ')
  comms0=$(for p in "${pids0[@]}"; do cat "/proc/$p/comm" 2>/dev/null; done | sort | tr '\n' ' ')
  check "host 1 runs orted and 2 ranks, not: $comms1" grep -Eq '^orted probe probe $' <<<"$comms1"
  check "host 0 runs mpirun and 2 ranks, not: $comms0" grep -Eq '^mpirun probe probe $' <<<"$comms0"
  for r in 0 1 2 3; do
    read -r pid host <"$ready/rank.$r"
    if ((r < 2)); then listed=" ${pids0[*]} " h=0; else listed=" ${pids1[*]} " h=1; fi
    check "bed.sh pids $dir $h lists rank $r (pid $pid on $host)" test "${listed/ $pid /}" != "$listed"
  done
  check "bed.sh pids lists something for host 1" test "${#pids1[@]}" -gt 0
  kill -KILL "${pids1[@]}"
  start=$EPOCHREALTIME
  ended() { ! running "$job"; }
  wait_for 60 ended
  kill_s=$(since "$start")
  if running "$job"; then
    fail "mpirun still runs 60 s after kill -9 of all of host 1"
    kill -KILL "$job"
  fi
  wait "$job"
  rc=$?
  job=
  check "mpirun ends non-zero after kill -9 of host 1, not by timeout (status $rc)" \
    test "$rc" -ne 0 -a "$rc" -ne 124 -a "$rc" -ne 137
  no_process_on() { [[ -z $("$bed" pids "$dir" "$1") ]]; }
  check "no process is left on host 1: $("$bed" pids "$dir" 1 | tr '\n' ' ')" no_process_on 1
  check "no process is left on host 0: $("$bed" pids "$dir" 0 | tr '\n' ' ')" wait_for 10 no_process_on 0
fi

# --- 5. down leaves nothing.
start=$EPOCHREALTIME
"$bed" down "$dir"
rc=$?
down_s=$(since "$start")
check "bed.sh down exits 0, not $rc" test "$rc" -eq 0
left=$(ip netns list | awk '{ print $1 }' | grep -Fx -f <(printf '%s\n' "${bed_netns[@]}"))
check "down leaves no network namespace: $left" test -z "$left"
left=$(findmnt -rn -o TARGET | grep -F "$dir")
check "down leaves no mount: $left" test -z "$left"
left=$(readlink /proc/[0-9]*/exe 2>/dev/null | grep -F "$dir/")
check "down leaves no process of the bed: $left" test -z "$left"
check "down leaves no $dir" test ! -e "$dir"
"$bed" down "$dir"
rc=$?
check "a second bed.sh down exits 0, not $rc" test "$rc" -eq 0

echo "smoke: up ${up_s} s, 4-rank job ${job_s} s, kill -9 of host 1 to the end of mpirun" \
  "${kill_s:-?} s, down ${down_s} s"
if ((failed)); then
  echo "smoke: $failed checks failed"
  exit 1
fi
echo "smoke: all checks passed"
