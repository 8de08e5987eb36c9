"""Factorized-prior image codec (``bmshj2018-factorized``).

Ballé, Minnen, Singh, Hwang & Johnston 2018, "Variational image compression with a scale
hyperprior" (arXiv:1802.01436), baseline model; the transform is Ballé et al. 2017
(arXiv:1611.01704)::

    x ─g_a─► y ─(×gain)─► Q ─► EntropyBottleneck ─► ŷ ─(×inverse gain)─g_s─► x̂
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from lnc.codecs.base import ImageCodec
from lnc.codecs.gain import GainUnit
from lnc.codecs.image.transforms import analysis_transform, synthesis_transform
from lnc.entropy.bottleneck import EntropyBottleneck


class FactorizedPrior(ImageCodec):
    """Each latent channel coded with its own learned, input-independent density."""

    architecture = "bmshj2018-factorized"
    downsampling = 16

    def __init__(self, N: int = 128, M: int = 192, rate_points: int = 0) -> None:
        super().__init__(rate_points)
        self.config.update(N=N, M=M)
        self.g_a = analysis_transform(N, M)
        self.g_s = synthesis_transform(N, M)
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.gain = GainUnit(rate_points, M, init_range=(0.3, 3.0)) if rate_points else None

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        y = self.g_a(x)
        return {"y": y * self.gain.gain(q) if self.gain is not None else y}

    def _decode(self, y_hat: Tensor, q: Tensor) -> Tensor:
        return self.g_s(y_hat * self.gain.inverse_gain(q) if self.gain is not None else y_hat)

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        y_hat, y_likelihoods = self.entropy_bottleneck(latents["y"])
        return {"x_hat": self._decode(y_hat, q), "likelihoods": {"y": y_likelihoods}}

    def compress(
        self, x: Tensor, quality: Tensor | float | None = None, latents: dict[str, Tensor] | None = None
    ) -> dict[str, Any]:
        q = self.quality_tensor(quality, x.shape[0], x.device)
        y = self._latents(x, q, latents)["y"]
        return {"strings": {"y": self.entropy_bottleneck.compress(y)}, "shape": tuple(y.shape[-2:])}

    def decompress(
        self, strings: dict[str, list[bytes]], shape: tuple[int, int], quality: Tensor | float | None = None
    ) -> Tensor:
        y_hat = self.entropy_bottleneck.decompress(strings["y"], shape)
        q = self.quality_tensor(quality, y_hat.shape[0], y_hat.device)
        return self._decode(y_hat, q).clamp_(0, 1)
