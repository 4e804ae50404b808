#!/usr/bin/python3
"""The Python bindings under MPI (mpi4py): every rank fills only its own torch shard, and the shards
are exactly the slices of the tensor a single process fills.

Usage:
  test_mpi.py --launch MPIEXEC [MPIEXEC ARGS...]   (as CTest runs it) checks that NumPy, PyTorch and
      mpi4py import (exit 77, CTest SKIP, when one does not), then runs
      MPIEXEC ARGS... /usr/bin/python3 test_mpi.py and exits with its status;
  mpiexec -n N test_mpi.py                          the test itself, on N ranks (N = 2 or 4 here).

Each rank fills its shard of Colossal-AI 1d presets (linear_col, linear_row, their biases,
vocab_embedding) of a (48, 36) weight, of custom 2-axis layouts on a [2, N/2] mesh (one uneven), and
at 4 ranks of the 2d `linear` preset, in bf16 and f32; compares it with the same slice of the whole
tensor it fills itself; then rank 0 gathers every rank's piece and checks each against its own whole
tensor and that the pieces cover it. Any failure on any rank makes every rank exit 1.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import traceback


def launch(command: list[str]) -> int:
    try:
        import mpi4py  # noqa: F401  (the package only: MPI is initialized by the ranks, not here)
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        print(f"SKIP: {sys.executable} cannot import NumPy, PyTorch and mpi4py ({error}); "
              "on Debian: apt-get install python3-numpy python3-torch python3-mpi4py", flush=True)
        return 77
    return subprocess.run(command + [sys.executable, os.path.abspath(__file__)]).returncode


if __name__ == "__main__" and "--launch" in sys.argv:
    sys.exit(launch(sys.argv[sys.argv.index("--launch") + 1:]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mpi4py import MPI  # noqa: E402

import shardinit  # noqa: E402
from shardinit import init  # noqa: E402

SEED = 20240611
TORCH_DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32}
BITS = {"bf16": np.uint16, "f32": np.uint32}


def bits(tensor: torch.Tensor, dtype: str) -> np.ndarray:
    view = tensor.view(torch.int16) if dtype == "bf16" else tensor.view(torch.int32)
    return view.numpy().view(BITS[dtype])


def cases(world: int) -> list[dict]:
    """Each: name, global shape, initializer, fans, layout keywords for fill_, fans of the whole fill."""
    one_d = {"mode": "1d", "size": world}
    weight = init.kaiming_uniform_(a=math.sqrt(5))
    bias = init.xavier_uniform_(a=1.0, scale=1.0)
    mesh = [2, world // 2]
    result = [
        dict(name="fc1.weight", shape=(48, 36), init=weight, fans={}, layout={"layout": "linear_col", "parallel": one_d}),
        dict(name="fc1.bias", shape=(48,), init=bias, fans={"fan_in": 36},
             layout={"layout": "linear_col_bias", "parallel": one_d}),
        dict(name="fc2.weight", shape=(48, 36), init=weight, fans={}, layout={"layout": "linear_row", "parallel": one_d}),
        dict(name="fc2.bias", shape=(48,), init=bias, fans={"fan_in": 36},
             layout={"layout": "linear_row_bias", "parallel": one_d}),
        dict(name="wte", shape=(64, 12), init=init.normal_(std=0.02), fans={},
             layout={"layout": "vocab_embedding", "parallel": one_d}),
        dict(name="custom.blocks", shape=(48, 36), init=init.trunc_normal_(std=0.02), fans={},
             layout={"layout": {0: [0], 1: [1]}, "mesh": mesh}),
        dict(name="custom.columns", shape=(48, 36), init=init.xavier_normal_(), fans={},
             layout={"layout": {1: [1, 0]}, "mesh": mesh}),
        dict(name="custom.uneven", shape=(7, 5), init=init.uniform_(-1.0, 1.0), fans={},
             layout={"layout": {0: [0, 1]}, "mesh": mesh}),
    ]
    if world == 4:
        # (in, out) weight: its fans default to (48, 36), as Colossal-AI's Linear2D passes them.
        result.append(dict(name="tp2d.weight", shape=(48, 36), init=weight, fans={},
                           layout={"layout": "linear", "parallel": {"mode": "2d", "size": 4}},
                           whole_fans={"fan_in": 48, "fan_out": 36}))
    return result


def run(comm) -> list[str]:
    rank, world = comm.Get_rank(), comm.Get_size()
    failures = []
    for case in cases(world):
        for dtype in ("bf16", "f32"):
            what = f"{case['name']} {dtype} {case['layout']}"
            shape = case["shape"]
            start, extent = shardinit.local_box(shape, case["layout"]["layout"], case["layout"].get("mesh"), rank,
                                                parallel=case["layout"].get("parallel"))
            # What a training script does: allocate the local parameter, fill it in place.
            shard = torch.empty(extent, dtype=TORCH_DTYPES[dtype])
            shardinit.fill_(shard, shape, case["init"], SEED, case["name"], rank=rank, **case["layout"],
                            **case["fans"])
            # The same slice of the whole tensor, filled by this rank alone.
            whole = torch.empty(shape, dtype=TORCH_DTYPES[dtype])
            case["init"](whole, seed=SEED, name=case["name"], **case.get("whole_fans", case["fans"]))
            whole_bits = bits(whole, dtype)
            region = tuple(slice(s, s + e) for s, e in zip(start, extent))
            if not np.array_equal(bits(shard, dtype), whole_bits[region]):
                failures.append(f"rank {rank}: {what}: shard {start}+{extent} differs from the whole tensor's slice")

            pieces = comm.gather((rank, start, extent, bits(shard, dtype).tobytes()), root=0)
            if rank == 0:
                covered = np.zeros(shape, bool)
                for source, s, e, raw in pieces:
                    piece_region = tuple(slice(a, a + b) for a, b in zip(s, e))
                    piece = np.frombuffer(raw, BITS[dtype]).reshape(e)
                    if not np.array_equal(piece, whole_bits[piece_region]):
                        failures.append(f"rank 0: {what}: the piece of rank {source} ({s}+{e}) differs from "
                                        "rank 0's whole tensor")
                    covered[piece_region] = True
                if not covered.all():
                    failures.append(f"rank 0: {what}: the pieces leave {int((~covered).sum())} elements to nobody")
    return failures


def main() -> int:
    torch.set_num_threads(1)  # ranks share few cores
    comm = MPI.COMM_WORLD
    rank, world = comm.Get_rank(), comm.Get_size()
    try:
        failures = run(comm)
    except Exception:  # one rank's exception must end the job, not leave the others in a collective
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Abort(1)
        return 1
    every = [f for rank_failures in comm.allgather(failures) for f in rank_failures]
    if rank == 0:
        for failure in every:
            print("FAIL:", failure, flush=True)
        print(f"test_mpi.py: {world} ranks, {len(cases(world)) * 2} tensors: "
              + ("all shards match" if not every else f"{len(every)} failures"), flush=True)
    return 1 if every else 0


if __name__ == "__main__":
    sys.exit(main())
