#!/usr/bin/env bash
# Single-thread initialization throughput of shardinit next to its peers, PyTorch's torch.nn.init and
# NumPy's Generator(Philox), on tensors of the same size. Builds and installs nothing.
#
# Usage: scripts/bench-peers.sh [options] [ELEMENTS]
#   ELEMENTS            elements per tensor (default $BENCH_ELEMENTS, else 2^26 = 67108864)
#   --quick             2^22 = 4194304 elements and 3 repeats (unless given otherwise)
#   --repeat R          timed runs per measurement; the median is reported (default $BENCH_REPEAT, else 5)
#   --initializers L    comma-separated (default: uniform,normal,trunc_normal,kaiming_uniform,
#                       kaiming_normal,xavier_uniform,xavier_normal; or $BENCH_INITIALIZERS)
#   --dtypes L          comma-separated, from f32,bf16 (default f32,bf16; or $BENCH_DTYPES)
#   --peers-only        run PyTorch and NumPy without shardinit (no CLI needed)
#
# Environment: SHARDINIT is the CLI (default build/src/shardinit; build it with scripts/build.sh).
# PYTHON is the interpreter for the peers (default /usr/bin/python3, Debian's, which sees
# python3-torch and python3-numpy). A peer that cannot be imported is skipped with a note.
#
# shardinit is measured by `shardinit bench --threads 1`, which prints one JSON object per line
# (initializer, dtype, threads, elements, seconds, elements_per_s, memset_elements_per_s,
# ratio_to_memset). PyTorch runs torch.nn.init.<initializer>_ in place on a 2-D float32 (and
# bfloat16) tensor with torch.set_num_threads(1). NumPy, which has neither bfloat16 nor truncated
# normals nor initializers, runs the kernel each initializer reduces to, unscaled, into a
# preallocated float32 array: .random for the uniform family, .standard_normal for the normal family.
# NumPy's random generators do not use BLAS, so OPENBLAS_* settings do not change its numbers; they
# are left as they are.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shardinit=${SHARDINIT:-$root/build/src/shardinit}
python=${PYTHON:-/usr/bin/python3}
elements=${BENCH_ELEMENTS:-}
repeat=${BENCH_REPEAT:-}
initializers=${BENCH_INITIALIZERS:-uniform,normal,trunc_normal,kaiming_uniform,kaiming_normal,xavier_uniform,xavier_normal}
dtypes=${BENCH_DTYPES:-f32,bf16}
quick=0
peers_only=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "bench-peers.sh: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --quick) quick=1 ;;
    --peers-only) peers_only=1 ;;
    --repeat) (($# >= 2)) || die "--repeat needs a value"; repeat=$2; shift ;;
    --repeat=*) repeat=${1#*=} ;;
    --initializers) (($# >= 2)) || die "--initializers needs a value"; initializers=$2; shift ;;
    --initializers=*) initializers=${1#*=} ;;
    --dtypes) (($# >= 2)) || die "--dtypes needs a value"; dtypes=$2; shift ;;
    --dtypes=*) dtypes=${1#*=} ;;
    --elements) (($# >= 2)) || die "--elements needs a value"; elements=$2; shift ;;
    --elements=*) elements=${1#*=} ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) elements=$1 ;;
  esac
  shift
done
if ((quick)); then
  elements=${elements:-4194304}
  repeat=${repeat:-3}
fi
elements=${elements:-67108864}
repeat=${repeat:-5}
[[ $elements =~ ^[1-9][0-9]*$ ]] || die "ELEMENTS must be a positive integer, got '$elements'"
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive integer, got '$repeat'"
[[ $initializers =~ ^[a-z_]+(,[a-z_]+)*$ ]] || die "--initializers must be a comma-separated list of names, got '$initializers'"
[[ $dtypes =~ ^(f32|bf16)(,(f32|bf16))*$ ]] || die "--dtypes must be a comma-separated list of f32 and bf16, got '$dtypes'"

[[ -x $python ]] || command -v "$python" >/dev/null 2>&1 ||
  die "no Python interpreter at '$python' (set PYTHON; Debian: python3)"

# ---- shardinit ----------------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/shardinit.jsonl"
: >"$work/torch.jsonl"
: >"$work/numpy.jsonl"
notes=()

if ((peers_only)); then
  notes+=("shardinit: not run (--peers-only)")
else
  if ! command -v "$shardinit" >/dev/null 2>&1; then
    die "no shardinit CLI at '$shardinit'. Build it with scripts/build.sh (or point SHARDINIT at it; --peers-only runs the peers alone)."
  fi
  # CLI11 answers `shardinit bench --help` with the top-level help (and status 0) when there is no
  # bench subcommand, so look for bench in the usage line or the subcommand list instead.
  if ! { "$shardinit" bench --help 2>&1 | grep -qiE '^usage:.*[[:space:]]bench([[:space:]]|$)' ||
         "$shardinit" --help 2>&1 | grep -qE '^[[:space:]]+bench([[:space:]]|$)'; }; then
    die "'$shardinit' has no 'bench' subcommand (its --help lists none): it was built from older sources. Rebuild with scripts/build.sh, or use --peers-only."
  fi
  echo "== shardinit: $shardinit bench --threads 1 --elements $elements --repeat $repeat" >&2
  if ! "$shardinit" bench --threads 1 --elements "$elements" --repeat "$repeat" \
      --initializers "$initializers" --dtypes "$dtypes" >"$work/shardinit.out" 2>"$work/shardinit.err"; then
    cat "$work/shardinit.err" >&2
    die "'$shardinit bench' failed (its output is above)"
  fi
  cp "$work/shardinit.out" "$work/shardinit.jsonl"
fi

# ---- peers ------------------------------------------------------------------------------------------
cat >"$work/bench.py" <<'PY'
import json
import statistics
import sys
import time

UNIFORM_FAMILY = {"uniform", "kaiming_uniform", "xavier_uniform", "lecun_uniform"}
NORMAL_FAMILY = {"normal", "kaiming_normal", "xavier_normal", "lecun_normal"}


def median_seconds(run, repeat):
    run()  # warm-up: first-touch page faults, lazy initialization
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def two_d_shape(n):
    # torch.nn.init's kaiming_* and xavier_* need fans, so the tensor is (n / cols, cols).
    cols = 1
    while cols < 1024 and n % (2 * cols) == 0:
        cols *= 2
    return (n // cols, cols)


def emit(**record):
    print(json.dumps(record), flush=True)


def peer_torch(n, repeat, initializers, dtypes):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(0)
    emit(info="torch", version=torch.__version__, threads=torch.get_num_threads())
    torch_dtype = {"f32": torch.float32, "bf16": torch.bfloat16}
    for name in initializers:
        fn = getattr(torch.nn.init, name + "_", None)
        for dtype in dtypes:
            if fn is None:
                emit(initializer=name, dtype=dtype, error="torch.nn.init has no %s_" % name)
                continue
            tensor = torch.empty(two_d_shape(n), dtype=torch_dtype[dtype])
            try:
                with torch.no_grad():
                    seconds = median_seconds(lambda: fn(tensor), repeat)
            except Exception as e:  # e.g. an op without a bfloat16 CPU kernel
                emit(initializer=name, dtype=dtype, error="%s: %s" % (type(e).__name__, e))
                continue
            emit(initializer=name, dtype=dtype, elements=n, seconds=seconds, elements_per_s=n / seconds,
                 call="torch.nn.init.%s_" % name)
            del tensor


def peer_numpy(n, repeat, initializers, dtypes):
    import numpy as np
    rng = np.random.Generator(np.random.Philox(0))
    emit(info="numpy", version=np.__version__)
    out = np.empty(n, dtype=np.float32)
    for name in initializers:
        for dtype in dtypes:
            if dtype != "f32":
                continue  # numpy has no bfloat16
            if name in UNIFORM_FAMILY:
                call, run = "random", lambda: rng.random(dtype=np.float32, out=out)
            elif name in NORMAL_FAMILY:
                call, run = "standard_normal", lambda: rng.standard_normal(dtype=np.float32, out=out)
            else:
                continue  # no numpy counterpart (trunc_normal, constants)
            seconds = median_seconds(run, repeat)
            emit(initializer=name, dtype=dtype, elements=n, seconds=seconds, elements_per_s=n / seconds,
                 call="Generator(Philox).%s(dtype=float32)" % call)


def read_records(path, source):
    """JSON objects, one per line; anything else (log lines, blank lines, broken JSON) is skipped."""
    records, skipped = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                skipped += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                skipped += 1
    if skipped:
        print("note: %d line(s) of %s output were not JSON objects and were ignored" % (skipped, source),
              file=sys.stderr)
    return records


def number(record, key):
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def by_case(records, threads=None):
    table = {}
    for r in records:
        if "initializer" not in r or "dtype" not in r:
            continue
        if threads is not None and r.get("threads", threads) != threads:
            continue
        table[(str(r["initializer"]), str(r["dtype"]))] = r  # the last line for a case wins
    return table


def rate(value):
    if value is None:
        return "-"
    return "%.1f M/s" % (value / 1e6)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2fx" % (a / b)


def report(elements, repeat, initializers, dtypes, paths, shardinit_ran):
    mine = by_case(read_records(paths["shardinit"], "shardinit bench"), threads=1)
    if shardinit_ran and not mine:
        print("warning: shardinit bench printed no usable JSON line (one object per line, with"
              " initializer, dtype, threads and elements_per_s); its output:", file=sys.stderr)
        with open(paths["shardinit"], encoding="utf-8", errors="replace") as f:
            sys.stderr.write(f.read())
    torch_records = read_records(paths["torch"], "torch peer")
    numpy_records = read_records(paths["numpy"], "numpy peer")
    torch_ = by_case(torch_records)
    numpy_ = by_case(numpy_records)
    for r in torch_records + numpy_records:
        if "info" in r:
            extra = ", %s thread(s)" % r["threads"] if "threads" in r else ""
            print("%s %s%s" % (r["info"], r.get("version", "?"), extra))
    print("elements per tensor: %d, median of %d runs, single thread" % (elements, repeat))
    print("torch: torch.nn.init.<initializer>_ in place on a (n/cols, cols) tensor")
    print("numpy: Generator(Philox).random / .standard_normal(dtype=float32, out=...) for the uniform /"
          " normal family, unscaled; no bfloat16, no truncated normal")
    print("vs memset: shardinit elements/s over memset elements/s of the same bytes (from shardinit bench)")
    for name in initializers:
        print()
        print("== %s" % name)
        header = ("dtype", "shardinit", "vs memset", "torch", "numpy", "shardinit/torch", "shardinit/numpy")
        rows = [header]
        notes = []
        for dtype in dtypes:
            s, t, n = mine.get((name, dtype), {}), torch_.get((name, dtype), {}), numpy_.get((name, dtype), {})
            s_rate, t_rate, n_rate = number(s, "elements_per_s"), number(t, "elements_per_s"), number(n, "elements_per_s")
            # From the two rates when present: ratio_to_memset is printed with only three decimals.
            memset_rate = number(s, "memset_elements_per_s")
            memset_ratio = s_rate / memset_rate if s_rate and memset_rate else number(s, "ratio_to_memset")
            rows.append((dtype, rate(s_rate), "-" if memset_ratio is None else "%.3g" % memset_ratio,
                         rate(t_rate), rate(n_rate), ratio(s_rate, t_rate), ratio(s_rate, n_rate)))
            if shardinit_ran and not s:
                notes.append("shardinit bench printed no threads=1 line for %s %s" % (name, dtype))
            if s and number(s, "elements") not in (None, float(elements)):
                notes.append("shardinit %s ran %s elements" % (dtype, s.get("elements")))
            for peer, r in (("torch", t), ("numpy", n)):
                if "error" in r:
                    notes.append("%s %s: %s" % (peer, dtype, r["error"]))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            print("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                   for i, (cell, w) in enumerate(zip(row, widths))))
        for note in notes:
            print("  (%s)" % note)


def main():
    mode = sys.argv[1]
    if mode == "peer":
        peer, n, repeat = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        initializers, dtypes = sys.argv[5].split(","), sys.argv[6].split(",")
        {"torch": peer_torch, "numpy": peer_numpy}[peer](n, repeat, initializers, dtypes)
    elif mode == "report":
        elements, repeat = int(sys.argv[2]), int(sys.argv[3])
        initializers, dtypes = sys.argv[4].split(","), sys.argv[5].split(",")
        paths = dict(zip(("shardinit", "torch", "numpy"), sys.argv[6:9]))
        report(elements, repeat, initializers, dtypes, paths, shardinit_ran=sys.argv[9] == "1")


main()
PY

# peer MODULE DEBIAN_PACKAGE: runs one peer unless its module cannot be imported.
peer() {
  local module=$1 package=$2
  if ! "$python" -c "import $module" >/dev/null 2>&1; then
    notes+=("$module: skipped, '$python' cannot import it (Debian package: $package)")
    return 0
  fi
  echo "== $module: $python, single thread" >&2
  if ! "$python" "$work/bench.py" peer "$module" "$elements" "$repeat" "$initializers" "$dtypes" \
      >"$work/$module.jsonl"; then
    notes+=("$module: the peer run failed (its error is above)")
  fi
}
peer torch python3-torch
peer numpy python3-numpy

echo
"$python" "$work/bench.py" report "$elements" "$repeat" "$initializers" "$dtypes" \
  "$work/shardinit.jsonl" "$work/torch.jsonl" "$work/numpy.jsonl" "$((!peers_only))"
if ((${#notes[@]})); then
  echo
  printf 'note: %s\n' "${notes[@]}"
fi
