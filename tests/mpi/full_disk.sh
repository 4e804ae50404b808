#!/usr/bin/env bash
# A full disk under MPI: init of a 4 MiB file into a 1 MiB tmpfs, with NP ranks and as one process.
# Expects exit 3, one error line that says what happened, within seconds, and no file left: neither
# the target nor a temporary. Mounting needs root (CAP_SYS_ADMIN); where that is refused the test
# reports itself skipped (exit 77), and the file-size-limit case of cli_mpi.sh covers the same path.
#
#   full_disk.sh SHARDINIT MPIEXEC NP SCRATCH_DIR
set -u

shardinit=$(realpath "$1")
mpiexec=$(command -v "$2")
np=$3
scratch=$(realpath -m "$4")

rm -rf "$scratch"
mkdir -p "$scratch/disk"
cd "$scratch" || exit 2
if ! mount -t tmpfs -o size=1m shardinit-full-disk "$scratch/disk" 2>mount.err; then
  echo "SKIP: cannot mount a small tmpfs here ($(cat mount.err))"
  exit 77
fi
trap 'umount "$scratch/disk"' EXIT

cat >m.json <<'JSON'
{"seed": 1, "tensors": [{"name": "big", "shape": [1024, 1024], "init": {"fn": "normal", "std": 0.02}}]}
JSON

passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; fi
}

for launcher in mpirun plain; do
  start=$SECONDS
  if [ "$launcher" = mpirun ]; then
    timeout 60 "$mpiexec" -n "$np" --oversubscribe "$shardinit" init m.json -o disk/out.safetensors -q 2>"$launcher.err"
  else
    timeout 60 env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK -u PMI_RANK -u PMI_SIZE "$shardinit" init m.json -o disk/out.safetensors -q 2>"$launcher.err"
  fi
  rc=$?
  seconds=$((SECONDS - start))
  errors=$(grep -c "shardinit: error" "$launcher.err")
  check "$launcher: exits 3, not by timeout (rc $rc): $(head -c 300 "$launcher.err")" test "$rc" -eq 3
  check "$launcher: within 30 s (took $seconds s)" test "$seconds" -le 30
  check "$launcher: one error line (got $errors)" test "$errors" -eq 1
  check "$launcher: the error says the disk is full: $(head -c 300 "$launcher.err")" grep -Eqi "no space|disk full" "$launcher.err"
  check "$launcher: nothing left on the full disk ($(ls -A disk | tr '\n' ' '))" test -z "$(ls -A disk)"
done
echo "full_disk: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
