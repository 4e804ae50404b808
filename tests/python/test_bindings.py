#!/usr/bin/python3
"""The Python bindings (module `shardinit`) against the shardinit CLI, bit for bit.

Usage: SHARDINIT_CLI=/path/to/shardinit PYTHONPATH=<build>/python /usr/bin/python3 test_bindings.py

Writes manifests covering every initializer x dtype, runs `shardinit init MANIFEST -o FILE`, parses
the safetensors files itself, and checks that filling NumPy arrays and torch CPU tensors in place
gives the same bits: whole tensors, boxes, custom layouts and the Colossal-AI presets stitched back
together. Also checks that the fill is in place (same memory, views see it) and that every misuse
raises with a message naming the problem. Exit status 77 (CTest SKIP) when NumPy or PyTorch is
missing, 1 on any failure.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

try:
    import numpy as np
    import torch
except ImportError as error:  # the only reason to skip: the test needs both
    print(f"SKIP: {sys.executable} cannot import NumPy and PyTorch ({error}); "
          "on Debian: apt-get install python3-numpy python3-torch", flush=True)
    sys.exit(77)

import shardinit  # noqa: E402  (a failure to import the module under test is a failure, not a skip)
from shardinit import init  # noqa: E402

SEED = 0x5EED0123456789AB  # both Philox key words non-zero
STREAM_BASE = 0xDEADBEEF12345678

# (case, global shape, manifest "init", Initializer, explicit fans, explicit stream)
CASES = [
    ("zeros", (7, 3), {"fn": "zeros"}, init.zeros_(), {}, False),
    ("ones", (5,), {"fn": "ones"}, init.ones_(), {}, False),
    ("constant", (4, 5), {"fn": "constant", "val": -0.375}, init.constant_(-0.375), {}, False),
    ("uniform", (33, 17), {"fn": "uniform", "a": -0.3, "b": 0.7}, init.uniform_(-0.3, 0.7), {}, False),
    ("uniform_default", (101,), {"fn": "uniform"}, init.uniform_(), {}, False),
    ("normal", (31, 29), {"fn": "normal", "mean": 0.1, "std": 2.0}, init.normal_(mean=0.1, std=2.0), {}, False),
    ("normal_odd", (3, 5, 7), {"fn": "normal"}, init.normal_(), {}, False),
    ("trunc_normal", (41, 13), {"fn": "trunc_normal", "mean": 0.25, "std": 0.5, "a": -0.5, "b": 1.75},
     init.trunc_normal_(0.25, 0.5, -0.5, 1.75), {}, False),
    ("trunc_normal_default", (257,), {"fn": "trunc_normal"}, init.trunc_normal_(), {}, False),
    ("kaiming_uniform_linear", (48, 36), {"fn": "kaiming_uniform", "a": math.sqrt(5)},
     init.kaiming_uniform_(a=math.sqrt(5)), {}, False),
    ("kaiming_uniform_fan_out", (20, 30), {"fn": "kaiming_uniform", "mode": "fan_out", "nonlinearity": "relu"},
     init.kaiming_uniform_(mode="fan_out", nonlinearity="relu"), {}, False),
    ("kaiming_normal_conv", (16, 8, 3, 3), {"fn": "kaiming_normal", "mode": "fan_in", "nonlinearity": "relu"},
     init.kaiming_normal_(nonlinearity="relu"), {}, False),
    ("kaiming_normal_fans", (24, 10), {"fn": "kaiming_normal", "nonlinearity": "tanh"},
     init.kaiming_normal_(0, "fan_in", "tanh"), {"fan_in": 640, "fan_out": 96}, False),
    ("xavier_uniform", (50, 70), {"fn": "xavier_uniform"}, init.xavier_uniform_(), {}, False),
    ("xavier_uniform_bias", (96,), {"fn": "xavier_uniform", "a": 1, "scale": 1},
     init.xavier_uniform_(a=1.0, scale=1.0), {"fan_in": 768}, False),
    ("xavier_normal", (70, 50), {"fn": "xavier_normal", "scale": 1.5, "gain": 0.8},
     init.xavier_normal_(scale=1.5, gain=0.8), {}, False),
    ("lecun_uniform", (40, 60), {"fn": "lecun_uniform"}, init.lecun_uniform_(), {}, False),
    ("lecun_normal", (60, 40), {"fn": "lecun_normal"}, init.lecun_normal_(), {}, False),
    ("explicit_stream", (9, 11), {"fn": "normal", "std": 0.02}, init.normal_(std=0.02), {}, True),
]
DTYPES = ["f32", "f64", "f16", "bf16"]

# How each dtype is held in Python: (label, make empty tensor of a shape, extra call keywords).
CONTAINERS = {
    "f32": [("numpy.float32", lambda s: np.empty(s, np.float32), {}),
            ("torch.float32", lambda s: torch.empty(s, dtype=torch.float32), {})],
    "f64": [("numpy.float64", lambda s: np.empty(s, np.float64), {}),
            ("torch.float64", lambda s: torch.empty(s, dtype=torch.float64), {})],
    "f16": [("numpy.float16", lambda s: np.empty(s, np.float16), {}),
            ("numpy.uint16 dtype='f16'", lambda s: np.empty(s, np.uint16), {"dtype": "f16"}),
            ("torch.float16", lambda s: torch.empty(s, dtype=torch.float16), {})],
    "bf16": [("numpy.uint16 dtype='bf16'", lambda s: np.empty(s, np.uint16), {"dtype": "bf16"}),
             ("torch.bfloat16", lambda s: torch.empty(s, dtype=torch.bfloat16), {})],
}
NUMPY_VIEW = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": np.uint16}


def bits(tensor) -> bytes:
    """The tensor's memory, row-major, as the safetensors file stores it (little-endian)."""
    if isinstance(tensor, torch.Tensor):
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.view(torch.int16)
        return tensor.contiguous().numpy().tobytes()
    return np.ascontiguousarray(tensor).tobytes()


def as_numpy(tensor, dtype: str) -> np.ndarray:
    """A NumPy array of the tensor's bits (bf16 as uint16), for slicing and comparing."""
    return np.frombuffer(bits(tensor), dtype=NUMPY_VIEW[dtype]).reshape(tuple(tensor.shape))


def read_safetensors(path: str) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """name -> (dtype, shape, raw bytes), parsed by hand: u64 LE header length, JSON header, data."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_length])
    data = blob[8 + header_length:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = (entry["dtype"], tuple(entry["shape"]), data[begin:end])
    tensors["__metadata__"] = header.get("__metadata__", {})
    return tensors


def run_cli(manifest: dict, directory: str, stem: str) -> dict:
    cli = os.environ.get("SHARDINIT_CLI")
    if not cli:
        raise RuntimeError("set SHARDINIT_CLI to the shardinit command (CTest does)")
    manifest_path = os.path.join(directory, stem + ".json")
    output = os.path.join(directory, stem + ".safetensors")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    done = subprocess.run([cli, "init", manifest_path, "-o", output, "--force", "--quiet"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cli} init failed ({done.returncode}): {done.stderr}")
    return read_safetensors(output)


def tensor_name(case: str, dtype: str) -> str:
    return f"{case}.{dtype}"


def call_keywords(case: str, dtype: str, fans: dict, explicit_stream: bool) -> dict:
    keywords = dict(fans, seed=SEED)
    if explicit_stream:
        keywords["stream"] = STREAM_BASE + DTYPES.index(dtype)
    else:
        keywords["name"] = tensor_name(case, dtype)
    return keywords


CLI_TENSORS: dict = {}
CLI_2D: dict = {}
SCRATCH = tempfile.TemporaryDirectory(prefix="shardinit-python-")


def setUpModule():
    tensors = []
    for case, shape, init_spec, _, fans, explicit_stream in CASES:
        for dtype in DTYPES:
            entry = {"name": tensor_name(case, dtype), "shape": list(shape), "dtype": dtype, "init": init_spec}
            entry.update(fans)
            if explicit_stream:
                entry["stream"] = STREAM_BASE + DTYPES.index(dtype)
            tensors.append(entry)
    CLI_TENSORS.update(run_cli({"seed": SEED, "tensors": tensors}, SCRATCH.name, "cases"))
    # Colossal-AI 2d: the (in, out) Linear weight's fans default to (shape[0], shape[1]).
    CLI_2D.update(run_cli({
        "seed": SEED, "parallel": {"tensor": {"mode": "2d", "size": 4}},
        "tensors": [
            {"name": "tp2d.weight", "shape": [48, 36], "dtype": "bf16",
             "init": {"fn": "kaiming_uniform", "a": math.sqrt(5)}, "layout": "linear"},
            {"name": "tp2d.bias", "shape": [36], "dtype": "f32",
             "init": {"fn": "xavier_uniform", "a": 1, "scale": 1}, "fan_in": 48, "layout": "linear_bias"},
        ]}, SCRATCH.name, "tp2d"))


def whole_fill(initializer, shape, dtype, **keywords):
    """The whole tensor, filled as a NumPy array of its bits."""
    make = CONTAINERS[dtype][0][1]
    tensor = make(shape)
    initializer(tensor, **dict(CONTAINERS[dtype][0][2], **keywords))
    return as_numpy(tensor, dtype)


def pieces(n: int) -> list[tuple[int, int]]:
    """Irregular cuts of a dimension of n: (start, extent) pairs covering it, with an empty piece."""
    cuts = sorted({0, n // 3, n // 3, min(n, n // 3 + 1), n})
    parts = [(a, b - a) for a, b in zip(cuts, cuts[1:])]
    return parts + [(n // 2, 0)]


class WholeTensorsMatchCli(unittest.TestCase):
    def test_every_initializer_every_dtype_every_container(self):
        checked = 0
        for case, shape, _, initializer, fans, explicit_stream in CASES:
            for dtype in DTYPES:
                st_dtype, st_shape, expected = CLI_TENSORS[tensor_name(case, dtype)]
                self.assertEqual(st_dtype, {"f32": "F32", "f64": "F64", "f16": "F16", "bf16": "BF16"}[dtype])
                self.assertEqual(st_shape, shape)
                for label, make, extra in CONTAINERS[dtype]:
                    with self.subTest(case=case, container=label):
                        tensor = make(shape)
                        returned = initializer(tensor, **call_keywords(case, dtype, fans, explicit_stream),
                                               **extra)
                        self.assertIs(returned, tensor)
                        self.assertEqual(bits(tensor), expected, f"{case} as {label} differs from the CLI")
                        checked += 1
        self.assertEqual(checked, len(CASES) * sum(len(CONTAINERS[d]) for d in DTYPES))

    def test_fill_function_equals_initializer_call(self):
        for case, shape, _, initializer, fans, explicit_stream in CASES:
            for dtype in ("f32", "bf16"):
                with self.subTest(case=case, dtype=dtype):
                    tensor = torch.empty(shape, dtype=torch.float32 if dtype == "f32" else torch.bfloat16)
                    keywords = call_keywords(case, dtype, fans, explicit_stream)
                    name = keywords.pop("name", None)
                    seed = keywords.pop("seed")
                    self.assertIs(shardinit.fill_(tensor, shape, initializer, seed, name, **keywords), tensor)
                    self.assertEqual(bits(tensor), CLI_TENSORS[tensor_name(case, dtype)][2])

    def test_threads_do_not_change_values(self):
        initializer = init.trunc_normal_(std=0.02)
        one = np.empty((257, 1031), np.float32)
        four = np.empty((257, 1031), np.float32)
        initializer(one, seed=7, name="big", threads=1)
        initializer(four, seed=7, name="big", threads=4)
        self.assertEqual(one.tobytes(), four.tobytes())

    def test_concurrent_python_threads(self):
        # The GIL is released during the fill: two threads filling at once get the serial result.
        initializer = init.normal_(std=0.5)
        expected = np.empty((512, 512), np.float64)
        initializer(expected, seed=3, name="t")
        results = [np.empty((512, 512), np.float64) for _ in range(4)]
        threads = [threading.Thread(target=initializer, args=(r,), kwargs={"seed": 3, "name": "t"}) for r in results]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in results:
            self.assertEqual(r.tobytes(), expected.tobytes())

    def test_versions_and_streams(self):
        cli = os.environ["SHARDINIT_CLI"]
        version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
        self.assertIn(shardinit.__version__, version)
        self.assertIn(shardinit.STREAM_FORMAT_VERSION, version)
        self.assertEqual(CLI_TENSORS["__metadata__"]["shardinit.stream_format"], shardinit.STREAM_FORMAT_VERSION)

        def fnv1a(text: str) -> int:
            h = 0xCBF29CE484222325
            for byte in text.encode():
                h = ((h ^ byte) * 0x100000001B3) % 2**64
            return h
        for name in ("fc1.weight", "", "ünïcode.bias"):
            self.assertEqual(shardinit.stream_from_name(name), fnv1a(name))
        # name= and the same stream= give the same values.
        by_name = np.empty((5, 7), np.float32)
        by_stream = np.empty((5, 7), np.float32)
        init.normal_()(by_name, seed=1, name="w")
        init.normal_()(by_stream, seed=1, stream=shardinit.stream_from_name("w"))
        self.assertEqual(by_name.tobytes(), by_stream.tobytes())

    def test_repr_round_trips(self):
        for _, _, _, initializer, _, _ in CASES:
            again = eval(repr(initializer), {"shardinit": shardinit})  # noqa: S307 (our own repr)
            self.assertEqual(repr(again), repr(initializer))
        # The parameters are Colossal-AI's, computed in the same order (colossalai.nn.init.kaiming_uniform_).
        a, fan = math.sqrt(5), 64
        std = math.sqrt(2.0 / (1 + a ** 2)) / math.sqrt(fan)
        bound = math.sqrt(3.0) * std
        self.assertEqual(init.kaiming_uniform_(a=a).distribution(fan_in=fan), f"uniform(a={-bound!r}, b={bound!r})")

    def test_zero_element_tensor_is_a_no_op(self):
        init.kaiming_uniform_()(np.empty((0, 5), np.float32), seed=1, name="empty")
        init.normal_()(torch.empty(0, dtype=torch.bfloat16), seed=1, name="empty")
        with self.assertRaisesRegex(ValueError, "std=-1"):  # its parameters are still checked
            init.normal_(std=-1.0)(np.empty((0,), np.float32), seed=1, name="empty")


class ShardsMatchWhole(unittest.TestCase):
    def test_boxes_stitch_to_the_whole(self):
        for case, shape, _, initializer, fans, explicit_stream in CASES:
            for dtype, label in (("f32", "numpy"), ("bf16", "torch"), ("f16", "numpy")):
                with self.subTest(case=case, dtype=dtype):
                    keywords = call_keywords(case, dtype, fans, explicit_stream)
                    whole = np.frombuffer(CLI_TENSORS[tensor_name(case, dtype)][2], NUMPY_VIEW[dtype]).reshape(shape)
                    stitched = np.zeros(shape, NUMPY_VIEW[dtype])
                    covered = np.zeros(shape, bool)
                    for box in itertools.product(*(pieces(n) for n in shape)):
                        start = tuple(b[0] for b in box)
                        extent = tuple(b[1] for b in box)
                        if label == "torch":
                            piece = torch.empty(extent, dtype=torch.bfloat16)
                        else:
                            piece = np.empty(extent, NUMPY_VIEW[dtype])
                        initializer(piece, global_shape=shape, box=(start, extent), **keywords)
                        region = tuple(slice(s, s + e) for s, e in zip(start, extent))
                        stitched[region] = as_numpy(piece, dtype)
                        covered[region] = True
                    self.assertTrue(covered.all())
                    self.assertEqual(stitched.tobytes(), whole.tobytes())

    def check_layout(self, shape, initializer, dtype, world, fill_keywords, whole, **fans):
        stitched = np.zeros(shape, NUMPY_VIEW[dtype])
        covered = np.zeros(shape, bool)
        torch_dtype = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}[dtype]
        for rank in range(world):
            start, extent = shardinit.local_box(shape, fill_keywords["layout"], fill_keywords.get("mesh"), rank,
                                                parallel=fill_keywords.get("parallel"))
            piece = torch.empty(extent, dtype=torch_dtype)
            shardinit.fill_(piece, shape, initializer, SEED, "layout.t", rank=rank, **fill_keywords, **fans)
            region = tuple(slice(s, s + e) for s, e in zip(start, extent))
            mine = as_numpy(piece, dtype)
            # Replicas hold identical pieces: whatever another rank wrote there must be the same.
            np.testing.assert_array_equal(stitched[region][covered[region]], mine[covered[region]])
            self.assertEqual(mine.tobytes(), np.ascontiguousarray(whole[region]).tobytes(),
                             f"rank {rank} of {fill_keywords}")
            stitched[region] = mine
            covered[region] = True
        self.assertTrue(covered.all(), f"{fill_keywords} leaves elements to nobody")

    def test_custom_layouts(self):
        initializer = init.kaiming_uniform_(a=math.sqrt(5))
        for shape, mesh, layout in [
            ((48, 36), [2, 3], {0: [0], 1: [1]}),
            ((48, 36), [2, 3], {1: [1, 0]}),
            ((48, 36), [2, 3], {0: [1]}),                    # replicated over mesh axis 0
            ((48, 36), [2, 3], {"shard": {"0": [0, 1]}}),    # the manifest's spelling
            ((7, 5), [2, 3], {0: [0, 1]}),                   # uneven: ranks 4 and 5 hold nothing
            ((6, 5, 4), [2, 2, 2], {0: [2], 1: [0], 2: 1}),
            ((48, 36), [4], "replicate"),
        ]:
            for dtype in ("f32", "bf16"):
                with self.subTest(shape=shape, mesh=mesh, layout=layout, dtype=dtype):
                    whole = whole_fill(initializer, shape, dtype, seed=SEED, name="layout.t")
                    self.check_layout(shape, initializer, dtype, math.prod(mesh),
                                      {"layout": layout, "mesh": mesh}, whole)

    def test_colossal_presets(self):
        weight = init.kaiming_uniform_(a=math.sqrt(5))
        bias = init.xavier_uniform_(a=1.0, scale=1.0)
        layernorm = init.ones_()
        one_d = {"mode": "1d", "size": 4}
        two_d = {"mode": "2d", "size": 4}
        two_p5_d = {"mode": "2.5d", "size": 8, "depth": 2}
        three_d = {"mode": "3d", "size": 8}
        cases = [
            # (parallel, preset, shape, initializer, fans, fans of the whole tensor)
            (one_d, "linear_col", (48, 36), weight, {}, {}),
            (one_d, "linear_row", (48, 36), weight, {}, {}),
            (one_d, "linear_col_bias", (48,), bias, {"fan_in": 36}, {"fan_in": 36}),
            (one_d, "linear_row_bias", (48,), bias, {"fan_in": 36}, {"fan_in": 36}),
            (one_d, "vocab_embedding", (64, 12), init.normal_(std=0.02), {}, {}),
            (one_d, "embedding", (64, 12), init.normal_(std=0.02), {}, {}),
            # (in, out) weights: fans default to (shape[0], shape[1]), as Colossal-AI passes them.
            (two_d, "linear", (48, 36), weight, {}, {"fan_in": 48, "fan_out": 36}),
            (two_d, "linear_bias", (36,), bias, {"fan_in": 48}, {"fan_in": 48}),
            (two_d, "layernorm", (36,), layernorm, {}, {}),
            (two_p5_d, "linear", (48, 36), weight, {}, {"fan_in": 48, "fan_out": 36}),
            (two_p5_d, "linear_bias", (36,), bias, {"fan_in": 48}, {"fan_in": 48}),
            (three_d, "linear", (48, 36), init.xavier_normal_(), {}, {"fan_in": 48, "fan_out": 36}),
            (three_d, "linear_swapped", (48, 36), weight, {}, {"fan_in": 48, "fan_out": 36}),
            (three_d, "layernorm", (36,), layernorm, {}, {}),
        ]
        for parallel, preset, shape, initializer, fans, whole_fans in cases:
            world = math.prod(shardinit.colossal_mesh(parallel))
            self.assertEqual(world, parallel["size"])
            for dtype in ("f32", "bf16"):
                with self.subTest(parallel=parallel, preset=preset, dtype=dtype):
                    whole = whole_fill(initializer, shape, dtype, seed=SEED, name="layout.t", **whole_fans)
                    self.check_layout(shape, initializer, dtype, world, {"layout": preset, "parallel": parallel},
                                      whole, **fans)

    def test_2d_presets_match_the_cli(self):
        parallel = {"tensor": {"mode": "2d", "size": 4}}  # the manifest's spelling is accepted too
        for name, shape, initializer, dtype, preset, fans in [
            ("tp2d.weight", (48, 36), init.kaiming_uniform_(a=math.sqrt(5)), "bf16", "linear", {}),
            ("tp2d.bias", (36,), init.xavier_uniform_(a=1.0, scale=1.0), "f32", "linear_bias", {"fan_in": 48}),
        ]:
            expected = np.frombuffer(CLI_2D[name][2], NUMPY_VIEW[dtype]).reshape(shape)
            stitched = np.zeros(shape, NUMPY_VIEW[dtype])
            for rank in range(4):
                start, extent = shardinit.local_box(shape, preset, rank=rank, parallel=parallel)
                piece = torch.empty(extent, dtype=torch.bfloat16 if dtype == "bf16" else torch.float32)
                shardinit.fill_(piece, shape, initializer, SEED, name, layout=preset, parallel=parallel, rank=rank,
                                **fans)
                stitched[tuple(slice(s, s + e) for s, e in zip(start, extent))] = as_numpy(piece, dtype)
            self.assertEqual(stitched.tobytes(), expected.tobytes(), name)
        # The fan rule matters: PyTorch's reading of (48, 36) as (out, in) gives other values.
        plain = whole_fill(init.kaiming_uniform_(a=math.sqrt(5)), (48, 36), "bf16", seed=SEED, name="tp2d.weight")
        self.assertNotEqual(plain.tobytes(), CLI_2D["tp2d.weight"][2])

    def test_local_box_examples(self):
        # docs/layouts.md: P = 2, a (4, 6) weight.
        one_d = {"mode": "1d", "size": 2}
        self.assertEqual(shardinit.local_box((4, 6), "linear_col", rank=1, parallel=one_d), ((2, 0), (2, 6)))
        self.assertEqual(shardinit.local_box((4, 6), "linear_row", rank=1, parallel=one_d), ((0, 3), (4, 3)))
        self.assertEqual(shardinit.local_box((4,), "linear_row_bias", rank=1, parallel=one_d), ((0,), (4,)))
        # torch.chunk: (5,) over 4 ranks is 2, 2, 1, 0.
        self.assertEqual([shardinit.local_box((5,), {0: [0]}, [4], r)[1] for r in range(4)], [(2,), (2,), (1,), (0,)])
        self.assertEqual(shardinit.colossal_mesh({"mode": "2.5d", "size": 8, "depth": 2}), [2, 2, 2])


class InPlace(unittest.TestCase):
    def test_numpy_same_memory_and_views_see_it(self):
        array = np.zeros((6, 4), np.float32)
        address = array.ctypes.data
        view = array[2:4]
        returned = init.normal_()(array, seed=5, name="inplace")
        self.assertIs(returned, array)
        self.assertEqual(array.ctypes.data, address)
        self.assertTrue(np.shares_memory(view, array))
        self.assertTrue((view != 0).all())
        np.testing.assert_array_equal(view, array[2:4])
        expected = whole_fill(init.normal_(), (6, 4), "f32", seed=5, name="inplace")
        self.assertEqual(array.tobytes(), expected.tobytes())

    def test_numpy_contiguous_sub_block(self):
        # A contiguous slice of a bigger array: exactly its memory is written, nothing around it.
        big = np.zeros((10, 6), np.float64)
        init.uniform_(-1.0, 1.0)(big[3:5], seed=5, name="sub", global_shape=(10, 6), box=((3, 0), (2, 6)))
        whole = whole_fill(init.uniform_(-1.0, 1.0), (10, 6), "f64", seed=5, name="sub")
        self.assertEqual(big[3:5].tobytes(), whole[3:5].tobytes())
        self.assertFalse(big[:3].any() or big[5:].any())

    def test_torch_same_memory_views_and_storage_offset(self):
        tensor = torch.zeros(10, 6, dtype=torch.bfloat16)
        address = tensor.data_ptr()
        row = tensor[4]
        init.normal_()(tensor[3:5], seed=5, name="sub", global_shape=(10, 6), box=((3, 0), (2, 6)))
        self.assertEqual(tensor.data_ptr(), address)
        whole = whole_fill(init.normal_(), (10, 6), "bf16", seed=5, name="sub")
        self.assertEqual(bits(tensor[3:5]), whole[3:5].tobytes())
        self.assertEqual(bits(row), whole[4].tobytes())  # a view made before the fill sees it
        self.assertFalse(tensor[:3].any() or tensor[5:].any())

    def test_exports_are_released(self):
        # DLPack: NumPy's export holds a reference to the array until the consumer calls the deleter.
        array = np.zeros((4, 4), np.float32)
        references = sys.getrefcount(array)
        for _ in range(50):
            init.normal_()(array, seed=1, name="released")
        self.assertEqual(sys.getrefcount(array), references)
        # The buffer protocol (array.array has no __dlpack__): an unreleased export forbids resizing.
        import array as array_module
        floats = array_module.array("f", [0.0] * 12)
        init.uniform_()(floats, seed=1, name="buffer")
        expected = whole_fill(init.uniform_(), (12,), "f32", seed=1, name="buffer")
        self.assertEqual(floats.tobytes(), expected.tobytes())
        floats.append(1.0)  # BufferError if the fill had kept its export
        # After a refusal too (DLPack refused, then the buffer protocol was asked).
        read_only = np.zeros(3, np.float32)
        read_only.flags.writeable = False
        references = sys.getrefcount(read_only)
        for _ in range(20):
            with self.assertRaises(ValueError):
                init.ones_()(read_only, name="w")
        self.assertEqual(sys.getrefcount(read_only), references)

    def test_torch_parameter_requiring_grad(self):
        linear = torch.nn.Linear(36, 48)
        weight = linear.weight
        address = weight.data_ptr()
        returned = init.kaiming_uniform_(a=math.sqrt(5))(weight, seed=SEED, name="kaiming_uniform_linear.f32")
        self.assertIs(returned, weight)
        self.assertTrue(weight.requires_grad)
        self.assertEqual(weight.data_ptr(), address)
        self.assertEqual(bits(weight.detach()), CLI_TENSORS["kaiming_uniform_linear.f32"][2])


class Errors(unittest.TestCase):
    initializer = init.normal_(std=0.02)

    def fails(self, exception, fragments, tensor, **keywords):
        keywords.setdefault("name", "w")
        with self.assertRaises(exception) as caught:
            self.initializer(tensor, **keywords)
        message = str(caught.exception)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_unsupported_dtypes(self):
        self.fails(TypeError, ["unsupported dtype int32", "tensor 'w'"], np.zeros((3, 4), np.int32))
        self.fails(TypeError, ["unsupported dtype torch.int32"], torch.zeros(3, 4, dtype=torch.int32))
        self.fails(TypeError, ["unsupported dtype complex64"], np.zeros(3, np.complex64))
        self.fails(TypeError, ["unsupported dtype >f4"], np.zeros(3, ">f4"))
        self.fails(TypeError, ["uint16", "dtype='bf16'"], np.zeros(3, np.uint16))
        self.fails(TypeError, ["dtype='f64' does not match", "float32"], np.zeros(3, np.float32), dtype="f64")
        self.fails(TypeError, ["dtype='bf16' does not match", "torch.float16"], torch.zeros(3, dtype=torch.float16),
                   dtype="bf16")
        self.fails(ValueError, ["dtype must be", "'int8'"], np.zeros(3, np.float32), dtype="int8")

    def test_not_contiguous(self):
        for tensor in (np.zeros((3, 4), np.float32).T, np.zeros((8, 4), np.float32)[::2],
                       torch.zeros(3, 4).t(), torch.zeros(4, 8, dtype=torch.bfloat16)[:, ::2]):
            with self.subTest(tensor=type(tensor).__name__):
                self.fails(ValueError, ["not contiguous", "strides", "tensor 'w'"], tensor)

    def test_read_only_array(self):
        array = np.zeros((3, 4), np.float32)
        array.flags.writeable = False
        self.fails(ValueError, ["read-only", "writeable"], array)
        self.assertFalse(array.any())

    def test_a_copy_of_a_bytes_header_is_not_a_bytes_object(self):
        """Memory that merely holds what looks like a small bytes object's header (stale data in a
        reused allocation, here written on purpose into an ordinary tensor) is not refused: a small
        bytes object lives in a pymalloc pool, and this memory is not one (a fill of a torch tensor
        made after pickling failed this way before the pool check)."""
        import struct
        backing = torch.zeros(4096, dtype=torch.uint8)
        header = struct.pack("<qQqq", 1, id(bytes), 100, -1)  # refcount, type, length, hash
        backing[64:96] = torch.frombuffer(bytearray(header), dtype=torch.uint8)
        backing[96 + 100] = 0  # the NUL after the contents
        target = backing[128:192].view(torch.float32)  # inside the pretended contents [96, 196)
        self.initializer(target, name="w")
        self.assertTrue(bool(target.ne(0).any()))

    def test_memory_that_must_not_be_written(self):
        """Exporters that do not say their memory is read-only: tensors over bytes objects (torch only
        warns), and over read-only mappings (a write would be SIGSEGV). Each refused, nothing changed."""
        import mmap
        import warnings
        warnings.simplefilter("ignore", UserWarning)  # torch: "The given buffer is not writable"
        # pymalloc block, glibc heap chunk, its own mapping. Without pymalloc (PYTHONMALLOC=malloc or
        # malloc_debug) small bytes objects are not detected (docs/python.md).
        pools = os.environ.get("PYTHONMALLOC", "") not in ("malloc", "malloc_debug")
        for size in (64, 300 << 10, 8 << 20) if pools else (300 << 10, 8 << 20):
            data = bytes(size)
            tensors = {
                "torch.frombuffer(bytes)": torch.frombuffer(data, dtype=torch.float32),
                "torch.frombuffer(memoryview(bytes))": torch.frombuffer(memoryview(data), dtype=torch.float32),
                "torch.frombuffer(bytes, offset=32)": torch.frombuffer(data, dtype=torch.float32, offset=32, count=8),
                "torch.from_numpy(np.frombuffer(bytes))": torch.from_numpy(np.frombuffer(data, dtype=np.float32)),
            }
            for label, tensor in tensors.items():
                with self.subTest(size=size, tensor=label):
                    self.fails(ValueError, ["immutable bytes object", "tensor 'w'"], tensor)
            self.assertEqual(data, bytes(size), "a refused fill must leave the bytes alone")
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "zeros.bin")
            with open(path, "wb") as f:
                f.write(bytes(1 << 16))
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 1 << 16, access=mmap.ACCESS_READ) as mapped:
                self.fails(ValueError, ["read-only", "mapped without write permission"],
                           torch.frombuffer(mapped, dtype=torch.float32))
            self.fails(ValueError, ["read-only", "mapped without write permission"],
                       torch.from_numpy(np.memmap(path, dtype=np.float32, mode="r")))
            # Writable ones are filled: a bytearray, a copy-on-write or read-write mapping.
            self.initializer(torch.frombuffer(bytearray(256), dtype=torch.float32), name="w")
            self.initializer(np.memmap(path, dtype=np.float32, mode="c"), name="w")
            self.initializer(np.memmap(path, dtype=np.float32, mode="r+"), name="w")

    def test_shapes_and_boxes(self):
        self.fails(ValueError, ["shape (3, 6) does not equal the box extent (2, 6)"], np.zeros((3, 6), np.float32),
                   global_shape=(4, 6), box=((0, 0), (2, 6)))
        self.fails(ValueError, ["shape (2, 6) does not equal global_shape (4, 6)"], np.zeros((2, 6), np.float32),
                   global_shape=(4, 6))
        self.fails(ValueError, ["not inside global_shape (4, 6)", "dimension 0"], np.zeros((2, 6), np.float32),
                   global_shape=(4, 6), box=((3, 0), (2, 6)))
        self.fails(ValueError, ["box= needs global_shape="], np.zeros((2, 6), np.float32), box=((0, 0), (2, 6)))
        self.fails(ValueError, ["global_shape[1] must be a non-negative integer"], np.zeros((2, 6), np.float32),
                   global_shape=(4, -6))

    def test_name_seed_stream_fans(self):
        with self.assertRaisesRegex(ValueError, "name is required"):
            self.initializer(np.zeros(3, np.float32))
        self.fails(ValueError, ["seed must be an integer in [0, 2**64), got -1"], np.zeros(3, np.float32), seed=-1)
        self.fails(ValueError, ["stream must be an integer in [0, 2**64)"], np.zeros(3, np.float32), stream=2**64)
        self.fails(TypeError, ["seed must be", "1.5"], np.zeros(3, np.float32), seed=1.5)
        with self.assertRaisesRegex(ValueError, "fan_in"):
            init.kaiming_uniform_()(np.zeros(5, np.float32), name="bias")
        with self.assertRaisesRegex(ValueError, "fan_in must be a positive integer, got 0"):
            init.kaiming_uniform_()(np.zeros(5, np.float32), 0, name="bias")

    def test_bad_parameters(self):
        with self.assertRaisesRegex(ValueError, "unknown mode"):
            init.kaiming_uniform_(mode="fan_middle")
        with self.assertRaisesRegex(ValueError, "nonlinearity"):
            init.kaiming_normal_(nonlinearity="swish")
        with self.assertRaisesRegex(ValueError, "tensor 'w': normal: std=-1"):
            init.normal_(std=-1.0)(np.zeros(3, np.float32), name="w")
        with self.assertRaisesRegex(ValueError, "f16"):  # not finite in float16
            init.uniform_(0.0, 1e5)(np.zeros(3, np.float16), name="w")

    def test_not_a_tensor_or_not_on_the_cpu(self):
        self.fails(TypeError, ["expected a NumPy array or a PyTorch CPU tensor", "list"], [1.0, 2.0])
        self.fails(ValueError, ["device 'meta'", "CPU"], torch.zeros(3, device="meta"))
        if torch.cuda.is_available():
            self.fails(ValueError, ["device 'cuda:0'"], torch.zeros(3, device="cuda"))

    def test_bad_layouts(self):
        def fill(**keywords):
            shardinit.fill_(np.zeros((2, 6), np.float32), (4, 6), self.initializer, 0, "w", **keywords)
        for keywords, exception, fragment in [
            ({"layout": {2: [0]}, "mesh": [2], "rank": 0}, ValueError, "layout key 2 is not a dimension of shape (4, 6)"),
            ({"layout": {0: [1]}, "mesh": [2], "rank": 0}, ValueError, "mesh axis 1 does not exist"),
            ({"layout": {0: [0], 1: [0]}, "mesh": [2], "rank": 0}, ValueError, "mesh axis 0 is used twice"),
            ({"layout": "linear_col", "mesh": [2], "rank": 0}, ValueError, "needs the tensor-parallel topology"),
            ({"layout": "linear_cool", "parallel": {"mode": "1d", "size": 2}, "rank": 0}, ValueError,
             "unknown layout \"linear_cool\""),
            ({"layout": {0: [0]}, "mesh": [2], "rank": 2}, ValueError, "rank 2 is outside the mesh [2]"),
            ({"layout": {0: [0]}, "mesh": [2]}, ValueError, "rank= is required"),
            ({"layout": {0: [0]}, "rank": 0}, ValueError, "needs the process mesh"),
            ({"layout": [0], "mesh": [2], "rank": 0}, TypeError, "layout must be a dict"),
            ({"layout": "linear_col", "parallel": {"mode": "2d", "size": 3}, "rank": 0}, ValueError, "square"),
            ({"layout": "linear_col", "parallel": {"mode": "1d", "size": 2, "colour": 1}, "rank": 0}, ValueError,
             "parallel.tensor: unknown key \"colour\""),
            ({"layout": {0: [0]}, "mesh": [4], "rank": 0}, ValueError, "shape (2, 6) is not this rank's box (1, 6)"),
            ({"layout": {0: [0]}, "mesh": [2], "rank": 0, "box": ((0, 0), (2, 6))}, ValueError, "not both"),
        ]:
            with self.subTest(keywords=keywords):
                with self.assertRaises(exception) as caught:
                    fill(**keywords)
                self.assertIn(fragment, str(caught.exception))


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        SCRATCH.cleanup()
