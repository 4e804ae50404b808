"""shardinit.torch against the CLI on Hugging Face-shaped models (docs/python.md, docs/models.md).

The models are torch 1.13 re-implementations of LlamaForCausalLM (also Qwen2's q/k/v biases and
Mistral's shapes), MixtralForCausalLM and GPT2LMHeadModel, written here from transformers'
modeling_llama.py, modeling_mixtral.py and modeling_gpt2.py (parameter names, shapes and module
types only: no forward pass is needed): transformers itself is not installed. Checks:
  * fill_module_ on the whole model equals `shardinit init --hf CONFIG` bit for bit; the file loads
    with load_state_dict(strict=True) with no renaming;
  * fill_module_ on each rank's local shards (tp x pp, Mixtral's experts over ep, zero3 partitions)
    equals the file's slices, also on an expert rank's real Mixtral module;
  * a model built on the meta device, after to_empty(), fills the same;
  * manifest_from_module(init="hf") is the generator's manifest; init="torch" gives torch's
    reset_parameters distributions (bounds computed here from torch's formulas);
  * per-tensor statistics of the CLI's files against the init rules;
  * the errors, all listed in one message.

Statistical thresholds (fixed seeds, so a run is deterministic; the bounds say how unlikely a false
failure would be for an arbitrary seed): for n samples of a distribution with variance s2, the sample
mean is within 6 sqrt(s2 / n) of the mean and the sample variance within 6 sd(var) of s2, with
sd(var) = s2 sqrt(2 / n) for a normal and s2 sqrt(0.8 / n) for a uniform (fourth moment 1.8 s2^2):
six standard errors, a two-sided tail of 2e-9 per check. bf16 rounding (relative error <= 2^-9) moves
the variance by less than 0.4 %, below every threshold here (the largest tensor has 16384 elements:
6 sqrt(2 / 16384) = 6.6 %).

Usage: SHARDINIT_CLI=/path/to/shardinit PYTHONPATH=<build>/python /usr/bin/python3 test_torch_models.py
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

try:
    import torch
    from torch import nn
except ImportError as error:
    print(f"SKIP: {sys.executable} cannot import PyTorch ({error}); on Debian: apt-get install python3-torch", flush=True)
    sys.exit(77)

import shardinit  # noqa: E402
import shardinit.torch as st  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hf"
TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
FILE_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}


def load_config(name: str) -> dict:
    return json.loads((EXAMPLES / name / "config.json").read_text())


# ---- the models, from transformers' modeling files -----------------------------------------------

class RMSNorm(nn.Module):  # LlamaRMSNorm (also Qwen2RMSNorm, MistralRMSNorm): weight = ones(hidden)
    def __init__(self, n, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, device=device, dtype=dtype))


class LlamaForCausalLM(nn.Module):
    """modeling_llama.py: LlamaAttention (q/k/v/o_proj, q/k/v biases when attention_bias; Qwen2's are
    always there), LlamaMLP (gate/up/down_proj), LlamaDecoderLayer, LlamaModel, lm_head. With
    moe=True, MixtralForCausalLM (modeling_mixtral.py): the MLP is MixtralSparseMoeBlock, a router
    `gate` (Linear(hidden, num_local_experts)) and `experts`, a ModuleList of
    MixtralBlockSparseTop2MLP (w1, w3: Linear(hidden, ffn); w2: Linear(ffn, hidden)), no biases."""

    def __init__(self, c: dict, device=None, qkv_bias=None, moe=False):
        super().__init__()
        self.config = types.SimpleNamespace(**c)
        kw = {"device": device, "dtype": TORCH_DTYPES[c.get("torch_dtype", "float32")]}
        h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
        heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        hd = c.get("head_dim") or h // heads
        qkv_bias = c.get("attention_bias", False) if qkv_bias is None else qkv_bias
        model = nn.Module()
        model.embed_tokens = nn.Embedding(v, h, c.get("pad_token_id"), **kw)
        model.layers = nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            layer = nn.Module()
            layer.self_attn = nn.Module()
            layer.self_attn.q_proj = nn.Linear(h, heads * hd, bias=qkv_bias, **kw)
            layer.self_attn.k_proj = nn.Linear(h, kv * hd, bias=qkv_bias, **kw)
            layer.self_attn.v_proj = nn.Linear(h, kv * hd, bias=qkv_bias, **kw)
            layer.self_attn.o_proj = nn.Linear(heads * hd, h, bias=False, **kw)
            if moe:
                layer.block_sparse_moe = nn.Module()
                layer.block_sparse_moe.gate = nn.Linear(h, c["num_local_experts"], bias=False, **kw)
                layer.block_sparse_moe.experts = nn.ModuleList()
                for _ in range(c["num_local_experts"]):
                    expert = nn.Module()
                    expert.w1 = nn.Linear(h, i, bias=False, **kw)
                    expert.w2 = nn.Linear(i, h, bias=False, **kw)
                    expert.w3 = nn.Linear(h, i, bias=False, **kw)
                    layer.block_sparse_moe.experts.append(expert)
            else:
                layer.mlp = nn.Module()
                layer.mlp.gate_proj = nn.Linear(h, i, bias=False, **kw)
                layer.mlp.up_proj = nn.Linear(h, i, bias=False, **kw)
                layer.mlp.down_proj = nn.Linear(i, h, bias=False, **kw)
            layer.input_layernorm = RMSNorm(h, **kw)
            layer.post_attention_layernorm = RMSNorm(h, **kw)
            model.layers.append(layer)
        model.norm = RMSNorm(h, **kw)
        self.model = model
        self.lm_head = nn.Linear(h, v, bias=False, **kw)
        if c.get("tie_word_embeddings", False):
            self.lm_head.weight = model.embed_tokens.weight


class Conv1D(nn.Module):  # transformers/pytorch_utils.py: weight (nx, nf), bias (nf)
    def __init__(self, nf, nx, device=None, dtype=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(nf, device=device, dtype=dtype))


class GPT2LMHeadModel(nn.Module):
    """modeling_gpt2.py: GPT2Model (wte, wpe, h.{i}.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
    mlp.c_proj}, ln_f) and lm_head tied to wte."""

    def __init__(self, c: dict, device=None):
        super().__init__()
        self.config = types.SimpleNamespace(**c)
        kw = {"device": device, "dtype": TORCH_DTYPES[c.get("torch_dtype", "float32")]}
        e, v = c["n_embd"], c["vocab_size"]
        inner = c.get("n_inner") or 4 * e
        t = nn.Module()
        t.wte = nn.Embedding(v, e, **kw)
        t.wpe = nn.Embedding(c["n_positions"], e, **kw)
        t.h = nn.ModuleList()
        for _ in range(c["n_layer"]):
            block = nn.Module()
            block.ln_1 = nn.LayerNorm(e, eps=c["layer_norm_epsilon"], **kw)
            block.attn = nn.Module()
            block.attn.c_attn = Conv1D(3 * e, e, **kw)
            block.attn.c_proj = Conv1D(e, e, **kw)
            block.ln_2 = nn.LayerNorm(e, eps=c["layer_norm_epsilon"], **kw)
            block.mlp = nn.Module()
            block.mlp.c_fc = Conv1D(inner, e, **kw)
            block.mlp.c_proj = Conv1D(e, inner, **kw)
            t.h.append(block)
        t.ln_f = nn.LayerNorm(e, eps=c["layer_norm_epsilon"], **kw)
        self.transformer = t
        self.lm_head = nn.Linear(e, v, bias=False, **kw)
        self.lm_head.weight = t.wte.weight


MODELS = {
    "tiny-llama": lambda c, **kw: LlamaForCausalLM(c, **kw),
    "tiny-mistral": lambda c, **kw: LlamaForCausalLM(c, **kw),
    "tiny-qwen2": lambda c, **kw: LlamaForCausalLM(c, qkv_bias=True, **kw),
    "tiny-mixtral": lambda c, **kw: LlamaForCausalLM(c, moe=True, **kw),
    "tiny-gpt2": lambda c, **kw: GPT2LMHeadModel(c, **kw),
}


# ---- files ------------------------------------------------------------------------------------------

def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """name -> tensor, parsed by hand: u64 LE header length, JSON header, data."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = bytearray(blob[8 + n:])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = FILE_DTYPES[entry["dtype"]]
        size = torch.empty(0, dtype=dtype).element_size()
        t = torch.frombuffer(data, dtype=dtype, count=(end - begin) // size, offset=begin) if end > begin else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(entry["shape"])
    return out


def cli_init(config: str, directory: Path, *options: str) -> dict[str, torch.Tensor]:
    cli = os.environ.get("SHARDINIT_CLI")
    if not cli:
        raise RuntimeError("set SHARDINIT_CLI to the shardinit command (CTest does)")
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "model"
    done = subprocess.run([cli, "init", "--hf", str(EXAMPLES / config / "config.json"), "-o", str(out), "--quiet", *options],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"shardinit init --hf failed ({done.returncode}): {done.stderr}")
    return read_safetensors(out / "model.safetensors")


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (NaN-safe, -0 != +0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return torch.equal(a.contiguous().view(view), b.contiguous().view(view))


def local_module(holdings: list[dict], device=None) -> nn.Module:
    """A module with one parameter of the local shape per held tensor, named as the manifest names it
    (what a tensor-parallel model's rank would hold, without its forward)."""
    root = nn.Module()
    for h in holdings:
        if not h["holds"]:
            continue
        *path, leaf = h["name"].split(".")
        owner = root
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, nn.Module())
            owner = getattr(owner, part)
        dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32, "f64": torch.float64}[h["dtype"]]
        owner.register_parameter(leaf, nn.Parameter(torch.empty(h["local_shape"], dtype=dtype, device=device)))
    return root


class Directory(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()


# ---- fill_module_ ------------------------------------------------------------------------------------

class WholeModels(Directory):
    def test_fill_module_equals_the_cli_file_and_the_file_loads_strictly(self):
        for name, build in MODELS.items():
            with self.subTest(model=name):
                config = load_config(name)
                file = cli_init(name, self.dir / name)
                model = build(config)
                st.fill_module_(model, shardinit.manifest_from_hf_config(config), threads=2)
                filled = dict(model.named_parameters())
                self.assertEqual(sorted(filled), sorted(file), "the module's names are the file's")
                for key, value in filled.items():
                    self.assertTrue(same_bits(value.detach(), file[key]), key)
                # The file into a fresh module: no renaming. A tied lm_head is not in the file (as
                # save_pretrained drops it); loading fills it through the tie.
                fresh = build(config)
                is_tied = config.get("tie_word_embeddings", name == "tiny-gpt2")  # GPT-2's default: tied
                result = fresh.load_state_dict(file, strict=not is_tied)
                tied = ["lm_head.weight"] if is_tied else []
                self.assertEqual(list(getattr(result, "missing_keys", [])), tied)
                self.assertEqual(list(getattr(result, "unexpected_keys", [])), [])
                for key, value in fresh.state_dict().items():
                    self.assertTrue(same_bits(value, model.state_dict()[key]), key)

    def test_a_model_built_on_the_meta_device_fills_after_to_empty(self):
        config = load_config("tiny-llama")
        manifest = shardinit.manifest_from_hf_config(config)
        model = LlamaForCausalLM(config, device="meta")
        with self.assertRaisesRegex(ValueError, r"meta device \(call module.to_empty\(device='cpu'\) first\)"):
            st.fill_module_(model, manifest)
        model = model.to_empty(device="cpu")
        st.fill_module_(model, manifest)
        file = cli_init("tiny-llama", self.dir)
        for key, value in model.named_parameters():
            self.assertTrue(same_bits(value.detach(), file[key]), key)

    def test_a_non_contiguous_parameter_is_filled_through_a_copy(self):
        config = load_config("tiny-gpt2")
        model = GPT2LMHeadModel(config)
        model.transformer.wpe.weight = nn.Parameter(torch.empty(32, 64).t())  # (64, 32), not contiguous
        st.fill_module_(model, shardinit.manifest_from_hf_config(config))
        file = cli_init("tiny-gpt2", self.dir)
        self.assertTrue(same_bits(model.transformer.wpe.weight.detach(), file["transformer.wpe.weight"]))


class Shards(Directory):
    def check_ranks(self, manifest: str, world: int, file: dict[str, torch.Tensor]) -> None:
        m = shardinit.Manifest(manifest)
        covered = {name: 0 for name in m.names}
        for rank in range(world):
            holdings = m.holdings(world, rank)
            module = local_module(holdings)
            st.fill_module_(module, manifest, rank=rank, world=world)
            params = dict(module.named_parameters())
            for h in holdings:
                if not h["holds"]:
                    self.assertNotIn(h["name"], params)
                    continue
                start, extent = h["box"]
                box = file[h["name"]][tuple(slice(s, s + e) for s, e in zip(start, extent))]
                expected = box.reshape(-1)[h["first"]:h["first"] + h["count"]] if h["zero3"] else box
                self.assertTrue(same_bits(params[h["name"]].detach(), expected), f"rank {rank}: {h['name']}")
                covered[h["name"]] += h["count"]
        for name, count in covered.items():  # every element by some rank (replicas count once per replica)
            self.assertGreaterEqual(count, file[name].numel(), name)

    def test_tensor_and_pipeline_shards_equal_the_files_slices(self):
        for name in ("tiny-llama", "tiny-qwen2"):
            with self.subTest(model=name):
                file = cli_init(name, self.dir / name)
                config = load_config(name)
                self.check_ranks(shardinit.manifest_from_hf_config(config, tp=2, pp=2), 4, file)
                if config["num_key_value_heads"] % 4 == 0:
                    self.check_ranks(shardinit.manifest_from_hf_config(config, tp=4), 4, file)
                stages = min(3, config["num_hidden_layers"])
                self.check_ranks(shardinit.manifest_from_hf_config(config, pp=stages, dp=1), stages, file)

    def test_mixtral_experts_over_the_expert_axis_equal_the_files_slices(self):
        # Each rank's module holds its expert rank's experts only (as Colossal-AI's EPMixtralSparseMoeBlock
        # keeps them), split over tp; the others are absent.
        file = cli_init("tiny-mixtral", self.dir)
        config = load_config("tiny-mixtral")
        self.check_ranks(shardinit.manifest_from_hf_config(config, tp=2, ep=2), 4, file)
        self.check_ranks(shardinit.manifest_from_hf_config(config, ep=4), 4, file)
        manifest = json.loads(shardinit.manifest_from_hf_config(config, ep=2, dp=4))
        manifest["parallel"]["data_partition"] = "zero3"  # experts partitioned over their expert-data-parallel pair
        self.check_ranks(json.dumps(manifest), 4, file)
        m = shardinit.Manifest(shardinit.manifest_from_hf_config(config, ep=2))
        held = {h["name"] for h in m.holdings(2, 1) if h["holds"]}
        self.assertIn("model.layers.0.block_sparse_moe.experts.2.w1.weight", held)
        self.assertNotIn("model.layers.0.block_sparse_moe.experts.1.w1.weight", held)
        self.assertIn("model.layers.0.block_sparse_moe.gate.weight", held)

    def test_gpt2_tensor_parallel_shards_are_colossal_ais_split(self):
        # Written from Colossal-AI's GPT2 policy (colossalai/shardformer/policies/gpt2.py), not from the
        # layouts: Conv1D weights are (in, out); GPT2FusedLinearConv1D_Col splits the output features
        # (c_attn per q, k, v part: split_fused_qkv_in_gpt2_style turns [Q1, Q2, K1, K2, V1, V2] into
        # [Q1, K1, V1] and [Q2, K2, V2]), _Row the input features (its bias whole); VocabParallelEmbedding1D
        # the vocabulary rows; norms and wpe whole.
        file = cli_init("tiny-gpt2", self.dir)
        config = load_config("tiny-gpt2")
        n = config["n_embd"]

        def chunk(t, dim, r, parts):
            size = t.shape[dim] // parts
            return t.narrow(dim, r * size, size)

        def expected(name, t, r, tp):
            if name.endswith("attn.c_attn.weight") or name.endswith("attn.c_attn.bias"):
                dim = t.dim() - 1
                return torch.cat([chunk(t.narrow(dim, k * n, n), dim, r, tp) for k in range(3)], dim)
            if name.endswith("mlp.c_fc.weight") or name.endswith("mlp.c_fc.bias"):
                return chunk(t, t.dim() - 1, r, tp)
            if name.endswith("c_proj.weight"):
                return chunk(t, 0, r, tp)
            if name == "transformer.wte.weight":
                return chunk(t, 0, r, tp)
            return t

        for tp in (2, 4):
            manifest = shardinit.manifest_from_hf_config(config, tp=tp)
            m = shardinit.Manifest(manifest)
            for r in range(tp):
                with self.subTest(tp=tp, rank=r):
                    module = local_module(m.holdings(tp, r))
                    st.fill_module_(module, manifest, rank=r, world=tp)
                    params = dict(module.named_parameters())
                    self.assertEqual(sorted(params), sorted(file))
                    for name, value in params.items():
                        self.assertTrue(same_bits(value.detach(), expected(name, file[name], r, tp).contiguous()), name)
                    self.assertEqual(tuple(params["transformer.h.0.attn.c_attn.weight"].shape), (n, 3 * n // tp))

    def test_an_expert_ranks_real_mixtral_module(self):
        # EPMixtralSparseMoeBlock keeps only its expert rank's experts (set_tensors_to_none on the
        # others, colossalai/shardformer/modeling/mixtral.py): at ep 2 of 2 ranks, rank 1 has experts 2-3
        # of 4 in each layer, whole (tp 1), and every dense tensor.
        file = cli_init("tiny-mixtral", self.dir)
        config = load_config("tiny-mixtral")
        manifest = shardinit.manifest_from_hf_config(config, ep=2)
        for rank in (0, 1):
            with self.subTest(rank=rank):
                model = LlamaForCausalLM(config, moe=True)
                for layer in model.model.layers:
                    experts = layer.block_sparse_moe.experts
                    for e in range(len(experts)):
                        if e // 2 != rank:
                            experts[e] = nn.Module()  # not this expert rank's: no parameters left
                st.fill_module_(model, manifest, rank=rank, world=2)
                params = dict(model.named_parameters())
                self.assertEqual(len(params), len(file) - 12)  # 2 layers x 2 experts x 3 matrices elsewhere
                for key, value in params.items():
                    self.assertTrue(same_bits(value.detach(), file[key]), key)
        # Another expert rank's experts left in the module: errors naming their layout (the mesh
        # [edp 1, ep 2, pp 1, tp 1]: the expert axis is 1).
        with self.assertRaisesRegex(ValueError, r"model.layers.0.block_sparse_moe.experts.0.w1.weight: rank 1 of 2 holds none of it "
                                                r"\(another pipeline stage's or expert rank's: layout \{0: \[3\]\} on expert rank 0 of axis 1\)"):
            st.fill_module_(LlamaForCausalLM(config, moe=True), manifest, rank=1, world=2)

    def test_zero3_partitions_equal_the_files_ranges(self):
        file = cli_init("tiny-llama", self.dir)
        manifest = json.loads(shardinit.manifest_from_hf_config(load_config("tiny-llama"), tp=2, pp=2))
        manifest["parallel"].update({"data": 2, "data_partition": "zero3"})
        self.check_ranks(json.dumps(manifest), 8, file)


class Errors(unittest.TestCase):
    def test_every_problem_is_listed_in_one_message_and_nothing_is_written(self):
        config = load_config("tiny-llama")
        model = LlamaForCausalLM(config)
        model.lm_head.weight = nn.Parameter(torch.zeros(256, 32, dtype=torch.bfloat16))          # shape
        model.model.norm.weight = nn.Parameter(torch.zeros(64, dtype=torch.float32))             # dtype
        model.extra = nn.Linear(2, 2, bias=False)                                                # not in the manifest
        del model.model.layers[3].mlp.up_proj                                                    # missing
        before = model.model.embed_tokens.weight.detach().clone()
        with self.assertRaises(ValueError) as caught:
            st.fill_module_(model, shardinit.manifest_from_hf_config(config))
        message = str(caught.exception)
        self.assertIn("4 problems", message)
        self.assertIn("missing from the module: model.layers.3.mlp.up_proj.weight", message)
        self.assertIn("not in the manifest: extra.weight", message)
        self.assertIn("lm_head.weight: shape (256, 32), but the manifest's tensor is (256, 64)", message)
        self.assertIn("model.norm.weight: dtype torch.float32, but the manifest gives bf16", message)
        self.assertTrue(same_bits(model.model.embed_tokens.weight.detach(), before), "nothing written")

    def test_a_wrong_local_shape_names_the_rank_and_its_box(self):
        config = load_config("tiny-llama")
        manifest = shardinit.manifest_from_hf_config(config, tp=2)
        model = LlamaForCausalLM(config)  # whole tensors, but rank 1 of 2 holds halves
        with self.assertRaisesRegex(ValueError, r"model.layers.0.self_attn.q_proj.weight: shape \(64, 64\), but rank 1 of 2 "
                                                r"holds \(32, 64\) of \(64, 64\)"):
            st.fill_module_(model, manifest, rank=1, world=2)

    def test_another_stages_tensor_present_is_an_error(self):
        config = load_config("tiny-llama")
        manifest = shardinit.manifest_from_hf_config(config, pp=2)
        with self.assertRaisesRegex(ValueError, r"model.embed_tokens.weight: rank 1 of 2 holds none of it \(another pipeline "
                                                r"stage's or expert rank's: layout \{0: \[2\]\} on stages \[0\] of axis 1\), "
                                                r"but the module has it with shape \(256, 64\)"):
            st.fill_module_(LlamaForCausalLM(config), manifest, rank=1, world=2)

    def test_rank_and_world(self):
        config = load_config("tiny-gpt2")
        manifest = shardinit.manifest_from_hf_config(config)
        model = GPT2LMHeadModel(config)
        with self.assertRaisesRegex(ValueError, r"rank=1 needs world="):
            st.fill_module_(model, manifest, rank=1)
        with self.assertRaisesRegex(ValueError, r"world=2 needs rank="):
            st.fill_module_(model, manifest, world=2)
        with self.assertRaisesRegex(ValueError, r"rank 2 is outside the world of 2 ranks"):
            st.fill_module_(model, manifest, rank=2, world=2)
        with self.assertRaisesRegex(TypeError, r"manifest must be a shardinit.Manifest, a dict, JSON text or a path"):
            st.fill_module_(model, 42)
        with self.assertRaisesRegex(OSError, r"nowhere.json"):
            st.fill_module_(model, "/nowhere.json")


# ---- manifest_from_module ---------------------------------------------------------------------------

def resolved_by_name(manifest) -> dict[str, dict]:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    keys = ("shape", "dtype", "stream", "distribution", "padding_idx")
    return {t["name"]: {k: t[k] for k in keys} for t in shardinit.resolve_manifest(text)}


def bounds(distribution: str) -> tuple[float, float]:
    a, b = re.fullmatch(r"uniform\(a=(\S+), b=(\S+)\)", distribution).groups()
    return float(a), float(b)


class FromModule(unittest.TestCase):
    def test_hf_rules_on_the_module_give_the_generators_manifest(self):
        for name, build in MODELS.items():
            with self.subTest(model=name):
                config = load_config(name)
                mine = st.manifest_from_module(build(config, device="meta"), init="hf", seed=42)
                self.assertEqual(resolved_by_name(mine), resolved_by_name(shardinit.manifest_from_hf_config(config)))

    def test_torch_rules_are_torchs_reset_parameters(self):
        torch.manual_seed(0)
        m = nn.Module()
        m.fc = nn.Linear(40, 30)
        m.conv = nn.Conv2d(3, 8, (5, 7))
        m.deconv = nn.ConvTranspose1d(6, 4, 3, groups=2)
        m.bilinear = nn.Bilinear(5, 9, 2)
        m.emb = nn.Embedding(10, 4, padding_idx=-2)
        m.ln = nn.LayerNorm(4)
        m.gn = nn.GroupNorm(2, 4)
        m.bn = nn.BatchNorm1d(4)
        m.prelu = nn.PReLU(3)
        m.lstm = nn.LSTM(4, 16)
        m.mha = nn.MultiheadAttention(8, 2, add_bias_kv=True)
        r = resolved_by_name(st.manifest_from_module(m))
        expected_bounds = {  # torch 1.13's formulas, written out: kaiming_uniform(a=sqrt 5) is 1/sqrt(fan_in)
            "fc.weight": 1 / math.sqrt(40), "fc.bias": 1 / math.sqrt(40),
            "conv.weight": 1 / math.sqrt(3 * 5 * 7), "conv.bias": 1 / math.sqrt(3 * 5 * 7),
            "deconv.weight": 1 / math.sqrt(2 * 3), "deconv.bias": 1 / math.sqrt(2 * 3),  # weight (6, 2, 3): fan_in 2*3
            "bilinear.weight": 1 / math.sqrt(5), "bilinear.bias": 1 / math.sqrt(5),
            "lstm.weight_ih_l0": 1 / 4, "lstm.weight_hh_l0": 1 / 4, "lstm.bias_ih_l0": 1 / 4, "lstm.bias_hh_l0": 1 / 4,
            "mha.in_proj_weight": math.sqrt(6 / (8 + 24)),  # xavier_uniform_ on (24, 8)
        }
        for name, bound in expected_bounds.items():
            a, b = bounds(r[name]["distribution"])
            self.assertAlmostEqual(b, bound, delta=1e-15 * bound, msg=name)
            self.assertEqual(a, -b, name)
        self.assertEqual(r["emb.weight"]["distribution"], "normal(mean=0, std=1)")
        self.assertEqual(r["emb.weight"]["padding_idx"], 8)  # torch normalizes -2 to 8
        for name in ("ln.weight", "gn.weight", "bn.weight"):
            self.assertEqual(r[name]["distribution"], "constant(value=1)", name)
        for name in ("ln.bias", "gn.bias", "bn.bias", "mha.in_proj_bias", "mha.out_proj.bias"):
            self.assertEqual(r[name]["distribution"], "constant(value=0)", name)
        self.assertEqual(r["prelu.weight"]["distribution"], "constant(value=0.25)")
        # The Linear's kaiming bound, computed as gain * sqrt(3 / fan_in): 1/sqrt(8) to within rounding.
        self.assertAlmostEqual(bounds(r["mha.out_proj.weight"]["distribution"])[1], 1 / math.sqrt(8), delta=1e-15)
        std = float(re.fullmatch(r"normal\(mean=0, std=(\S+)\)", r["mha.bias_k"]["distribution"]).group(1))
        self.assertAlmostEqual(std, math.sqrt(2 / (8 + 8)), delta=1e-15)  # xavier_normal_ on (1, 1, 8)
        self.assertEqual(sorted(r), sorted(name for name, _ in m.named_parameters()))

    def test_torch_rules_filled_match_torchs_own_statistics(self):
        m = nn.Linear(768, 3072)
        st.fill_module_(m, st.manifest_from_module(m, seed=7))
        w = m.weight.detach().double()
        b = 1 / math.sqrt(768)
        n = w.numel()
        self.assertLessEqual(w.abs().max().item(), b)
        self.assertLess(abs(w.mean().item()), 6 * math.sqrt(b * b / 3 / n))
        self.assertLess(abs(w.var().item() / (b * b / 3) - 1), 6 * math.sqrt(0.8 / n))

    def test_rules_and_their_errors(self):
        class Scaled(nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = nn.Parameter(torch.empty(4))
                self.proj = nn.Linear(4, 4)

        class Gate(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.empty(2, 2))

        m = nn.Module()
        m.a = Scaled()
        m.g = Gate()
        with self.assertRaisesRegex(ValueError, r"Scaled \(a.scale\); Gate \(g.w\)"):
            st.manifest_from_module(m)
        r = resolved_by_name(st.manifest_from_module(m, rules=[("*.scale", shardinit.init.ones_()),
                                                               ("g.*", {"fn": "normal", "mean": 0, "std": 0.5}),
                                                               ("a.proj.weight", shardinit.init.zeros_())]))
        self.assertEqual(r["a.scale"]["distribution"], "constant(value=1)")
        self.assertEqual(r["g.w"]["distribution"], "normal(mean=0, std=0.5)")
        self.assertEqual(r["a.proj.weight"]["distribution"], "constant(value=0)")  # a rule before the type's own
        self.assertEqual(bounds(r["a.proj.bias"]["distribution"])[1], 0.5)
        only = st.manifest_from_module(m, init=[("*", shardinit.init.zeros_())])
        self.assertEqual({t["distribution"] for t in resolved_by_name(only).values()}, {"constant(value=0)"})
        with self.assertRaisesRegex(ValueError, r"init must be 'torch', 'hf', None"):
            st.manifest_from_module(m, init="jax")
        with self.assertRaisesRegex(TypeError, r"a rule's initializer must be"):
            st.manifest_from_module(m, rules=[("*", 0.5)])
        with self.assertRaisesRegex(ValueError, r"x: dtype torch.int64 is not one shardinit fills"):
            holder = nn.Module()
            holder.x = nn.Parameter(torch.zeros(2, dtype=torch.int64), requires_grad=False)
            st.manifest_from_module(holder)

    def test_layouts_place_the_tensors(self):
        m = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 8))
        manifest = st.manifest_from_module(m, parallel={"tensor": {"mode": "1d", "size": 2}},
                                           layouts=[("0.weight", "linear_col"), ("0.bias", "linear_col_bias"), ("1.weight", "linear_row")])
        holdings = {h["name"]: h for h in shardinit.Manifest(json.dumps(manifest)).holdings(2, 1)}
        self.assertEqual(holdings["0.weight"]["local_shape"], (8, 8))
        self.assertEqual(holdings["0.bias"]["local_shape"], (8,))
        self.assertEqual(holdings["1.weight"]["local_shape"], (8, 8))
        self.assertEqual(holdings["1.bias"]["local_shape"], (8,))  # replicated


# ---- the CLI's files against the init rules -----------------------------------------------------------

class FileStatistics(Directory):
    def check_normal(self, name, t, std):
        x = t.double().reshape(-1)
        n = x.numel()
        self.assertLess(abs(x.mean().item()), 6 * std / math.sqrt(n), name)
        self.assertLess(abs(x.var().item() / (std * std) - 1), 6 * math.sqrt(2 / n), name)

    def check_uniform(self, name, t, bound):
        x = t.double().reshape(-1)
        n = x.numel()
        self.assertLessEqual(x.abs().max().item(), bound * (1 + 2 ** -8), name)  # bf16 rounding may reach past it
        self.assertLess(abs(x.mean().item()), 6 * math.sqrt(bound * bound / 3 / n), name)
        self.assertLess(abs(x.var().item() / (bound * bound / 3) - 1), 6 * math.sqrt(0.8 / n), name)

    def test_hf_init_rules(self):
        for name in ("tiny-llama", "tiny-qwen2", "tiny-gpt2"):
            config = load_config(name)
            r = config["initializer_range"]
            file = cli_init(name, self.dir / name)
            for key, t in file.items():
                with self.subTest(model=name, tensor=key):
                    if key.endswith("norm.weight") or re.search(r"ln_\w+\.weight$", key):
                        self.assertTrue(bool((t == 1).all()))
                    elif key.endswith(".bias"):
                        self.assertTrue(bool((t == 0).all()))
                    elif key == "model.embed_tokens.weight" and config.get("pad_token_id") is not None:
                        pad = config["pad_token_id"]
                        self.assertTrue(bool((t[pad] == 0).all()), "padding row")
                        self.check_normal(key, torch.cat([t[:pad], t[pad + 1:]]), r)
                    elif key.endswith("c_proj.weight"):  # GPT-2: initializer_range / sqrt(2 n_layer)
                        self.check_normal(key, t, r / math.sqrt(2 * config["n_layer"]))
                    else:
                        self.check_normal(key, t, r)

    def test_colossal_init_rules_use_the_global_fans(self):
        config = load_config("tiny-llama")
        file = cli_init("tiny-llama", self.dir, "--init", "colossal")
        checked = 0
        for key, t in file.items():
            if t.dim() == 2 and key != "model.embed_tokens.weight":  # Linear (out, in): kaiming_uniform(a=sqrt 5)
                self.check_uniform(key, t, 1 / math.sqrt(t.shape[1]))
                checked += 1
        self.assertEqual(checked, 7 * config["num_hidden_layers"] + 1)
        self.check_normal("model.embed_tokens.weight", file["model.embed_tokens.weight"], 1.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
