"""Factorized-prior image codec (``bmshj2018-factorized``).

Ballé, Minnen, Singh, Hwang & Johnston 2018, "Variational image compression with a scale
hyperprior" (arXiv:1802.01436), baseline model; the transform is Ballé et al. 2017
(arXiv:1611.01704)::

    x ─g_a─► y ─(×gain)─► Q ─► EntropyBottleneck ─► ŷ ─(×inverse gain)─g_s─► x̂
"""
from __future__ import annotations

from lnc.codecs.base import ImageCodec
from lnc.codecs.factorized import FactorizedPriorMixin
from lnc.codecs.image.transforms import analysis_transform, synthesis_transform
from lnc.codecs.registry import register


@register
class FactorizedPrior(FactorizedPriorMixin, ImageCodec):
    """Each latent channel coded with its own learned, input-independent density."""

    architecture = "bmshj2018-factorized"
    stream_strides = {"y": 16}
    value_range = (0.0, 1.0)

    def __init__(self, N: int = 128, M: int = 192, rate_points: int = 0) -> None:
        super().__init__(rate_points)
        self.config.update(N=N, M=M)
        self.g_a = analysis_transform(N, M)
        self.g_s = synthesis_transform(N, M)
        self._build_prior(M, rate_points)
