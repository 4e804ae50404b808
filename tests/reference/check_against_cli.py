#!/usr/bin/python3
"""Checks the shardinit CLI bit for bit against the independent NumPy reimplementation of
docs/stream-format.md (stream_format_v1.py).

Usage: check_against_cli.py SHARDINIT_BINARY SCRATCH_DIR

Writes a manifest covering every dtype x distribution / initializer of interest, runs
`shardinit init MANIFEST -o OUT`, parses the safetensors file itself, recomputes every tensor and
compares the stored bits. Exit 0 when everything matches, 1 on any mismatch, 2 on usage errors.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import stream_format_v1 as ref  # noqa: E402

SEED = 0x5EED0123456789AB  # both key words non-zero
ST_DTYPE = {"f32": "F32", "f64": "F64", "bf16": "BF16", "f16": "F16"}
BITS_VIEW = {"f32": np.dtype("<u4"), "f64": np.dtype("<u8"), "bf16": np.dtype("<u2"), "f16": np.dtype("<u2")}

# (case name, shape, init object, extra tensor keys)
CASES = [
    ("zeros", [7, 3], {"fn": "zeros"}, {}),
    ("ones", [5], {"fn": "ones"}, {}),
    ("uniform", [123, 77], {"fn": "uniform", "a": -0.3, "b": 0.7}, {}),
    ("uniform_default", [1001], {"fn": "uniform"}, {}),
    # odd sizes: the last Box-Muller pair of each tensor straddles the end of the shape
    ("normal", [101, 99], {"fn": "normal", "mean": 0.1, "std": 2.0}, {}),
    ("normal_odd", [3, 5, 7], {"fn": "normal"}, {}),
    ("normal_small_std", [2, 1001], {"fn": "normal", "std": 0.02}, {}),
    ("trunc_normal_default", [4099], {"fn": "trunc_normal"}, {}),
    ("trunc_normal_far_tail", [2047], {"fn": "trunc_normal", "mean": 0, "std": 1, "a": 6, "b": 8}, {}),
    ("trunc_normal_very_far_tail", [1031], {"fn": "trunc_normal", "mean": 0, "std": 1, "a": 40, "b": 41}, {}),
    ("trunc_normal_lower_far_tail", [1029], {"fn": "trunc_normal", "mean": 0, "std": 1, "a": -41, "b": -40}, {}),
    ("trunc_normal_tiny_std", [5003], {"fn": "trunc_normal", "mean": 0, "std": 0.002, "a": -2, "b": 2}, {}),
    # mean outside [a, b]: central method with beta <= 0, central with alpha >= 0, far lower tail
    ("trunc_normal_mean_above", [1001], {"fn": "trunc_normal", "mean": 3, "std": 1, "a": -1, "b": 1}, {}),
    ("trunc_normal_mean_below", [1003], {"fn": "trunc_normal", "mean": -1.5, "std": 1, "a": 0, "b": 3}, {}),
    ("trunc_normal_mean_far_above", [1005], {"fn": "trunc_normal", "mean": 10, "std": 1, "a": 0, "b": 1}, {}),
    ("trunc_normal_shifted", [999], {"fn": "trunc_normal", "mean": 0.25, "std": 0.5, "a": -0.5, "b": 1.75}, {}),
    ("kaiming_uniform", [96, 80], {"fn": "kaiming_uniform", "a": math.sqrt(5), "mode": "fan_in",
                                   "nonlinearity": "leaky_relu"}, {}),
    ("kaiming_normal", [64, 33, 3], {"fn": "kaiming_normal", "mode": "fan_in", "nonlinearity": "relu"}, {}),
    ("kaiming_normal_fan_out", [31, 17], {"fn": "kaiming_normal", "mode": "fan_out", "nonlinearity": "tanh"}, {}),
    ("xavier_uniform", [50, 70], {"fn": "xavier_uniform"}, {}),
    ("xavier_uniform_bias", [768], {"fn": "xavier_uniform", "a": 1, "scale": 1}, {"fan_in": 768}),
    ("xavier_normal", [70, 50], {"fn": "xavier_normal"}, {}),
    ("lecun_uniform", [40, 60], {"fn": "lecun_uniform"}, {}),
    ("lecun_normal", [30, 45], {"fn": "lecun_normal"}, {}),
    ("lecun_normal_bias", [77], {"fn": "lecun_normal"}, {"fan_in": 3}),
    ("constant", [9], {"fn": "constant", "val": 1e-8}, {}),
    ("scalar_normal", [], {"fn": "normal", "mean": 1, "std": 3}, {}),
    ("empty_uniform", [0, 5], {"fn": "uniform"}, {}),
    # edge cases of sections 5.2 - 5.4
    ("uniform_a_eq_b", [9], {"fn": "uniform", "a": 0.25, "b": 0.25}, {}),
    ("uniform_no_f32_inside", [257], {"fn": "uniform", "a": 0.1, "b": 0.10000000000000003}, {}),
    ("uniform_neg_zero", [257], {"fn": "uniform", "a": -0.0, "b": 1e-30}, {}),
    ("uniform_huge", [1001], {"fn": "uniform", "a": -3.0e38, "b": 3.0e38}, {"skip": ("f16",)}),
    ("normal_std0", [9], {"fn": "normal", "mean": 0.3, "std": 0}, {}),
    ("normal_neg_zero_mean", [1001], {"fn": "normal", "mean": -0.0, "std": 1}, {}),
    ("trunc_normal_no_f32_inside", [257], {"fn": "trunc_normal", "mean": 0.1, "std": 1, "a": 0.1,
                                           "b": 0.10000000000000003}, {}),
    ("trunc_normal_alpha_8", [1001], {"fn": "trunc_normal", "a": 8, "b": 9}, {}),
    ("trunc_normal_beta_minus_8", [1001], {"fn": "trunc_normal", "a": -9, "b": -8}, {}),
    ("trunc_normal_just_below_8", [1001], {"fn": "trunc_normal", "a": 7.999, "b": 8.0}, {}),
    ("trunc_normal_narrow_far", [1001], {"fn": "trunc_normal", "a": 40, "b": 40.000001}, {}),
    ("trunc_normal_1000", [1001], {"fn": "trunc_normal", "a": 1000, "b": 1001}, {}),
    # narrow method (span <= 1/16): around 0, near the centre, in a tail, at the boundary of the
    # rule, and one just past it (central)
    ("trunc_normal_narrow_zero", [1001], {"fn": "trunc_normal", "a": -1e-5, "b": 1e-5}, {}),
    ("trunc_normal_narrow_centre", [1003], {"fn": "trunc_normal", "a": 0.5, "b": 0.5001}, {}),
    ("trunc_normal_narrow_tail", [1005], {"fn": "trunc_normal", "mean": 1, "std": 2, "a": -13, "b": -12.99}, {}),
    ("trunc_normal_narrow_straddle", [1007], {"fn": "trunc_normal", "a": -0.35, "b": 0.49}, {}),
    ("trunc_normal_narrow_edge", [1009], {"fn": "trunc_normal", "a": 0.0, "b": 0.3535533905932738}, {}),
    ("trunc_normal_just_not_narrow", [1011], {"fn": "trunc_normal", "a": 0.0, "b": 0.36}, {}),
    ("trunc_normal_wide", [1001], {"fn": "trunc_normal", "a": -100, "b": 100}, {}),
    ("trunc_normal_zero_lo", [1001], {"fn": "trunc_normal", "mean": -0.0, "std": 1, "a": 0, "b": 1}, {}),
    ("trunc_normal_mean_1e6", [1001], {"fn": "trunc_normal", "mean": 1e6, "std": 1, "a": 0, "b": 1}, {}),
]
EXPLICIT_STREAMS = {"f32": 0, "f64": 2**64 - 59, "bf16": 0x0123456789ABCDEF, "f16": 2**32 + 7}


def build_manifest():
    tensors = []
    for dtype in ref.DTYPES:
        for case, shape, init, extra in CASES:
            extra = dict(extra)
            if dtype in extra.pop("skip", ()):
                continue  # parameters the CLI rightly rejects for this dtype (not finite in it)
            t = {"name": f"{dtype}.{case}", "shape": shape, "dtype": dtype, "init": init}
            t.update(extra)
            tensors.append(t)
        tensors.append({"name": f"{dtype}.explicit_stream", "shape": [33, 31], "dtype": dtype,
                        "init": {"fn": "normal", "mean": -0.5, "std": 0.75},
                        "stream": EXPLICIT_STREAMS[dtype]})
    return {"seed": SEED, "tensors": tensors}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    body = data[8 + header_len:]
    return header, body


def expected_bits(tensor):
    shape = tensor["shape"]
    n = 1
    for d in shape:
        n *= d
    stream = tensor.get("stream", ref.stream_from_name(tensor["name"]))
    fan_in, fan_out = ref.fans_from_shape(shape)
    fan_in = tensor.get("fan_in", fan_in)
    fan_out = tensor.get("fan_out", fan_out)
    init = dict(tensor["init"])
    fn = init.pop("fn")
    dist = ref.distribution_from_initializer(fn, init, fan_in, fan_out)
    return ref.generate(SEED, stream, tensor["dtype"], dist, n), dist, stream


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    cli, scratch = argv[1], argv[2]
    start = time.monotonic()
    os.makedirs(scratch, exist_ok=True)

    kat = os.path.join(HERE, "..", "data", "philox_kat_vectors.txt")
    n_kat = ref.self_test(kat if os.path.exists(kat) else None)

    manifest = build_manifest()
    manifest_path = os.path.join(scratch, "reference_manifest.json")
    out_path = os.path.join(scratch, "reference_out.safetensors")
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    proc = subprocess.run([cli, "init", manifest_path, "-o", out_path, "--force", "--quiet"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"FAIL: shardinit init exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return 1

    header, body = read_safetensors(out_path)
    failures = 0
    meta = header.get("__metadata__", {})
    if meta.get("shardinit.stream_format") != ref.STREAM_FORMAT:
        print(f"FAIL: __metadata__['shardinit.stream_format'] = {meta.get('shardinit.stream_format')!r}, "
              f"expected {ref.STREAM_FORMAT!r}")
        failures += 1
    spec_streams = {}
    if "shardinit.spec" in meta:
        try:
            spec_streams = {t["name"]: t["stream"] for t in json.loads(meta["shardinit.spec"])["tensors"]}
        except (ValueError, KeyError, TypeError):
            spec_streams = {}

    n_elements = 0
    for tensor in manifest["tensors"]:
        name, dtype = tensor["name"], tensor["dtype"]
        entry = header.get(name)
        if entry is None:
            print(f"FAIL: tensor {name} missing from the file")
            failures += 1
            continue
        if entry["dtype"] != ST_DTYPE[dtype] or entry["shape"] != tensor["shape"]:
            print(f"FAIL: tensor {name}: header dtype/shape {entry['dtype']} {entry['shape']}, "
                  f"expected {ST_DTYPE[dtype]} {tensor['shape']}")
            failures += 1
            continue
        begin, end = entry["data_offsets"]
        found = np.frombuffer(body[begin:end], dtype=BITS_VIEW[dtype]).astype(BITS_VIEW[dtype].newbyteorder("="))
        expected, dist, stream = expected_bits(tensor)
        if name in spec_streams and spec_streams[name] != stream:
            print(f"FAIL: tensor {name}: stream {spec_streams[name]} in the file's spec, expected {stream}")
            failures += 1
        if found.shape != expected.shape:
            print(f"FAIL: tensor {name}: {found.size} elements in the file, expected {expected.size}")
            failures += 1
            continue
        n_elements += found.size
        bad = np.nonzero(found != expected.astype(found.dtype))[0]
        if bad.size:
            failures += 1
            width = found.dtype.itemsize * 2
            print(f"FAIL: tensor {name} ({dtype}, {dist}): {bad.size} of {found.size} elements differ")
            for i in bad[:5]:
                print(f"  index {i}: expected 0x{int(expected[i]):0{width}x}, found 0x{int(found[i]):0{width}x}")
    elapsed = time.monotonic() - start
    if failures:
        print(f"reference.stream_format_v1: FAILED ({failures} problem(s)); {len(manifest['tensors'])} tensors, "
              f"{elapsed:.1f} s")
        return 1
    print(f"reference.stream_format_v1: OK: {len(manifest['tensors'])} tensors, {n_elements} elements match bit "
          f"for bit ({n_kat} Philox KAT vectors; {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
