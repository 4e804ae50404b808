#!/usr/bin/python3
"""A whole job's topology from Python under MPI (mpi4py): each rank asks shardinit for its
coordinates and groups, builds its communicators from them, and fills in place exactly what it holds
of each tensor: the right pipeline stage only, its ZeRO-3 range or FSDP2 chunk, its experts. Every
holding equals the same piece of the tensor one process fills whole, and rank 0 checks that the
pieces gathered from all ranks cover every tensor with the topology's replication.

Usage:
  test_topology_mpi.py --launch MPIEXEC [ARGS...]   (as CTest runs it; exit 77 without NumPy, torch, mpi4py)
  mpiexec -n N test_topology_mpi.py                 N = 4 or 8: every topology below that fits N ranks

Topologies at 4 ranks: dp 2 x tp 2 with ZeRO-3 (default) and FSDP2 tensors; pp 2 x tp 2 with stages.
At 8: dp 2 x pp 2 x tp 2 (1d); dp 2 x tp 4 (2d); dp 4 x tp 2 with expert 2; HybridParallelPlugin's
(pp, dp, tp) order; and a manifest of the same job, whose holdings (shardinit.holdings) equal the
keywords'.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import traceback


def launch(command: list[str]) -> int:
    try:
        import mpi4py  # noqa: F401
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        print(f"SKIP: {sys.executable} cannot import NumPy, PyTorch and mpi4py ({error})", flush=True)
        return 77
    return subprocess.run(command + [sys.executable, os.path.abspath(__file__)]).returncode


if __name__ == "__main__" and "--launch" in sys.argv:
    sys.exit(launch(sys.argv[sys.argv.index("--launch") + 1:]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mpi4py import MPI  # noqa: E402

import shardinit  # noqa: E402
from shardinit import init  # noqa: E402

SEED = 99
KAIMING = init.kaiming_uniform_(a=math.sqrt(5))


def topologies(world: int) -> list[tuple[str, dict, list[dict]]]:
    """(label, parallel, tensors): each tensor's fill_ keywords beyond parallel, world and rank."""
    one_d = lambda size: {"mode": "1d", "size": size}  # noqa: E731
    out = []
    if world == 4:
        out.append(("dp2 x tp2 zero3", {"tensor": one_d(2), "data_partition": "zero3"}, [
            dict(name="fc.weight", shape=(38, 11), init=KAIMING, layout="linear_col"),
            dict(name="fc.bias", shape=(38,), init=init.uniform_(-0.1, 0.1), layout="linear_col_bias"),
            dict(name="norm", shape=(5, 7), init=init.normal_()),
            dict(name="tiny", shape=(1,), init=init.normal_()),
            dict(name="fsdp", shape=(7, 8), init=init.lecun_normal_(), layout="linear_row", data_partition="fsdp2"),
            dict(name="plain", shape=(3, 3), init=init.ones_(), data_partition="none"),
        ]))
        out.append(("pp2 x tp2", {"tensor": one_d(2), "pipeline": 2}, [
            dict(name="embed", shape=(20, 6), init=init.normal_(std=0.02), layout="vocab_embedding", stage=[0, 1],
                 padding_idx=1),
            dict(name="h0", shape=(12, 6), init=KAIMING, layout="linear_col", stage=0),
            dict(name="h1", shape=(6, 12), init=KAIMING, layout="linear_row", stage=1),
        ]))
    if world == 8:
        out.append(("dp2 x pp2 x tp2", {"tensor": one_d(2), "data": 2, "pipeline": {"size": 2, "layers": 3}}, [
            dict(name="h0.w", shape=(16, 8), init=KAIMING, layout="linear_col", layer=0),
            dict(name="h2.w", shape=(8, 16), init=KAIMING, layout="linear_row", layer=2),
            dict(name="h1.b", shape=(16,), init=init.zeros_(), layout="linear_col_bias", layer=1),
            dict(name="z", shape=(9, 5), init=init.normal_(), stage=1, data_partition="zero3"),
        ]))
        out.append(("dp2 x tp4 (2d)", {"tensor": {"mode": "2d", "size": 4}}, [
            dict(name="lin", shape=(16, 12), init=KAIMING, layout="linear"),
            dict(name="bias", shape=(12,), init=init.zeros_(), layout="linear_bias"),
            dict(name="emb", shape=(16, 8), init=init.normal_(), layout="vocab_embedding"),
            dict(name="zlin", shape=(6, 10), init=init.xavier_uniform_(), layout="linear", data_partition="zero3"),
        ]))
        out.append(("dp4 x tp2, expert 2", {"tensor": one_d(2), "data": 4, "expert": 2}, [
            dict(name="experts.w1", shape=(4, 16, 12), init=KAIMING, expert=True, layout="linear_col"),
            dict(name="experts.w2", shape=(4, 12, 16), init=KAIMING, expert=True, layout="linear_row",
                 data_partition="zero3"),
            dict(name="router", shape=(4, 12), init=init.normal_(std=0.02)),
            dict(name="dense", shape=(10, 12), init=KAIMING, layout="linear_col", data_partition="fsdp2"),
        ]))
        out.append(("(pp, dp, tp) order", {"tensor": one_d(2), "pipeline": 2, "order": ["pp", "dp", "tp"]}, [
            dict(name="a", shape=(8, 6), init=KAIMING, layout="linear_col", stage=0),
            dict(name="b", shape=(6, 8), init=KAIMING, layout="linear_row", stage=1, data_partition="zero3"),
        ]))
    return out


def bits(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int32).numpy().copy()


def check_coordinates(comm, parallel: dict, label: str) -> list[str]:
    rank, world = comm.Get_rank(), comm.Get_size()
    failures = []
    c = shardinit.coordinates(parallel, world, rank)
    groups = shardinit.groups(parallel, world, rank)
    if shardinit.rank_of(parallel, world, dp=c["dp"], pp=c["pp"], tp=c["tp"]) != rank:
        failures.append(f"rank {rank}: {label}: rank_of(coordinates) is not the rank")
    # Colossal-AI's legacy numbering for the default order: rank = dp * (pp * tp) + pp * tp + tp.
    mesh = shardinit.job_mesh(parallel, world)
    if parallel.get("order") is None and "expert" not in parallel:
        pp, tp = (parallel.get("pipeline", 1) if isinstance(parallel.get("pipeline", 1), int) else parallel["pipeline"]["size"],
                  math.prod(shardinit.colossal_mesh(parallel)))
        if rank != c["dp"] * pp * tp + c["pp"] * tp + c["tp"]:
            failures.append(f"rank {rank}: {label}: coordinates {c} are not Colossal-AI's numbering on mesh {mesh}")
    # Every member of a group sees the same group, and the group's communicator (what a trainer
    # builds) has the rank at its local rank.
    for axis, members in groups.items():
        local = members.index(rank) if rank in members else -1
        key = {"dp": "dp", "pp": "pp", "tp": "tp", "ep": "ep", "edp": "edp"}[axis]
        if local != c[key]:
            failures.append(f"rank {rank}: {label}: its {axis} group {members} puts it at {local}, its coordinate is {c[key]}")
        color = min(members)
        sub = comm.Split(color=color, key=local)
        seen = sub.allgather(members)
        if any(m != members for m in seen) or sub.Get_rank() != local:
            failures.append(f"rank {rank}: {label}: the members of its {axis} group disagree: {seen}")
        sub.Free()
    return failures


def check_tensors(comm, parallel: dict, tensors: list[dict], label: str) -> list[str]:
    rank, world = comm.Get_rank(), comm.Get_size()
    failures = []
    for t in tensors:
        keywords = {k: v for k, v in t.items() if k not in ("name", "shape", "init")}
        holding = shardinit.local_holding(t["shape"], parallel=parallel, world=world, rank=rank, name=t["name"],
                                          **{k: v for k, v in keywords.items() if k != "padding_idx"})
        start, extent = holding["box"]
        # The whole tensor, filled by this rank alone with the fans its definition resolves to (a
        # preset's or an expert's convention), as one process would.
        resolved = shardinit.resolve(t["shape"], t["init"], t["name"], parallel=parallel, world=world, **keywords)
        whole = torch.empty(t["shape"], dtype=torch.float32)
        shardinit.fill_(whole, t["shape"], t["init"], SEED, t["name"], padding_idx=t.get("padding_idx"),
                        fan_in=resolved["fan_in"], fan_out=resolved["fan_out"])
        if not holding["holds"]:
            piece = torch.empty(0)
            shardinit.fill_(piece, t["shape"], t["init"], SEED, t["name"], parallel=parallel, world=world, rank=rank,
                            **keywords)
            expected = np.zeros(0, np.int32)
        else:
            region = bits(whole)[tuple(slice(s, s + e) for s, e in zip(start, extent))]
            if holding["zero3"]:
                piece = torch.empty(holding["count"])
                expected = region.reshape(-1)[holding["first"]:holding["first"] + holding["count"]]
            else:
                piece = torch.empty(extent)
                expected = region
            shardinit.fill_(piece, t["shape"], t["init"], SEED, t["name"], parallel=parallel, world=world, rank=rank,
                            **keywords)
        got = bits(piece) if piece.numel() else np.zeros(0, np.int32)
        if not np.array_equal(got.reshape(-1), expected.reshape(-1)):
            failures.append(f"rank {rank}: {label}: {t['name']}: its holding {holding} differs from the whole tensor's")
        # Rank 0: the holdings of all ranks cover the tensor, each element as often as it is replicated.
        pieces = comm.gather((holding, got.tobytes()), root=0)
        if rank == 0:
            count = np.zeros(t["shape"], np.int64)
            for h, raw in pieces:
                if not h["holds"] or h["count"] == 0:
                    continue
                (s, e) = h["box"]
                positions = np.arange(math.prod(e)).reshape(e)
                held = (positions >= h["first"]) & (positions < h["first"] + h["count"])
                count[tuple(slice(a, a + b) for a, b in zip(s, e))] += held
            if count.min() < 1 or count.max() != count.min():
                failures.append(f"rank 0: {label}: {t['name']}: elements held {count.min()} to {count.max()} times")
    return failures


def check_manifest_holdings(comm, parallel: dict, tensors: list[dict], label: str, directory: str) -> list[str]:
    """The same job as a manifest: shardinit.holdings gives each rank what the keywords gave it."""
    rank, world = comm.Get_rank(), comm.Get_size()
    entries = []
    for t in tensors:
        entry = {"name": t["name"], "shape": list(t["shape"]), "init": {"fn": "zeros"}}
        entry.update({k: v for k, v in t.items() if k not in ("name", "shape", "init")})
        entries.append(entry)
    path = os.path.join(directory, f"job-{rank}.json")
    with open(path, "w") as f:
        json.dump({"seed": SEED, "parallel": parallel, "tensors": entries}, f)
    failures = []
    from_manifest = {h["name"]: h for h in shardinit.holdings(path, world, rank)}
    for t in tensors:
        h = shardinit.local_holding(t["shape"], parallel=parallel, world=world, rank=rank, name=t["name"],
                                    **{k: v for k, v in t.items() if k not in ("name", "shape", "init", "padding_idx")})
        if not h["holds"]:
            if t["name"] in from_manifest:
                failures.append(f"rank {rank}: {label}: holdings() lists {t['name']}, which the rank does not hold")
            continue
        m = from_manifest.get(t["name"])
        if m is None or any(m[k] != h[k] for k in ("box", "first", "count", "buffer", "zero3")):
            failures.append(f"rank {rank}: {label}: {t['name']}: holdings() {m} != local_holding() {h}")
    return failures


def main() -> int:
    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    rank, world = comm.Get_rank(), comm.Get_size()
    failures = []
    checked = 0
    try:
        with tempfile.TemporaryDirectory(prefix="shardinit-topology-") as directory:
            for label, parallel, tensors in topologies(world):
                failures += check_coordinates(comm, parallel, label)
                failures += check_tensors(comm, parallel, tensors, label)
                failures += check_manifest_holdings(comm, parallel, tensors, label, directory)
                checked += 1
            # A topology that does not fit the world is refused with the numbers.
            try:
                shardinit.coordinates({"tensor": {"mode": "1d", "size": 3}}, world, 0)
                failures.append(f"rank {rank}: tp 3 on {world} ranks was accepted")
            except ValueError as error:
                if "does not divide" not in str(error):
                    failures.append(f"rank {rank}: tp 3 on {world} ranks: {error}")
    except Exception:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Abort(1)
        return 1
    every = [f for per_rank in comm.allgather(failures) for f in per_rank]
    if rank == 0:
        for failure in every:
            print("FAIL:", failure, flush=True)
        print(f"test_topology_mpi.py: {world} ranks, {checked} topologies: "
              + ("every holding matches" if not every else f"{len(every)} failures"), flush=True)
    return 1 if every else 0 if checked else 1


if __name__ == "__main__":
    sys.exit(main())
