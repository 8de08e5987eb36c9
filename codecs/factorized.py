"""The factorised-prior body shared by codecs of every modality (Ballé et al. 2018, arXiv:1802.01436)::

    x ─g_a─► y ─(×gain)─► Q ─► EntropyBottleneck ─► ŷ ─(×inverse gain)─g_s─► x̂
"""
from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from lnc.codecs.base import Codec, Decoders, Encoders
from lnc.codecs.latent import EntropyBottleneckLatentCodec
from lnc.codecs.layers import GainUnit, apply_gain
from lnc.entropy.bottleneck import EntropyBottleneck


class FactorizedPriorMixin:
    """Mixed into a :class:`~lnc.codecs.base.Codec` that sets ``g_a`` and ``g_s`` and calls
    :meth:`_build_prior`: each latent channel coded with its own learned, input-independent density
    into the stream ``y``."""

    value_range: ClassVar[tuple[float, float]]
    """The reconstruction is clamped to this range."""
    g_a: nn.Module
    g_s: nn.Module

    def _build_prior(self: Codec, M: int, rate_points: int) -> None:
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.gain = GainUnit(rate_points, M, init_range=(0.3, 3.0)) if rate_points else None
        self.latent_codec = EntropyBottleneckLatentCodec(self.entropy_bottleneck, "y")

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        return {"y": apply_gain(self.gain, self.g_a(x), q)}

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        y_hat, likelihoods = self.latent_codec(latents["y"], None)
        return {"x_hat": self.g_s(apply_gain(self.gain, y_hat, q, inverse=True)), "likelihoods": likelihoods}

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        self.latent_codec.compress(latents["y"], None, encoders)

    def read_streams(self, decoders: Decoders, shapes: dict[str, tuple[int, ...]], q: Tensor) -> Tensor:
        y_hat = self.latent_codec.decompress(decoders, shapes, None)
        return self.g_s(apply_gain(self.gain, y_hat, q, inverse=True)).clamp_(*self.value_range)
