#!/usr/bin/env python3
"""Writes the manifest of a Llama-shaped model (TinyLlama-1.1B's shapes by default: 201 tensors,
bf16, 2.2 GB) with 1D tensor parallelism: q/k/v/gate/up column-split (linear_col), o/down row-split
(linear_row, split by columns of the weight), embeddings and lm_head vocab-split. For the I/O
benchmark (scripts/bench-io.py).

    examples/make-llama-manifest.py OUT.json [--layers 22] [--hidden 2048] [--intermediate 5632]
                                    [--kv 256] [--vocab 32000] [--tp 2]
"""
import argparse
import json

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--layers", type=int, default=22)
p.add_argument("--hidden", type=int, default=2048)
p.add_argument("--intermediate", type=int, default=5632)
p.add_argument("--kv", type=int, default=256)
p.add_argument("--vocab", type=int, default=32000)
p.add_argument("--tp", type=int, default=2)
a = p.parse_args()
normal = {"fn": "normal", "std": 0.02}
ones = {"fn": "ones"}


def t(name, shape, init=normal, layout=None):
    entry = {"name": name, "shape": shape, "dtype": "bf16", "init": init}
    if layout:
        entry["layout"] = layout
    return entry


h, i = a.hidden, a.intermediate
tensors = [t("model.embed_tokens.weight", [a.vocab, h], layout="linear_col")]
for n in range(a.layers):
    x = f"model.layers.{n}."
    tensors += [
        t(x + "self_attn.q_proj.weight", [h, h], layout="linear_col"),
        t(x + "self_attn.k_proj.weight", [a.kv, h], layout="linear_col"),
        t(x + "self_attn.v_proj.weight", [a.kv, h], layout="linear_col"),
        t(x + "self_attn.o_proj.weight", [h, h], layout="linear_row"),
        t(x + "mlp.gate_proj.weight", [i, h], layout="linear_col"),
        t(x + "mlp.up_proj.weight", [i, h], layout="linear_col"),
        t(x + "mlp.down_proj.weight", [h, i], layout="linear_row"),
        t(x + "input_layernorm.weight", [h], ones),
        t(x + "post_attention_layernorm.weight", [h], ones),
    ]
tensors += [t("model.norm.weight", [h], ones), t("lm_head.weight", [a.vocab, h], layout="linear_col")]
with open(a.out, "w") as f:
    json.dump({"seed": 42, "parallel": {"tensor": {"mode": "1d", "size": a.tp}}, "tensors": tensors}, f, indent=1)
