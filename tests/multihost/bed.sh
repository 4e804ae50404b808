#!/usr/bin/env bash
# bed.sh: a test bed of 2 or 3 "hosts" on this one machine, for real multi-node Open MPI jobs.
#
# A host is three Linux namespaces: a network namespace (its own eth0 and address, cabled by a
# veth pair to a bridge in a "switch" network namespace), a UTS namespace (its own hostname,
# mh<i>) and a mount namespace (its own DIR/node-local, and an /etc/hosts naming the hosts). All
# the rest of the file system is shared, as on a cluster with a shared file system: the build
# tree, /usr, /tmp and DIR/shared are the same on every host. The PID namespace is shared too, so
# the processes of every host can be seen, stopped and killed from here.
#
#   bed.sh up DIR NHOSTS           create a bed of NHOSTS (2 or 3) hosts, its state in DIR
#   bed.sh exec DIR HOST CMD...    run CMD on HOST (cwd, environment, stdio and status pass)
#   bed.sh mpirun DIR [--slots N] [--] MPIRUN-ARGS...
#                                  run mpirun on host 0, across all the hosts of the bed
#   bed.sh pids DIR HOST           the PIDs of every process in HOST's network namespace
#   bed.sh info DIR                key=value lines: namespace names, hostnames, addresses
#   bed.sh down DIR                kill, unmount and delete everything of the bed (idempotent)
#
# DIR must be absolute. HOST is an index (0, 1, 2), a hostname (mh0) or an address (10.77.0.11).
# Host i is mh<i> at 10.77.0.(11+i)/24. Several beds may be up at once: their namespaces are
# named after a hash of DIR, and their networks are isolated from each other.
#
# exec, mpirun, pids and info work outside the bed and inside its hosts too (agent.sh runs on
# host 0), as long as a process is left in the mount namespace where "up" ran (see outside_root).
#
# Layout of DIR:
#   shared/            an ordinary directory: the same on every host and here
#   node-local/        on host i, a bind mount of hosts/h<i>-local; here, an empty directory
#   hosts/h<i>-local/  the node-local storage of host i, as seen from here
#   ns/                the UTS and mount namespaces of the hosts, bound to files h<i>.uts, h<i>.mnt
#   hostfile.<slots>   the hostfiles that "bed.sh mpirun" gives mpirun
#   bed.conf           written last by up, removed first by down; etc-hosts; .bed (up's marker)
#
# Environment:
#   MH_SLOTS=N           slots per host in the hostfile of "bed.sh mpirun" (default 2; --slots wins)
#   MH_MPIRUN=PATH       the mpirun to run (default: mpirun from PATH)
#   MH_AGENT_KEEP_ENV=1  the remote daemons inherit the caller's whole environment (see agent.sh)
#   MH_BED_DIR           set by "bed.sh mpirun" for agent.sh: which bed the hostfile's addresses are in
#
# Exit status:
#   up: 0; 77 with one "SKIP: ..." line on stdout if this machine refuses (not root, a missing
#       tool, ip netns, unshare, a mount, a veth pair or a bridge refused), leaving nothing behind;
#       1 on any other failure (a message on stderr, nothing left behind); 2 on a usage error.
#   exec, mpirun: the status of CMD, of mpirun; 125 if the bed or the host does not exist.
#   pids, info: 0; 125 if the bed or the host does not exist. down: 0, 1 if something is left.
#
# Sourcing this file (". bed.sh") only defines a function bed() that runs it as a command ("bed up
# DIR 2", "bed exec DIR 1 hostname") and sets MH_BED_SH to its path; no shell option changes.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  MH_BED_SH=$(realpath -- "${BASH_SOURCE[0]}")
  bed() { "$MH_BED_SH" "$@"; }
  # shellcheck disable=SC2317  # reached when executed rather than sourced
  return 0 2>/dev/null || exit 0
fi

set -u -o pipefail

HERE=$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")
readonly HERE
readonly NET_PREFIX=10.77.0 # host i is $NET_PREFIX.$((ADDR_BASE + i))
readonly ADDR_BASE=11
readonly SUBNET=$NET_PREFIX.0/24
readonly MAX_HOSTS=3
readonly DEADLINE_S=30 # for the links to come up in up, and for the processes to die in down

die() { # die STATUS MESSAGE
  echo "bed.sh: $2" >&2
  exit "$1"
}

usage() {
  sed -n '/^#   bed.sh up/,/^#   bed.sh down/s/^#   //p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# bed_names DIR: sets BED_DIR (DIR made canonical), BED_ID (a short hash of it) and the names of
# the bed's network namespaces, SW_NS (the switch) and HOST_NS[i]. They depend on DIR only, so
# that "down" finds them after a failed "up" too, or when DIR is gone.
bed_names() {
  [[ $1 == /* ]] || die 2 "DIR must be an absolute path, not '$1'"
  BED_DIR=$(realpath -m -- "$1")
  BED_ID=$(printf '%s' "$BED_DIR" | sha1sum | cut -c1-8)
  SW_NS=mh$BED_ID-sw
  HOST_NS=()
  local i
  for ((i = 0; i < MAX_HOSTS; i++)); do HOST_NS[i]=mh$BED_ID-h$i; done
}

# read_conf: reads BED_DIR/bed.conf into CONF (key=value) and NHOSTS; fails if there is none, that
# is if no bed is up in BED_DIR.
declare -A CONF
read_conf() {
  CONF=()
  NHOSTS=
  local key value
  [[ -r $BED_DIR/bed.conf ]] || return 1
  while IFS='=' read -r key value; do CONF[$key]=$value; done <"$BED_DIR/bed.conf"
  NHOSTS=${CONF[nhosts]-}
  [[ $NHOSTS == [23] ]]
}

# load_bed DIR: bed_names and read_conf, or exit 125.
load_bed() {
  bed_names "$1"
  read_conf || die 125 "no bed is up in $BED_DIR (bed.sh up $BED_DIR NHOSTS)"
}

host_addr() { echo "$NET_PREFIX.$((ADDR_BASE + $1))"; }

# host_index HOST: prints the index of HOST (0.., mh<i> or an address) in the loaded bed.
host_index() {
  local host=$1 i
  for ((i = 0; i < NHOSTS; i++)); do
    if [[ $host == "$i" || $host == "mh$i" || $host == "$(host_addr "$i")" ]]; then
      echo "$i"
      return 0
    fi
  done
  die 125 "no host '$host' in the bed in $BED_DIR (0..$((NHOSTS - 1)), mh<i> or $NET_PREFIX.<$ADDR_BASE+i>)"
}

# outside_root I: prints the prefix under which host I's namespace files are found from here.
# Outside the bed: nothing. Inside a host: they are not there (they were bound after its mount
# namespace was made, in a mount that does not propagate), so the prefix is /proc/PID/root of a
# process in the mount namespace where "up" ran (the one that ran the test, typically): a path
# walked from there is walked in that namespace. The lowest PID is the likeliest to stay.
outside_root() {
  local want=${CONF[h${1}_mnt]} rel=$BED_DIR/ns/h$1.mnt pid
  if [[ $(stat -L -c %i -- "$rel" 2>/dev/null) == "$want" ]]; then return 0; fi
  for pid in $(ns_pids "${CONF[outside_mnt]}" | head -n 20); do
    if [[ $(stat -L -c %i -- "/proc/$pid/root$rel" 2>/dev/null) == "$want" ]]; then
      echo "/proc/$pid/root"
      return 0
    fi
  done
  return 1
}

# on_host I CMD...: replaces this process by CMD inside host I's namespaces, in the same working
# directory if it exists there. Entering a mount namespace moves the working directory to its
# root: the small sh goes back. nsenter opens the three files before it enters any namespace.
on_host() {
  local i=$1 root
  shift
  if [[ $(stat -L -c %i /proc/$$/ns/mnt) == "${CONF[h${i}_mnt]}" ]]; then
    exec "$@" # already on host i (say, a rank on host 0 runs "bed.sh exec DIR 0 ...")
  fi
  root=$(outside_root "$i") ||
    die 125 "host $i cannot be entered from here: no process is left in the mount namespace of 'bed.sh up'"
  # shellcheck disable=SC2016  # $1 and $@ are expanded by that sh
  exec nsenter --net="$root/run/netns/${HOST_NS[i]}" --uts="$root$BED_DIR/ns/h$i.uts" \
    --mount="$root$BED_DIR/ns/h$i.mnt" -- \
    /bin/sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' sh "$PWD" "$@"
}

# ns_pids INODE...: the PIDs of the processes in any of the namespaces with these nsfs inode
# numbers (all namespace types share one inode space), this process excepted. A zombie has left
# its namespaces: it is not listed.
ns_pids() {
  (($#)) || return 0
  # stat fails for the processes that exit meanwhile: not an error.
  { stat -L -c '%i %n' -- /proc/[0-9]*/ns/net /proc/[0-9]*/ns/mnt /proc/[0-9]*/ns/uts 2>/dev/null || :; } |
    awk -v set=" $* " -v self="$$" '
      index(set, " " $1 " ") { split($2, p, "/"); if (p[3] != self) print p[3] }' |
    sort -nu
}

# ns_inodes FILE...: the namespace inode numbers of those FILEs that are bound namespaces (a
# leftover plain file is skipped: its inode number would mean nothing).
ns_inodes() {
  local f
  for f in "$@"; do
    if mountpoint -q -- "$f"; then stat -L -c %i -- "$f"; fi
  done
}

# ---------------------------------------------------------------------------------------- down

# kill_bed: SIGKILLs every process in a namespace of the bed until none is left (a process may
# fork while we look), or the deadline passes.
kill_bed() {
  local files=("/run/netns/$SW_NS") inodes=() i t pids deadline=$((SECONDS + DEADLINE_S))
  for ((i = 0; i < MAX_HOSTS; i++)); do
    files+=("/run/netns/${HOST_NS[i]}" "$BED_DIR/ns/h$i.mnt" "$BED_DIR/ns/h$i.uts")
    for t in net mnt uts; do
      if [[ -n ${CONF[h${i}_$t]-} ]]; then inodes+=("${CONF[h${i}_$t]}"); fi
    done
  done
  mapfile -t -O "${#inodes[@]}" inodes < <(ns_inodes "${files[@]}")
  while :; do
    mapfile -t pids < <(ns_pids "${inodes[@]}")
    ((${#pids[@]})) || return 0
    if ((SECONDS >= deadline)); then
      echo "bed.sh: down: processes still alive after SIGKILL: ${pids[*]}" >&2
      return 1
    fi
    kill -KILL "${pids[@]}" 2>/dev/null
    sleep 0.05 # a poll interval: dying takes a moment
  done
}

# mounts_under DIR: the mount points strictly below DIR in this mount namespace, deepest first.
mounts_under() {
  local target
  findmnt -rn -o TARGET | while IFS= read -r target; do
    # findmnt -r writes a blank as \x20 (decoded only where needed: a subshell costs time)
    if [[ $target == *\\* ]]; then target=$(printf '%b' "$target"); fi
    if [[ $target == "$1"/* ]]; then printf '%s\n' "$target"; fi
  done | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# teardown: all of "down"; also what undoes a partial "up". Status 1 if something is left.
teardown() {
  local rc=0 f ns
  read_conf # for the namespace inodes it has, if up got that far
  rm -f -- "$BED_DIR/bed.conf" # first: no exec or mpirun can start any more
  kill_bed || rc=1
  # With no process left in them, unbinding the files frees the UTS and mount namespaces, and
  # with a mount namespace its node-local and /etc/hosts mounts.
  for f in "$BED_DIR"/ns/h[0-9].mnt "$BED_DIR"/ns/h[0-9].uts "$BED_DIR/ns"; do
    while mountpoint -q -- "$f"; do umount -- "$f" || { rc=1 && break; }; done
  done
  for ns in "$SW_NS" "${HOST_NS[@]}"; do
    if [[ -e /run/netns/$ns ]]; then ip netns delete "$ns" || rc=1; fi
  done
  # Anything else mounted below DIR here (only if a test mounted something there itself).
  while IFS= read -r f; do umount -- "$f" || rc=1; done < <(mounts_under "$BED_DIR")
  if [[ -n $(mounts_under "$BED_DIR") ]]; then
    echo "bed.sh: down: still mounted below $BED_DIR: not deleting it" >&2
    return 1
  fi
  # Only what "up" made, and only if "up" made it (the .bed marker): never a stranger's files.
  if [[ -e $BED_DIR/.bed ]]; then
    rm -rf --one-file-system -- "$BED_DIR"/{ns,hosts,node-local,shared,etc-hosts,.bed.conf.tmp} \
      "$BED_DIR"/hostfile.* "$BED_DIR"/.hostfile.* || rc=1
    rm -f -- "$BED_DIR/.bed"
    rmdir -- "$BED_DIR" 2>/dev/null # unless the caller keeps something else there
  fi
  return "$rc"
}

cmd_down() {
  (($# == 1)) || usage
  bed_names "$1"
  teardown
}

# ------------------------------------------------------------------------------------------ up

# step KIND WHAT CMD...: runs CMD; if it fails, undoes the partial bed and exits. KIND "skip": the
# machine refuses (status 77, "SKIP: ..." on stdout); "fail": a real failure (status 1).
step() {
  local kind=$1 what=$2 err
  shift 2
  err=$("$@" 2>&1 >/dev/null) && return 0
  err=$(printf '%s' "$err" | tr '\n' ' ')
  teardown >/dev/null 2>&1
  if [[ $kind == skip ]]; then
    echo "SKIP: bed.sh up: $what: ${err:-failed}"
    exit 77
  fi
  die 1 "up: $what: ${err:-failed}"
}

# make_link I: host I's eth0, cabled to port p<I> of the bridge. The veth pair is made inside the
# switch's namespace, its peer directly in the host's: nothing touches this machine's network.
make_link() {
  local i=$1 h=${HOST_NS[$1]}
  ip -n "$SW_NS" link add "p$i" type veth peer name eth0 netns "$h" &&
    ip -n "$SW_NS" link set "p$i" master br0 up &&
    ip -n "$h" addr add "$(host_addr "$i")/24" dev eth0 &&
    ip -n "$h" link set eth0 up
}

# make_host I: the persistent UTS and mount namespaces of host I, made from inside its network
# namespace and bound to the files DIR/ns/h<I>.uts and .mnt.
make_host() {
  local i=$1
  touch -- "$BED_DIR/ns/h$i.uts" "$BED_DIR/ns/h$i.mnt" || return 1
  # nsenter --net, not "ip netns exec": unshare binds the namespaces to the files from the mount
  # namespace it starts in, which must be this one (ip netns exec would run it in a private mount
  # namespace of its own, gone when it exits). Propagation "slave", as "ip netns exec" does: the
  # host sees what is unmounted here, so that a network namespace deleted by another bed's "down"
  # is not kept alive by a copy of its /run/netns file in this host; and nothing the host mounts
  # appears here.
  # shellcheck disable=SC2016  # $1.. are expanded by that sh
  nsenter --net="/run/netns/${HOST_NS[i]}" -- \
    unshare --uts="$BED_DIR/ns/h$i.uts" --mount="$BED_DIR/ns/h$i.mnt" --propagation slave -- \
    /bin/sh -c 'set -e
      echo "$1" >/proc/sys/kernel/hostname
      mount --bind "$2" "$3"
      if [ -f /etc/hosts ]; then mount --bind "$4" /etc/hosts; fi' \
    sh "mh$i" "$BED_DIR/hosts/h$i-local" "$BED_DIR/node-local" "$BED_DIR/etc-hosts"
}

# links_up: every host's eth0 has carrier and every switch port forwards. Without STP (the
# default) a bridge port forwards as soon as its link is up; this polls rather than assumes.
links_up() {
  local i
  for ((i = 0; i < NHOSTS; i++)); do
    ip -n "${HOST_NS[i]}" -o link show eth0 | grep -q 'state UP' || return 1
    ip -n "$SW_NS" -o -d link show "p$i" | grep -q 'bridge_slave state forwarding' || return 1
  done
}

wait_links() {
  local deadline=$((SECONDS + DEADLINE_S))
  until links_up; do
    ((SECONDS < deadline)) || { echo "links not up within $DEADLINE_S s" >&2 && return 1; }
    sleep 0.05
  done
}

write_etc_hosts() {
  local i
  {
    if [[ -f /etc/hosts ]]; then cat /etc/hosts; fi
    echo "# bed.sh: the hosts of the bed in $BED_DIR"
    for ((i = 0; i < NHOSTS; i++)); do echo "$(host_addr "$i") mh$i"; done
  } >"$BED_DIR/etc-hosts"
}

# write_conf: bed.conf, atomically: the bed's size, and its namespaces' inode numbers (which
# identify the processes of a host from any mount namespace, and a host from inside it).
write_conf() {
  local i t
  {
    printf 'id=%s\nnhosts=%s\noutside_mnt=%s\n' "$BED_ID" "$NHOSTS" "$(stat -L -c %i /proc/$$/ns/mnt)"
    for ((i = 0; i < NHOSTS; i++)); do
      printf 'h%d_net=%s\n' "$i" "$(stat -L -c %i -- "/run/netns/${HOST_NS[i]}")"
      for t in uts mnt; do printf 'h%d_%s=%s\n' "$i" "$t" "$(stat -L -c %i -- "$BED_DIR/ns/h$i.$t")"; done
    done
  } >"$BED_DIR/.bed.conf.tmp" && mv -f -- "$BED_DIR/.bed.conf.tmp" "$BED_DIR/bed.conf"
}

cmd_up() {
  (($# == 2)) || usage
  bed_names "$1"
  NHOSTS=$2
  [[ $NHOSTS == [23] ]] || die 2 "up: NHOSTS must be 2 or 3, not '$NHOSTS'"
  if ((EUID != 0)); then
    echo "SKIP: bed.sh up: not root (network and mount namespaces need CAP_SYS_ADMIN)"
    exit 77
  fi
  local tool pkg
  for tool in ip:iproute2 unshare:util-linux nsenter:util-linux mountpoint:util-linux \
    findmnt:util-linux; do
    pkg=${tool#*:} tool=${tool%%:*}
    if ! command -v "$tool" >/dev/null; then
      echo "SKIP: bed.sh up: $tool not found (Debian package $pkg)"
      exit 77
    fi
  done
  # A bed that is already there is someone's: refuse, and do not tear it down.
  local ns
  [[ ! -e $BED_DIR/bed.conf ]] || die 1 "up: a bed is up in $BED_DIR already (bed.sh down it first)"
  for ns in "$SW_NS" "${HOST_NS[@]}"; do
    [[ ! -e /run/netns/$ns ]] ||
      die 1 "up: network namespace $ns exists: a bed in $BED_DIR is up or left over (bed.sh down)"
  done

  trap 'teardown >/dev/null 2>&1; exit 1' INT TERM HUP
  local i
  step fail "create $BED_DIR" mkdir -p -- "$BED_DIR/ns" "$BED_DIR/shared" "$BED_DIR/node-local"
  step fail "create $BED_DIR/.bed" touch -- "$BED_DIR/.bed"
  for ((i = 0; i < NHOSTS; i++)); do
    step fail "create $BED_DIR/hosts/h$i-local" mkdir -p -- "$BED_DIR/hosts/h$i-local"
  done
  step fail "write $BED_DIR/etc-hosts" write_etc_hosts
  # A mount namespace can be bound only to a file in a mount that does not propagate (else the
  # kernel could be made to loop): DIR/ns becomes a private mount of its own.
  step skip "mount --bind $BED_DIR/ns" mount --bind -- "$BED_DIR/ns" "$BED_DIR/ns"
  step skip "mount --make-private $BED_DIR/ns" mount --make-private -- "$BED_DIR/ns"

  # The network first: then every host's mount namespace starts with all of /run/netns.
  step skip "ip netns add $SW_NS" ip netns add "$SW_NS"
  step fail "lo up in $SW_NS" ip -n "$SW_NS" link set lo up
  step skip "a bridge in $SW_NS" ip -n "$SW_NS" link add br0 type bridge
  step fail "br0 up in $SW_NS" ip -n "$SW_NS" link set br0 up
  for ((i = 0; i < NHOSTS; i++)); do
    step skip "ip netns add ${HOST_NS[i]}" ip netns add "${HOST_NS[i]}"
    step fail "lo up in ${HOST_NS[i]}" ip -n "${HOST_NS[i]}" link set lo up
    step skip "a veth pair from $SW_NS to ${HOST_NS[i]}" make_link "$i"
  done
  for ((i = 0; i < NHOSTS; i++)); do
    step skip "UTS and mount namespaces of host $i (unshare)" make_host "$i"
  done
  step fail "the links of the bed" wait_links
  step fail "write $BED_DIR/bed.conf" write_conf
  trap - INT TERM HUP

  local summary=
  for ((i = 0; i < NHOSTS; i++)); do summary+=" mh$i=$(host_addr "$i")"; done
  echo "bed up in $BED_DIR:$summary (netns mh$BED_ID-*)"
}

# ------------------------------------------------------------------------ exec, pids, info

cmd_exec() {
  (($# >= 3)) || usage
  load_bed "$1"
  local i
  i=$(host_index "$2") || exit 125
  shift 2
  on_host "$i" "$@"
}

cmd_pids() {
  (($# == 2)) || usage
  load_bed "$1"
  local i
  i=$(host_index "$2") || exit 125
  ns_pids "${CONF[h${i}_net]}"
}

cmd_info() {
  (($# == 1)) || usage
  bed_names "$1"
  local i n=$MAX_HOSTS up=no
  if read_conf; then n=$NHOSTS up=yes; fi
  printf '%s=%s\n' dir "$BED_DIR" id "$BED_ID" up "$up" nhosts "$n" subnet "$SUBNET" \
    switch_netns "$SW_NS"
  for ((i = 0; i < n; i++)); do
    printf 'host%d_%s=%s\n' "$i" netns "${HOST_NS[i]}" "$i" name "mh$i" "$i" addr "$(host_addr "$i")"
  done
}

# ---------------------------------------------------------------------------------- mpirun

cmd_mpirun() {
  (($# >= 1)) || usage
  load_bed "$1"
  shift
  local slots=${MH_SLOTS:-2}
  if [[ ${1-} == --slots && $# -ge 2 ]]; then
    slots=$2
    shift 2
  elif [[ ${1-} == --slots=* ]]; then
    slots=${1#--slots=}
    shift
  fi
  if [[ ${1-} == -- ]]; then shift; fi
  [[ $slots =~ ^[1-9][0-9]*$ ]] || die 2 "mpirun: slots must be a positive number, not '$slots'"

  # One hostfile per slot count, replaced atomically: jobs may start at the same time in one bed.
  # Addresses, not names: mpirun on host 0 recognises its own address as "this node".
  local hostfile=$BED_DIR/hostfile.$slots tmp i
  tmp=$(mktemp "$BED_DIR/.hostfile.XXXXXX") || exit 125
  for ((i = 0; i < NHOSTS; i++)); do echo "$(host_addr "$i") slots=$slots"; done >"$tmp"
  mv -f -- "$tmp" "$hostfile" || exit 125

  # Open MPI splits plm_rsh_agent at blanks (for "ssh -x" and the like).
  local agent=$HERE/agent.sh
  [[ $agent != *[[:space:]]* ]] || die 125 "mpirun: the path of agent.sh has a blank: $agent"

  export MH_BED_DIR=$BED_DIR # tells agent.sh which bed the hostfile's addresses are in
  # mpirun refuses to run as root without these (or --allow-run-as-root, also given below).
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  # All hosts share this machine's cores: binding each host's ranks to "its" first cores would
  # stack the ranks of every host on the same cores. Not binding is the default here; as an
  # environment variable, so that the caller's --bind-to still wins.
  export OMPI_MCA_hwloc_base_binding_policy=${OMPI_MCA_hwloc_base_binding_policy:-none}

  # shellcheck disable=SC2054  # "tcp,vader,self" is one argument
  local mca=(
    # Launch the daemons with the rsh launcher (not slurm, should this machine's environment
    # suggest it), through agent.sh instead of ssh.
    --mca plm rsh
    --mca plm_rsh_agent "$agent"
    # mpirun starts every daemon itself, with the environment of its caller. (With a tree spawn,
    # daemons would start daemons, with the agent's reduced environment. Open MPI 4.1 does not do
    # it for so few hosts anyway, but this keeps one launch path whatever the bed's size.)
    --mca plm_rsh_no_tree_spawn 1
    # Out-of-band (daemon <-> mpirun) and MPI traffic over the bed's network only. A host has
    # only lo and eth0, and Open MPI skips lo by default, so this is a safeguard: lo has the same
    # address on every host, and an address there would reach the host itself, not the peer.
    --mca oob_tcp_if_include "$SUBNET"
    --mca btl_tcp_if_include "$SUBNET"
    # TCP between hosts, shared memory (vader) and self within a host; ob1 is the PML that uses
    # BTLs (the point is to exercise the TCP BTL, not a fabric library that may be installed).
    --mca pml ob1
    --mca btl tcp,vader,self
  )
  on_host 0 "${MH_MPIRUN:-mpirun}" --allow-run-as-root --oversubscribe --hostfile "$hostfile" \
    "${mca[@]}" "$@"
}

# -------------------------------------------------------------------------------------- main

(($# >= 1)) || usage
command=$1
shift
case $command in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  exec) cmd_exec "$@" ;;
  mpirun) cmd_mpirun "$@" ;;
  pids) cmd_pids "$@" ;;
  info) cmd_info "$@" ;;
  -h | --help | help) usage ;;
  *) echo "bed.sh: unknown command '$command'" >&2 && usage ;;
esac
