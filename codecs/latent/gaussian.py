"""A latent coded with a Gaussian (or Laplace) conditional whose scales and means come as side information."""
from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.entropy.gaussian import LocationScaleConditional

Parameters = tuple[Tensor, Tensor | None]
"""Scales and means (None: zero-mean) of every element of the latent."""


class GaussianConditionalLatentCodec(LatentCodec):
    """``y`` ~ N(μ, σ) elementwise, ``side = (σ, μ)``, coded around μ (or its integer, with the
    conditional's ``mean_offsets``) with the tables of σ (and μ's offset).

    Args:
        conditional: the entropy model (its scale table chooses each element's CDF).
        stream: the stream the symbols go to.
        mixed_quantization: in training, the returned latent is rounded with a straight-through
            gradient while the likelihoods keep the noise proxy (Minnen & Singh 2020,
            arXiv:2007.08739), so the synthesis learns on what it will decode.
    """

    def __init__(self, conditional: LocationScaleConditional, stream: str = "y", mixed_quantization: bool = False) -> None:
        self.conditional = conditional
        self.streams = (stream,)
        self.mixed_quantization = mixed_quantization

    def forward(self, y: Tensor, side: Parameters) -> tuple[Tensor, dict[str, Tensor]]:
        scales, means = side
        y_hat, likelihoods = self.conditional(y, scales, means=means)
        if self.mixed_quantization and self.conditional.training:
            y_hat = self.conditional.quantize(y, "ste", means)
        return y_hat, {self.streams[0]: likelihoods}

    def compress(self, y: Tensor, side: Parameters, encoders: Encoders) -> Tensor:
        scales, means = side
        indexes = self.conditional.build_indexes(scales, means)
        return self.conditional.compress_into(encoders[self.streams[0]], y, indexes, means)

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Parameters) -> Tensor:
        scales, means = side
        indexes = self.conditional.build_indexes(scales, means)
        return self.conditional.decompress_from(decoders[self.streams[0]], indexes, scales.dtype, means)
