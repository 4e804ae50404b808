"""PyTorch modules, in place (docs/python.md#pytorch-modules-shardinittorch).

fill_module_(module, manifest, rank=..., world=...) fills every parameter of a module (a whole
model, or one rank's local shards of it) from the manifest tensor of the same name, with the values
the CLI's `init` writes for that manifest, bit for bit. manifest_from_module(module, init=...) builds
the manifest from the module's own parameters: torch's reset_parameters defaults, the Hugging Face
_init_weights rules, or rules of your own.
"""

import fnmatch
import json
import math
import os

import torch

from . import _shardinit as _core

__all__ = ["fill_module_", "manifest_from_module", "as_manifest"]

_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16", torch.float16: "f16"}


def as_manifest(manifest):
    """A shardinit.Manifest from a Manifest, a dict (the manifest's JSON object), JSON text (a str
    starting with '{') or the path of a manifest file."""
    if isinstance(manifest, _core.Manifest):
        return manifest
    if isinstance(manifest, dict):
        return _core.Manifest(json.dumps(manifest), "<dict>")
    if isinstance(manifest, str) and manifest.lstrip().startswith("{"):
        return _core.Manifest(manifest)
    if isinstance(manifest, (str, bytes, os.PathLike)):
        return _core.load_manifest(manifest)
    raise TypeError("manifest must be a shardinit.Manifest, a dict, JSON text or a path, got " + repr(type(manifest)))


def _world_of(rank, world):
    """(world, rank) of the fill: the whole tensors without rank=, else rank of world (default: the
    initialized torch.distributed's size)."""
    if rank is None:
        if world not in (None, 1):
            raise ValueError(f"world={world!r} needs rank= (which of the {world} ranks this module is)")
        return 1, 0
    if world is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            world = dist.get_world_size()
        else:
            raise ValueError(f"rank={rank!r} needs world= (the number of ranks), or an initialized torch.distributed")
    return world, rank


def _shape(t):
    return tuple(int(d) for d in t)


def fill_module_(module, manifest, *, rank=None, world=None, threads=1):
    """Fills every parameter of `module` in place from the manifest tensor of the same name; returns
    the module.

    Without rank=, each parameter is the whole tensor. With rank= (and world=, default the
    initialized torch.distributed's size), each is what that rank holds under the manifest's
    topology and layouts: its box (a 1-d range under zero3), and a tensor of another pipeline stage
    (or another expert rank's expert) must be absent (or empty). Tied parameters (one tensor under two names) are filled once, under
    the name named_parameters() gives them.

    Every problem is found before anything is written, and reported together in one ValueError:
    parameters the manifest lacks, held manifest tensors the module lacks, wrong shapes and dtypes,
    parameters still on the meta device (call module.to_empty(device='cpu') first). A parameter on
    another device (cuda) or not contiguous is filled through a CPU copy.
    """
    m = as_manifest(manifest)
    world, rank = _world_of(rank, world)
    holdings = {h["name"]: h for h in m.holdings(world, rank)}
    params = list(module.named_parameters())

    problems, unexpected = [], []
    for name, p in params:
        h = holdings.get(name)
        if h is None:
            unexpected.append(name)
            continue
        shape = _shape(p.shape)
        if not h["holds"]:
            if p.numel() != 0:
                problems.append(f"{name}: rank {rank} of {world} holds none of it (another pipeline stage's or expert rank's: "
                                f"layout {h['layout']}), but the module has it with shape {shape}")
            continue
        wanted = _shape(h["local_shape"])
        if shape != wanted and not (h["zero3"] and shape == (h["buffer"],)):
            if world == 1:
                problems.append(f"{name}: shape {shape}, but the manifest's tensor is {wanted}")
            else:
                problems.append(f"{name}: shape {shape}, but rank {rank} of {world} holds {wanted} of {_shape(h['shape'])}")
        if _DTYPES.get(p.dtype) != h["dtype"]:
            problems.append(f"{name}: dtype {p.dtype}, but the manifest gives {h['dtype']}")
        if p.device.type == "meta":
            problems.append(f"{name}: on the meta device (call module.to_empty(device='cpu') first)")
    named = {name for name, _ in params}
    missing = [name for name, h in holdings.items() if h["holds"] and name not in named]
    if unexpected:
        problems.insert(0, "not in the manifest: " + ", ".join(unexpected))
    if missing:
        problems.insert(0, f"in the manifest{'' if world == 1 else f' (held by rank {rank} of {world})'}, missing from the module: "
                        + ", ".join(missing))
    if problems:
        raise ValueError(f"fill_module_: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n  " + "\n  ".join(problems))

    with torch.no_grad():
        for name, p in params:
            if not holdings[name]["holds"]:
                continue
            target = p.detach()
            if target.device.type == "cpu" and target.is_contiguous():
                m.fill_(target, name, world=world, rank=rank, threads=threads)
            else:
                staged = torch.empty(target.shape, dtype=target.dtype)
                m.fill_(staged, name, world=world, rank=rank, threads=threads)
                target.copy_(staged)
    return module


# ---- manifest_from_module -------------------------------------------------------------------------

def _fans(shape):
    """torch.nn.init._calculate_fan_in_and_fan_out (torch/nn/init.py): (d0, d1, *k) -> (d1 * k, d0 * k)."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _uniform(bound):
    return {"fn": "uniform", "a": -bound, "b": bound}


_ZEROS, _ONES = {"fn": "zeros"}, {"fn": "ones"}
# kaiming_uniform_(weight, a=math.sqrt(5)): bound = 1 / sqrt(fan_in), fans from the weight's shape.
_KAIMING_SQRT5 = {"fn": "kaiming_uniform", "a": math.sqrt(5), "mode": "fan_in", "nonlinearity": "leaky_relu"}


def _fan_in_bound(weight_shape):
    fan_in, _ = _fans(weight_shape)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def _torch_rules(owner, local, shape, _options):
    """The tensor's entry (without name, shape and dtype) under torch's reset_parameters for the module
    that owns it (torch 1.13, torch/nn/modules/*.py), or None for a type torch's rules do not cover."""
    nn = torch.nn
    if isinstance(owner, (nn.Linear, nn.modules.conv._ConvNd)):
        # linear.py Linear.reset_parameters, conv.py _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt 5)
        # weight; bias uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in.
        if local == "weight":
            return {"init": _KAIMING_SQRT5, "fan_in": _fans(shape)[0]}
        if local == "bias":
            return {"init": _uniform(_fan_in_bound(_shape(owner.weight.shape)))}
    if isinstance(owner, nn.Bilinear):  # linear.py Bilinear.reset_parameters: bound 1/sqrt(weight.size(1))
        return {"init": _uniform(1 / math.sqrt(owner.weight.shape[1]))}
    if isinstance(owner, (nn.Embedding, nn.EmbeddingBag)) and local == "weight":
        # sparse.py: normal_(weight), then the padding_idx row zeroed.
        entry = {"init": {"fn": "normal", "mean": 0.0, "std": 1.0}}
        if owner.padding_idx is not None:
            entry["padding_idx"] = int(owner.padding_idx)
        return entry
    if isinstance(owner, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)):
        # normalization.py, batchnorm.py, instancenorm.py: affine weight ones, bias zeros.
        return {"init": _ONES if local == "weight" else _ZEROS}
    if isinstance(owner, nn.PReLU):
        # activation.py: weight filled with the constructor's init (default 0.25); torch 1.13 does not keep
        # it, later versions do (self.init).
        return {"init": {"fn": "constant", "val": float(getattr(owner, "init", 0.25))}}
    if isinstance(owner, (nn.RNNBase, nn.RNNCellBase)):
        # rnn.py reset_parameters: every weight and bias uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
        return {"init": _uniform(1 / math.sqrt(owner.hidden_size) if owner.hidden_size > 0 else 0.0)}
    if isinstance(owner, nn.MultiheadAttention):
        # activation.py MultiheadAttention._reset_parameters: xavier_uniform_ projections, zero in_proj_bias,
        # xavier_normal_ bias_k / bias_v (out_proj.bias, zeroed there too, is handled as an override).
        if local.endswith("proj_weight"):
            fan_in, fan_out = _fans(shape)
            return {"init": {"fn": "xavier_uniform", "a": math.sqrt(3), "scale": 2.0, "gain": 1.0}, "fan_in": fan_in,
                    "fan_out": fan_out}
        if local == "in_proj_bias":
            return {"init": _ZEROS}
        if local in ("bias_k", "bias_v"):
            fan_in, fan_out = _fans(shape)
            return {"init": {"fn": "xavier_normal", "scale": 2.0, "gain": 1.0}, "fan_in": fan_in, "fan_out": fan_out}
    return None


def _torch_overrides(module):
    """Parameters a parent module re-initializes after its children: MultiheadAttention zeroes out_proj.bias."""
    out = {}
    for mname, owner in module.named_modules():
        if isinstance(owner, torch.nn.MultiheadAttention) and owner.out_proj.bias is not None:
            out[(mname + "." if mname else "") + "out_proj.bias"] = {"init": _ZEROS}
    return out


def _hf_rules(owner, local, shape, options):
    """Hugging Face's _init_weights (LlamaPreTrainedModel, GPT2PreTrainedModel, ... in
    transformers/models/*/modeling_*.py): Linear / Conv1D / Embedding weights normal(0,
    initializer_range), biases zero, the embedding's padding_idx row zeroed, norms ones / zeros."""
    std = options["initializer_range"]
    kind = type(owner).__name__
    if isinstance(owner, torch.nn.Linear) or kind == "Conv1D":
        return {"init": {"fn": "normal", "mean": 0.0, "std": std} if local == "weight" else _ZEROS}
    if isinstance(owner, torch.nn.Embedding) and local == "weight":
        entry = {"init": {"fn": "normal", "mean": 0.0, "std": std}}
        if owner.padding_idx is not None:
            entry["padding_idx"] = int(owner.padding_idx)
        return entry
    if isinstance(owner, torch.nn.LayerNorm) or kind.endswith("RMSNorm") or kind.endswith("LayerNorm"):
        return {"init": _ONES if local == "weight" else _ZEROS}
    return None


def _hf_overrides(module, options):
    """GPT-2's scheme (GPT2PreTrainedModel._init_weights): every c_proj.weight normal(0,
    initializer_range / sqrt(2 n_layer))."""
    if options.get("n_layer") is None:
        return {}
    std = options["initializer_range"] / math.sqrt(2 * options["n_layer"])
    return {name: {"init": {"fn": "normal", "mean": 0.0, "std": std}}
            for name, _ in module.named_parameters() if name == "c_proj.weight" or name.endswith(".c_proj.weight")}


def _hf_options(module, initializer_range, n_layer):
    config = getattr(module, "config", None)
    if initializer_range is None:
        initializer_range = getattr(config, "initializer_range", 0.02)
    if n_layer is None and getattr(config, "model_type", None) == "gpt2":
        n_layer = getattr(config, "n_layer", None)
    return {"initializer_range": float(initializer_range), "n_layer": n_layer}


def _rule_entry(init):
    """A rule's initializer: a shardinit.init Initializer, or a manifest "init" object (a dict)."""
    if isinstance(init, _core.init.Initializer):
        return {"init": init.manifest_init()}
    if isinstance(init, dict):
        return {"init": dict(init)}
    raise TypeError(f"a rule's initializer must be a shardinit.init initializer or a manifest \"init\" dict, got {init!r}")


def _placement(layouts, name):
    """The manifest keys placing `name` (layout, stage, layer, expert, fan_in, ...): the first of
    `layouts`' (pattern, preset or dict) rules that matches it, else none (replicated)."""
    for pattern, placement in layouts or ():
        if fnmatch.fnmatchcase(name, pattern):
            return {"layout": placement} if isinstance(placement, str) else dict(placement)
    return {}


def manifest_from_module(module, *, init="torch", rules=None, seed=0, parallel=None, layouts=None,
                         initializer_range=None, n_layer=None):
    """The manifest (a dict: json.dump it, or pass it to fill_module_) of `module`'s parameters, from
    named_parameters(): names, global shapes and dtypes as the module has them (build the whole
    model, on the meta device if it is large).

    init: "torch" (each module type's reset_parameters defaults), "hf" (Hugging Face's _init_weights;
    initializer_range and GPT-2's n_layer from module.config, else the keywords, default 0.02), None
    (rules only), or a list of rules. rules: (name pattern, initializer) pairs, tried first, the
    first match wins (fnmatch patterns on the full name; an initializer is a shardinit.init one or a
    manifest "init" dict). A parameter no rule covers and whose module type the init does not know is
    an error naming them all. parallel: the manifest's "parallel" object; layouts: (name pattern,
    preset or dict of manifest keys) pairs placing the tensors under it.
    """
    if isinstance(init, (list, tuple)):
        rules, init = list(init) + list(rules or []), None
    if init not in ("torch", "hf", None):
        raise ValueError(f"init must be 'torch', 'hf', None or a list of (pattern, initializer) rules, got {init!r}")
    options = _hf_options(module, initializer_range, n_layer) if init == "hf" else {}
    type_rule = {"torch": _torch_rules, "hf": _hf_rules, None: None}[init]
    overrides = _torch_overrides(module) if init == "torch" else _hf_overrides(module, options) if init == "hf" else {}
    rules = [(pattern, _rule_entry(i)) for pattern, i in (rules or [])]

    tensors, unknown, seen = [], {}, set()
    for mname, owner in module.named_modules():
        for local, p in owner.named_parameters(recurse=False):
            if id(p) in seen:  # tied: one tensor, under the first name (named_parameters' own rule)
                continue
            seen.add(id(p))
            name = (mname + "." if mname else "") + local
            if p.dtype not in _DTYPES:
                raise ValueError(f"{name}: dtype {p.dtype} is not one shardinit fills (float32, float64, bfloat16, float16)")
            shape = _shape(p.shape)
            entry = next((e for pattern, e in rules if fnmatch.fnmatchcase(name, pattern)), None)
            if entry is None:
                entry = overrides.get(name)
            if entry is None and type_rule is not None:
                entry = type_rule(owner, local, shape, options)
            if entry is None:
                unknown.setdefault(type(owner).__name__, []).append(name)
                continue
            tensors.append({"name": name, "shape": list(shape), "dtype": _DTYPES[p.dtype], **entry, **_placement(layouts, name)})
    if unknown:
        listed = "; ".join(f"{kind} ({', '.join(names)})" for kind, names in unknown.items())
        known = {"torch": "torch's", "hf": "the hf", None: "no"}[init]
        raise ValueError(f"manifest_from_module: {known} rules do not cover these module types and no rule matches their "
                         f"parameters: {listed}; add rules=[(pattern, initializer), ...]")
    manifest = {"seed": int(seed), "tensors": tensors}
    if parallel is not None:
        manifest["parallel"] = parallel
    return manifest
