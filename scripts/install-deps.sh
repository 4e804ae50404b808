#!/usr/bin/env bash
# Installs the Debian 12 packages shardinit needs to build and test, if any are missing.
# Idempotent and quiet when everything is present. Usage: scripts/install-deps.sh
# SHARDINIT_EXTRA_PACKAGES adds packages for the optional tools (scripts/fuzz.sh: clang and its
# libFuzzer runtime).
set -euo pipefail

packages=(
  g++ make cmake
  libopenmpi-dev openmpi-bin                    # MPI: collective checkpoints, mpirun
  nlohmann-json3-dev libcli11-dev              # manifest parsing, command line
  libgtest-dev libgmock-dev                     # tests
  libhwy-dev                                    # Highway: vectorized kernels, run-time dispatch
  libboost-random-dev libboost-dev              # Boost.Random (custom initializers) and Boost.Math (test reference)
  librandom123-dev                              # independent Philox reference for the tests
  python3 python3-numpy                         # independent NumPy reimplementation of the stream format
  pybind11-dev python3-dev                      # the Python module
  python3-torch python3-mpi4py                  # its tests: torch tensors in place, shards under mpiexec
  iproute2 util-linux procps                    # the multi-host test bed: ip netns, unshare/nsenter, pgrep
)
read -r -a extra <<<"${SHARDINIT_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "scripts/install-deps.sh: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
