"""Shard-invariant initialization of model parameters (docs/python.md).

Every element is a pure function of (seed, stream, global flat index), so any shard filled here is
bit-for-bit the same slice of the whole tensor, and equal to the shardinit CLI's and the C++
library's. The functions and classes come from the extension `shardinit._shardinit`;
`shardinit.torch` (fill_module_, manifest_from_module) is imported on first use, so that importing
shardinit never imports torch.
"""

from ._shardinit import *  # noqa: F401,F403  (init, fill_, Manifest, load_manifest, ...)
from ._shardinit import STREAM_FORMAT_VERSION, __version__  # noqa: F401


def __getattr__(name):
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'shardinit' has no attribute {name!r}")
