#!/usr/bin/env python3
"""I/O benchmark: `shardinit init` (default threads, --threads 1, mpirun -np 2 and -np 4) and `verify`
against a plain large-block write() of the same bytes to the same filesystem, alternating, medians
and minimums of REPEAT rounds, each in a shuffled order, reported as ratios (docs/architecture.md,
"Speed").

    scripts/bench-io.py [--dir /dev/shm] [--repeat 7] [--manifest M.json] [--load K] [--hf] [--mpirun-arg ARG]

The manifest defaults to a Llama-shaped 1.1B model (examples/make-llama-manifest.py: 201 tensors,
bf16, 2.2 GB, 1D tensor parallel over 2 with row- and column-split tensors). A rate is bytes of the
output per second of wall time, fsync included; the plain write is one 16 MiB buffer written
repeatedly with write(2), then fsync. Every output is removed before each run, so every run
allocates its file afresh. On a virtual machine that hands freed memory back to its host (virtio
free page reporting), that allocation costs 1-4x more in some runs than in others, for shardinit and
the plain write alike: hence an untimed warm-up before every run (the same bytes written to DIR and
removed, so that the run reuses memory the guest has just freed: runs then vary by a few percent;
--no-warm skips it), the shuffled order (no kind always follows the same one), many rounds, and the
minimum beside the median. `mpirun -np N shardinit --version` is timed too, for N = 2 and 4: the
launch, MPI_Init and MPI_Finalize that every MPI run at N ranks includes; each MPI run's ratio to one
process is also given with that launch taken out. --mpirun-arg passes an argument to every mpirun
(e.g. `--mca pml ob1`: on a node without a fast network, Open MPI 4.1's default pml selection first
initializes UCX, which costs about 0.2 s of every launch here). The user and system CPU seconds of every run are reported: on tmpfs the
system time (allocating and copying into page-cache pages) is what varies from run to run.
--load K keeps K busy processes running during the whole measurement (the "loaded machine" case; the plain write is measured under the same load). Peak RSS is the
largest process's (the largest rank's under mpirun), from wait4.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--dir", default="/dev/shm", help="filesystem to write to (default /dev/shm)")
p.add_argument("--repeat", type=int, default=7, help="rounds; the median and the minimum are reported")
p.add_argument("--manifest", help="manifest (default: the Llama-shaped 1.1B one, made in DIR)")
p.add_argument("--load", type=int, default=0, help="busy processes to run meanwhile")
p.add_argument("--hf", action="store_true", help="write --format hf --max-shard-size 500MB directories")
p.add_argument("--no-warm", action="store_true",
               help="skip the untimed warm-up write before each run (see above: on a VM the runs then vary 1-4x)")
p.add_argument("--mpirun-arg", action="append", default=[], metavar="ARG",
               help="an argument for every mpirun (repeat it: --mpirun-arg=--mca --mpirun-arg=pml --mpirun-arg=ob1)")
p.add_argument("--shardinit", default=os.environ.get("SHARDINIT", os.path.join(here, "build/src/shardinit")))
a = p.parse_args()

manifest = a.manifest or os.path.join(a.dir, "bench-io-llama.json")
if not a.manifest and not os.path.exists(manifest):
    subprocess.run([sys.executable, os.path.join(here, "examples/make-llama-manifest.py"), manifest], check=True)
out = os.path.join(a.dir, "bench-io.out")
plain = os.path.join(a.dir, "bench-io.plain")
warm = os.path.join(a.dir, "bench-io.warm")
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
fmt = ["--format", "hf", "--max-shard-size", "500MB"] if a.hf else []


def remove(path):
    subprocess.run(["rm", "-rf", path], check=True)


def output_bytes(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    return os.path.getsize(path)


def timed(argv):
    """Runs argv; returns (seconds, peak RSS in MiB of the largest process, user CPU s, system CPU s;
    the CPU times include the processes it waited for: mpirun's ranks)."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty failure cannot block the child
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            sys.exit(f"bench-io: {' '.join(argv)} failed ({code}): {errors.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime, usage.ru_stime


def write_bytes(path, nbytes, fill, sync):
    """Writes nbytes to path from one 16 MiB buffer of the byte fill, with write(2); fsync if sync."""
    block = memoryview(bytes([fill]) * (16 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = nbytes
    while left > 0:
        left -= os.write(fd, block[: min(left, len(block))])
    if sync:
        os.fsync(fd)
    os.close(fd)


def warm_up(nbytes):
    """Writes and removes nbytes in DIR, untimed, so that the run that follows allocates pages the
    guest has just freed rather than pages handed back to the host (virtio free page reporting waits
    about 2 s before it hands freed memory back; re-faulting it is what made runs vary 1-4x)."""
    write_bytes(warm, nbytes, 0xA5, sync=False)
    os.unlink(warm)


def plain_write(nbytes):
    cpu = os.times()
    start = time.perf_counter()
    write_bytes(plain, nbytes, 0x5A, sync=True)
    seconds = time.perf_counter() - start
    done = os.times()
    return seconds, None, done.user - cpu.user, done.system - cpu.system  # in this process: no RSS of its own


si = a.shardinit


def mpirun(ranks):
    return ["mpirun", "-np", str(ranks)] + a.mpirun_arg
init = [si, "init", manifest, "-o", out, "-q"] + fmt
kinds = {
    "plain write()": lambda: plain_write(nbytes),
    "init": lambda: timed(init),
    "init --threads 1": lambda: timed(init + ["--threads", "1"]),
    "mpirun -np 2 init": lambda: timed(mpirun(2) + init),
    "mpirun -np 4 init": lambda: timed(mpirun(4) + init),
    "verify": lambda: verify(),
    "mpirun -np 2 --version": lambda: timed(mpirun(2) + [si, "--version"]),
    "mpirun -np 4 --version": lambda: timed(mpirun(4) + [si, "--version"]),
}


def verify():
    if not os.path.exists(out):
        timed(init)  # untimed: the output to read back
    return timed([si, "verify", manifest, out, "-q"] + fmt)



loaders = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.load)]
try:
    remove(out)
    timed(init)  # warm-up; also gives the size
    nbytes = output_bytes(out)
    runs = {k: [] for k in kinds}
    order = random.Random(2026)
    for _ in range(a.repeat):
        for name in order.sample(list(kinds), len(kinds)):
            remove(plain)
            if name != "verify":
                remove(out)
            if not a.no_warm and not name.endswith("--version"):
                warm_up(nbytes)
            runs[name].append(kinds[name]())
    remove(out)
    remove(plain)
finally:
    for l in loaders:
        l.kill()
    if os.path.exists(warm):
        os.unlink(warm)

median = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
peak_rss = {k: max((r[1] for r in v if r[1] is not None), default=None) for k, v in runs.items()}
rss_text = {k: "-" if r is None else f"{r:.0f}" for k, r in peak_rss.items()}
best = {k: min(r[0] for r in v) for k, v in runs.items()}
user = {k: statistics.median(r[2] for r in v) for k, v in runs.items()}
system = {k: statistics.median(r[3] for r in v) for k, v in runs.items()}
# An MPI run's rate against one process's with the launch at the same rank count (mpirun, MPI_Init
# and MPI_Finalize, timed alone above) taken out of its time: what distributing the work itself costs.
launch = {k: median[k.replace(" init", " --version")] for k in runs if k.startswith("mpirun") and k.endswith(" init")}
net = {k: median["init"] / (median[k] - launch[k]) for k in launch if median[k] > launch[k]}
print(f"bench-io: {a.dir}, {nbytes} bytes{' (hf)' if a.hf else ''}, {os.cpu_count()} cores, load {a.load}, "
      f"{a.repeat} rounds in shuffled order{'' if a.no_warm else ', each run after a warm-up write'}; ratios are of rates (bytes/s)")
print(f"{'run':<23} {'median s':>8} {'GB/s':>5} {'x write':>7} {'x init':>6} {'min s':>6} {'x write':>7} {'x init':>6} "
      f"{'user s':>6} {'sys s':>6} {'RSS MiB':>7}  runs (s)")
for k, v in runs.items():
    times = ' '.join(f'{r[0]:.2f}' for r in v)
    cpu = f"{user[k]:6.2f} {system[k]:6.2f}"
    if k.endswith("--version"):  # no bytes: the time only
        print(f"{k:<23} {median[k]:8.3f} {'':>5} {'':>7} {'':>6} {best[k]:6.3f} {'':>7} {'':>6} {cpu} {rss_text[k]:>7}  {times}")
        continue
    print(f"{k:<23} {median[k]:8.3f} {nbytes / median[k] / 1e9:5.2f} {median['plain write()'] / median[k]:7.2f} "
          f"{median['init'] / median[k]:6.2f} {best[k]:6.3f} {best['plain write()'] / best[k]:7.2f} {best['init'] / best[k]:6.2f} "
          f"{cpu} {rss_text[k]:>7}  {times}")
for k, ratio in net.items():
    print(f"{k}: {ratio:.2f} x init with the launch ({launch[k]:.3f} s) taken out of its median")
# What the cores allow: a run cannot take less than its CPU seconds spread over every core, nor less
# than the plain write's time, nor (one fill thread) less than its user time, which is nearly all
# generation; the ratio is how close the overlap of generation and writing comes.
cores = os.cpu_count() or 1
for k in ("init", "init --threads 1"):
    bound = max((user[k] + system[k]) / cores, median["plain write()"], user[k] if k.endswith("--threads 1") else 0)
    print(f"{k}: its CPU ({user[k]:.2f} s user + {system[k]:.2f} s sys) over {cores} cores allows {bound:.3f} s at best: "
          f"{median['plain write()'] / bound:.2f} x write; the run is at {bound / median[k]:.2f} of that")
print("user and sys: median CPU seconds of the run (of mpirun and its ranks); the plain write's are this script's own")
print(json.dumps({"dir": a.dir, "bytes": nbytes, "load": a.load, "hf": a.hf, "warm": not a.no_warm,
                  "mpirun_args": a.mpirun_arg, "median_s": median, "min_s": best,
                  "user_s": user, "sys_s": system, "x_init_without_launch": net, "peak_rss_mib": peak_rss}))
