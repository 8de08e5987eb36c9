"""Mean-scale hyperprior with a checkerboard context model (He et al. 2021, arXiv:2103.15306).

The hyperprior codec of ``mbt2018-mean`` around :class:`~lnc.codecs.latent.CheckerboardLatentCodec`:
anchors are coded with the hyperprior alone, the other half of ``y`` also sees the decoded anchors
around it (a 5×5 convolution that only reads anchor positions); both passes go into one stream::

    ẑ ─h_s─► hyper ─────────────────────────────────┬─► hyper + context_fusion(hyper, ctx) ─► σ, μ
    decoded anchors ─context_prediction─► ctx ──────┘      (ctx = 0 at the anchors themselves)

``context_fusion``'s last layer starts at zero, so the entropy parameters start as the
hyperprior's: a model grown from trained ``mbt2018-mean`` weights (``lnc train
--model.init_weights``) starts out coding exactly as they did.
"""
from __future__ import annotations

from torch import Tensor, nn

from lnc.codecs.image.hyperprior import MeanScaleHyperprior
from lnc.codecs.latent import CheckerboardConv2d, CheckerboardLatentCodec
from lnc.codecs.registry import register


@register
class CheckerboardMeanScale(MeanScaleHyperprior):
    """``mbt2018-mean`` plus a two-pass checkerboard context; bitstreams carry ``z`` and ``y``
    (files written before both passes shared a stream carry ``y_anchor`` and ``y_other`` instead,
    and still decode). Takes the same N, M and rate points."""

    architecture = "he2021-checkerboard"
    legacy_streams = (("z", "y_anchor", "y_other"),)
    grows_from = {"mbt2018-mean": ("context_prediction.", "context_fusion.")}
    half_precision = (*MeanScaleHyperprior.half_precision, "context_prediction.", "context_fusion.")

    def __init__(
        self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False,
        exact_entropy: bool = False,
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        self.context_prediction = CheckerboardConv2d(M, 2 * M)
        self.context_fusion = nn.Sequential(
            nn.Conv2d(4 * M, 10 * M // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(10 * M // 3, 8 * M // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(8 * M // 3, 2 * M, 1),
        )
        nn.init.zeros_(self.context_fusion[-1].weight)
        nn.init.zeros_(self.context_fusion[-1].bias)
        context = CheckerboardLatentCodec(
            self.y_gaussian, self.context_prediction, self.context_fusion, run=self.entropy_path
        )
        self.latent_codec = self._hyperprior(context)

    def hyper_side(self, z_hat: Tensor, q: Tensor) -> Tensor:  # type: ignore[override]
        """The hyperprior's features, which the checkerboard context refines into scales and means."""
        return self.hyper_features(z_hat, q)
