"""lnc's shared entropy-coding core: the compiled range coder, entropy models and the .lnc container.

Every codec, whatever its modality, turns quantised latents into bytes through this package.
"""
from lnc.entropy.base import EntropyModel
from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy.categorical import CategoricalModel
from lnc.entropy.coder import (
    decode_streams,
    decode_with_indexes,
    encode_streams,
    encode_with_indexes,
    pmf_to_quantized_cdf,
)
from lnc.entropy.errors import BitstreamError, InputError, LncError, ModelMismatchError
from lnc.entropy.gaussian import GaussianConditional, LaplaceConditional, LocationScaleConditional, get_scale_table

__all__ = [
    "BitstreamError",
    "CategoricalModel",
    "EntropyBottleneck",
    "EntropyModel",
    "GaussianConditional",
    "InputError",
    "LaplaceConditional",
    "LncError",
    "LocationScaleConditional",
    "ModelMismatchError",
    "decode_streams",
    "decode_with_indexes",
    "encode_streams",
    "encode_with_indexes",
    "get_scale_table",
    "pmf_to_quantized_cdf",
]
