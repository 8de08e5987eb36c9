"""lnc's shared entropy-coding core: the compiled range coder, entropy models and the .lnc container.

Every codec, whatever its modality, turns quantised latents into bytes through this package. Names
are imported on first use, so light tools (``lnc info``, ``lnc bdrate``) never load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EntropyModel": "base",
    "EntropyBottleneck": "bottleneck",
    "CategoricalModel": "categorical",
    "GaussianConditional": "gaussian",
    "LaplaceConditional": "gaussian",
    "LocationScaleConditional": "gaussian",
    "get_scale_table": "gaussian",
    "encode_with_indexes": "coder",
    "decode_with_indexes": "coder",
    "encode_streams": "coder",
    "decode_streams": "coder",
    "RangeEncoder": "coder",
    "RangeDecoder": "coder",
    "encode_into": "coder",
    "decode_from": "coder",
    "pmf_to_quantized_cdf": "coder",
    "LncError": "errors",
    "BitstreamError": "errors",
    "InputError": "errors",
    "ModelMismatchError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lnc.entropy' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lnc.entropy.{_EXPORTS[name]}"), name)
