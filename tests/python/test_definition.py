#!/usr/bin/python3
"""The manifest's keys and fill_'s keywords resolve to the same definition: for every initializer
and every Colossal-AI preset of every mode (and the keys of a whole job: fans, fan conventions,
padding rows, experts, data partitions, stages), shardinit.resolve(...) with keywords equals
shardinit.resolve_manifest(...) of the same tensor written as JSON. Both go through the library's one
resolve(); this test fails if either parser drifts (a keyword dropped, a default that differs).

Exits 77 (CTest SKIP) when NumPy cannot be imported (the module needs it).
"""

from __future__ import annotations

import json
import math
import sys
import unittest

try:
    import numpy  # noqa: F401
except ImportError as error:
    print(f"SKIP: {sys.executable} cannot import NumPy ({error})", flush=True)
    sys.exit(77)

import shardinit  # noqa: E402
from shardinit import init  # noqa: E402

# (manifest "init", the same initializer in Python): every kind, defaults and explicit parameters.
INITIALIZERS = [
    ({"fn": "zeros"}, init.zeros_()),
    ({"fn": "ones"}, init.ones_()),
    ({"fn": "constant", "val": 0.25}, init.constant_(0.25)),
    ({"fn": "uniform"}, init.uniform_()),
    ({"fn": "uniform", "a": -0.3, "b": 0.7}, init.uniform_(-0.3, 0.7)),
    ({"fn": "normal"}, init.normal_()),
    ({"fn": "normal", "mean": 0.1, "std": 0.02}, init.normal_(0.1, 0.02)),
    ({"fn": "trunc_normal", "std": 0.5, "a": -1, "b": 1.5}, init.trunc_normal_(0.0, 0.5, -1.0, 1.5)),
    ({"fn": "kaiming_uniform", "a": math.sqrt(5)}, init.kaiming_uniform_(a=math.sqrt(5))),
    ({"fn": "kaiming_uniform", "mode": "fan_out", "nonlinearity": "relu"}, init.kaiming_uniform_(mode="fan_out", nonlinearity="relu")),
    ({"fn": "kaiming_normal", "nonlinearity": "tanh"}, init.kaiming_normal_(nonlinearity="tanh")),
    ({"fn": "xavier_uniform"}, init.xavier_uniform_()),
    ({"fn": "xavier_uniform", "a": 1, "scale": 1}, init.xavier_uniform_(a=1.0, scale=1.0)),
    ({"fn": "xavier_normal", "scale": 1.5, "gain": 0.8}, init.xavier_normal_(scale=1.5, gain=0.8)),
    ({"fn": "lecun_uniform"}, init.lecun_uniform_()),
    ({"fn": "lecun_normal"}, init.lecun_normal_()),
]

MODES = [
    {"mode": "1d", "size": 2},
    {"mode": "2d", "size": 4},
    {"mode": "2.5d", "size": 8, "depth": 2},
    {"mode": "3d", "size": 8},
]

# A shape each preset accepts in every mode above (dimensions divisible by 4).
SHAPE_BY_PRESET_RANK = {1: [16], 2: [16, 8], 3: [1, 4, 16], 4: [16, 3, 2, 2]}
PRESET_RANK = {"patch_embedding": 4, "cls_token": 3, "pos_embed": 3}
ONE_D = {"linear_col_bias", "linear_row_bias", "linear_bias", "layernorm", "classifier_bias", "vocab_classifier_bias",
         "patch_embedding_bias", "linear_bias_swapped", "layernorm_swapped"}


def presets(mode: str) -> list[str]:
    names = {
        "1d": ["linear_col", "linear_col_bias", "linear_row", "linear_row_bias", "vocab_embedding", "embedding",
               "classifier", "classifier_bias", "vocab_classifier", "vocab_classifier_bias"],
        "2d": ["linear", "linear_bias", "layernorm", "embedding", "vocab_embedding", "classifier", "classifier_bias",
               "vocab_classifier", "vocab_classifier_bias", "patch_embedding", "patch_embedding_bias", "cls_token", "pos_embed"],
    }
    names["2.5d"] = names["2d"]
    names["3d"] = names["2d"] + ["linear_swapped", "linear_bias_swapped", "layernorm_swapped"]
    return names[mode] + ["replicate"]


def shape_of(preset: str) -> list[int]:
    return SHAPE_BY_PRESET_RANK[PRESET_RANK.get(preset, 1 if preset in ONE_D else 2)]


def from_manifest(parallel: dict, entry: dict) -> dict:
    return shardinit.resolve_manifest(json.dumps({"seed": 0, "parallel": parallel, "tensors": [entry]}))[0]


KEYWORD_OF_KEY = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_convention": "fan_convention", "padding_idx": "padding_idx",
                  "stream": "stream", "layout": "layout", "stage": "stage", "layer": "layer",
                  "data_partition": "data_partition", "expert": "expert", "dtype": "dtype", "fused": "fused"}


def from_keywords(parallel: dict, entry: dict, initializer) -> dict:
    keywords = {KEYWORD_OF_KEY[k]: v for k, v in entry.items() if k in KEYWORD_OF_KEY}
    if isinstance(keywords.get("layout"), dict):
        keywords["layout"] = keywords["layout"]["shard"]
    return shardinit.resolve(entry["shape"], initializer, entry["name"], parallel=parallel, world=None, **keywords)


class ManifestAndKeywordsAgree(unittest.TestCase):
    def check(self, parallel: dict, entry: dict, initializer):
        manifest = from_manifest(parallel, entry)
        keywords = from_keywords(parallel, entry, initializer)
        self.assertEqual(manifest, keywords, json.dumps(entry))
        return manifest

    def test_every_initializer_and_preset(self):
        checked = 0
        for mode in MODES:
            parallel = {"tensor": mode}
            for preset in presets(mode["mode"]):
                for spec, initializer in INITIALIZERS:
                    entry = {"name": f"{mode['mode']}.{preset}.{spec['fn']}", "shape": shape_of(preset), "init": spec,
                             "layout": preset}
                    if len(entry["shape"]) < 2:  # a bias: Colossal-AI passes the layer's fans
                        entry.update(fan_in=16, fan_out=8)
                    with self.subTest(mode=mode["mode"], preset=preset, init=spec):
                        got = self.check(parallel, entry, initializer)
                        checked += 1
                        if spec["fn"] == "kaiming_uniform" and preset in ("embedding", "vocab_embedding"):
                            # Colossal-AI's embeddings read fan_in = num_embeddings (16), not PyTorch's 8,
                            # and fan_out = embedding_dim (8), not 16.
                            fan_out_mode = spec.get("mode") == "fan_out"
                            self.assertEqual(got["fan_out" if fan_out_mode else "fan_in"], 8 if fan_out_mode else 16)
                            self.assertEqual(got["fan_convention"], "in_out")
        self.assertEqual(checked, 16 * (11 + 14 + 14 + 17))

    def test_the_other_keys(self):
        job = {"tensor": {"mode": "1d", "size": 2}, "data": 4, "expert": 2, "pipeline": {"size": 2, "layers": 4},
               "data_partition": "zero3"}
        entries = [
            {"name": "fans", "shape": [12, 6], "init": {"fn": "xavier_uniform"}, "fan_in": 7, "fan_out": 9, "stage": 0},
            {"name": "convention", "shape": [12, 6], "init": {"fn": "kaiming_normal"}, "fan_convention": "in_out", "stage": [0, 1]},
            {"name": "patch", "shape": [8, 3, 2, 2], "init": {"fn": "xavier_normal"}, "fan_convention": "patch", "layer": 3},
            {"name": "wte", "shape": [10, 4], "init": {"fn": "normal"}, "layout": "vocab_embedding", "padding_idx": -1, "stage": 0},
            {"name": "experts", "shape": [4, 6, 4], "init": {"fn": "lecun_normal"}, "expert": True, "layout": "linear_col",
             "layer": 1, "data_partition": "fsdp2"},
            {"name": "custom", "shape": [8, 6], "init": {"fn": "uniform"}, "layout": {"shard": {"0": ["tp"], "1": ["ep"]}},
             "stage": 1, "data_partition": "none"},
            {"name": "stream", "shape": [5], "init": {"fn": "normal"}, "stream": 12345, "stage": 1, "dtype": "bf16"},
            {"name": "whole", "shape": [6, 4], "init": {"fn": "normal"}, "expert": {"index": 3, "of": 4}, "layout": "linear_col",
             "layer": 2},
            {"name": "qkv", "shape": [4, 12], "init": {"fn": "normal"}, "layout": {"shard": {"1": ["tp"]}},
             "fused": {"dim": 1, "parts": 3}, "stage": 0},
        ]
        for entry in entries:
            with self.subTest(entry=entry["name"]):
                self.check(job, entry, {"xavier_uniform": init.xavier_uniform_(), "kaiming_normal": init.kaiming_normal_(),
                                        "xavier_normal": init.xavier_normal_(), "normal": init.normal_(),
                                        "lecun_normal": init.lecun_normal_(), "uniform": init.uniform_()}[entry["init"]["fn"]])

    def test_keywords_that_place_nothing(self):
        # As in a manifest without "parallel": replicate, no data partition, a stack of experts.
        for entry in [
            {"name": "r", "shape": [4, 6], "init": {"fn": "kaiming_uniform"}, "layout": "replicate"},
            {"name": "n", "shape": [4, 6], "init": {"fn": "kaiming_uniform"}, "data_partition": "none"},
            {"name": "e", "shape": [4, 6, 3], "init": {"fn": "kaiming_uniform"}, "expert": True},
        ]:
            with self.subTest(entry=entry["name"]):
                manifest = shardinit.resolve_manifest(json.dumps({"seed": 0, "tensors": [entry]}))[0]
                keywords = {k: v for k, v in entry.items() if k not in ("name", "shape", "init")}
                self.assertEqual(shardinit.resolve(entry["shape"], init.kaiming_uniform_(), entry["name"], **keywords), manifest)
        # The expert stack reads each expert's fans, whatever the expert-parallel size.
        self.assertEqual(shardinit.resolve([4, 6, 3], init.kaiming_uniform_(), "e", expert=True)["fan_in"], 3)
        # A NumPy integer is a stage, as it is a layer.
        self.assertEqual(shardinit.resolve([4], init.zeros_(), "s", parallel={"pipeline": 2}, stage=numpy.int64(1))["layout"],
                         shardinit.resolve([4], init.zeros_(), "s", parallel={"pipeline": 2}, stage=1)["layout"])

    def test_errors_are_the_same(self):
        # The same bad definition is refused by both, with the same reason.
        job = {"tensor": {"mode": "1d", "size": 2}, "pipeline": 2}
        for entry, reason in [
            ({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}}, "say which hold this tensor"),
            ({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "stage": 2}, "stage 2 does not exist"),
            ({"name": "w", "shape": [5, 4], "init": {"fn": "zeros"}, "stage": 0, "layout": "linear_col"}, "divide it evenly"),
            ({"name": "w", "shape": [], "init": {"fn": "zeros"}, "stage": 0, "expert": True}, "no expert dimension"),
            ({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "stage": [0, 1], "layout": {"shard": {"0": ["pp"]}}},
             "splits over the pipeline axis"),
            ({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "stage": 0, "padding_idx": 4}, "not a row"),
            ({"name": "w", "shape": [4, 4], "init": {"fn": "zeros"}, "stage": 0, "expert": {"index": 2, "of": 2}},
             "expert 2 does not exist: there are 2"),
        ]:
            with self.subTest(entry=entry):
                with self.assertRaises(ValueError) as manifest_error:
                    from_manifest(job, entry)
                with self.assertRaises(ValueError) as keyword_error:
                    from_keywords(job, entry, init.zeros_())
                self.assertIn(reason, str(manifest_error.exception))
                self.assertIn(reason, str(keyword_error.exception))


class FusedParts(unittest.TestCase):
    def test_fill_holds_each_parts_chunk_and_errors(self):
        # GPT-2's c_attn (4, 12) as q, k, v of 4 columns over tp 2: rank 1 holds columns 2-3 of each.
        whole = numpy.zeros((4, 12), dtype=numpy.float32)
        shardinit.fill_(whole, (4, 12), init.normal_(), 7, "qkv")
        local = numpy.zeros((4, 6), dtype=numpy.float32)
        shardinit.fill_(local, (4, 12), init.normal_(), 7, "qkv", layout={1: ["tp"]}, parallel={"mode": "1d", "size": 2}, rank=1,
                        fused={"dim": 1, "parts": 3})
        self.assertTrue(numpy.array_equal(local, numpy.concatenate([whole[:, 2:4], whole[:, 6:8], whole[:, 10:12]], axis=1)))
        # Without a placement the tensor is whole (fused changes nothing); box= cannot name a fused box.
        alone = numpy.zeros((4, 12), dtype=numpy.float32)
        shardinit.fill_(alone, (4, 12), init.normal_(), 7, "qkv", fused={"dim": 0, "parts": 2})
        self.assertTrue(numpy.array_equal(alone, whole))
        with self.assertRaises(ValueError) as caught:
            shardinit.fill_(numpy.zeros((2, 12), dtype=numpy.float32), (4, 12), init.normal_(), 7, "qkv", box=((0, 0), (2, 12)),
                            fused={"dim": 1, "parts": 3})
        self.assertIn("box= names a box of the tensor's own dimensions, which fused= splits", str(caught.exception))
        for bad, kind, reason in [({"dim": 1}, ValueError, "needs both 'dim' and 'parts'"),
                                  ({"dim": 1, "parts": 3, "k": 1}, ValueError, "unknown key 'k'"),
                                  ({"dim": 1, "parts": 0}, ValueError, "fused parts must be a positive integer"),
                                  ({"dim": 1, "parts": 5}, ValueError, "dimension 1 (12) is not 5 equal parts"),
                                  ([1, 3], TypeError, "fused must be {'dim': d, 'parts': k}")]:
            with self.subTest(fused=bad):
                with self.assertRaises(kind) as caught:
                    shardinit.fill_(local, (4, 12), init.normal_(), 7, "qkv", layout={1: ["tp"]},
                                    parallel={"mode": "1d", "size": 2}, rank=1, fused=bad)
                self.assertIn(reason, str(caught.exception))


class WholeExperts(unittest.TestCase):
    def test_expert_rank_and_python_errors(self):
        job = {"data": 4, "expert": 2}
        got = shardinit.resolve([6, 4], init.normal_(), "e", parallel=job, expert={"index": 3, "of": 4})
        self.assertEqual(got["layout"], "replicated on expert rank 1 of axis 1")
        for bad, kind, reason in [({"index": 1}, ValueError, "needs both 'index' and 'of'"),
                                  ({"index": 0, "of": 2, "rank": 1}, ValueError, "unknown key 'rank'"),
                                  ({"index": -1, "of": 2}, ValueError, "expert index must be a non-negative integer"),
                                  (3, TypeError, "expert must be True or False"),
                                  ({"index": 0, "of": 3}, ValueError, "the 3 experts must be divisible by the expert parallel size 2")]:
            with self.subTest(expert=bad):
                with self.assertRaises(kind) as caught:
                    shardinit.resolve([6, 4], init.normal_(), "e", parallel=job, expert=bad)
                self.assertIn(reason, str(caught.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
