#!/usr/bin/env bash
# agent.sh: the "ssh" of a bed.sh test bed, for Open MPI's rsh launcher (plm_rsh_agent).
#
#   agent.sh HOST WORD...
#
# Open MPI runs its agent the way it runs ssh: HOST as the hostfile names it (here, an address of
# the bed), then the command that starts the remote daemon (orted) as words for the remote login
# shell: they hold quotes, ';' and $VARIABLES, so they must be joined with blanks and given to
# "SHELL -c", which is what ssh does. This agent does the same inside HOST's namespaces (through
# "bed.sh exec"), in the bed whose directory is MH_BED_DIR: "bed.sh mpirun" sets it, and it is
# needed because several beds may exist at once, all with the same addresses.
#
# Like ssh, it gives the remote command a fresh login environment, not mpirun's: PATH and
# LD_LIBRARY_PATH (every host has the same software, as on a cluster), HOME, USER, LOGNAME, SHELL,
# LANG and LC_* (which Debian's ssh forwards), MH_BED_DIR and Open MPI's permission to run as
# root. So a variable of the caller reaches the ranks on the other hosts only if mpirun is told to
# pass it (-x NAME), as on a real cluster. MH_AGENT_KEEP_ENV=1 passes the whole environment.
#
# Exit status: the remote command's; 255 if the agent is misused, 125 if the bed or HOST is not up.
set -u

if (($# < 2)) || [[ $1 == -* ]]; then
  echo "agent.sh: usage: agent.sh HOST WORD... (Open MPI's plm_rsh_agent; got: $*)" >&2
  exit 255
fi
host=$1
shift
if [[ -z ${MH_BED_DIR-} ]]; then
  echo "agent.sh: MH_BED_DIR is not set: run mpirun through 'bed.sh mpirun DIR ...'" >&2
  exit 255
fi
bed_sh=$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")/bed.sh

# The login shell, which Open MPI assumed when it wrote the command (it writes it for the local
# user's shell: sh syntax for bash, csh syntax for tcsh).
shell=$(getent passwd "$(id -u)" | cut -d: -f7)
case $shell in
  */nologin | */false | '') shell=/bin/sh ;;
esac

environment=(env)
if [[ ${MH_AGENT_KEEP_ENV-} != 1 ]]; then
  environment=(env -i "SHELL=$shell")
  for name in PATH LD_LIBRARY_PATH HOME USER LOGNAME LANG MH_BED_DIR OMPI_ALLOW_RUN_AS_ROOT \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM $(compgen -v LC_); do
    if [[ -n ${!name+set} ]]; then environment+=("$name=${!name}"); fi
  done
fi

# ssh starts the remote command in the home directory; bed.sh exec keeps the working directory.
cd -- "${HOME:-/}" 2>/dev/null || cd /
exec "${environment[@]}" "$bed_sh" exec "$MH_BED_DIR" "$host" "$shell" -c "$*"
