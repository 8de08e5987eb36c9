"""Hyperprior image codecs: scale hyperprior (``bmshj2018-hyperprior``) and mean-scale
hyperprior (``mbt2018-mean``).

Ballé et al. 2018 (arXiv:1802.01436) send side information ``z`` that predicts the scale of each
latent; Minnen, Ballé & Toderici 2018 (arXiv:1809.02736, without the autoregressive context)
predict a mean as well::

    x ─g_a─► y ─(×gain)───────────────► Q ─► GaussianConditional(σ, μ) ─► ŷ ─(×inverse gain)─g_s─► x̂
                 └─h_a─► z ─(×gain)─► Q ─► EntropyBottleneck ─► ẑ ─(×inverse gain)─h_s─► σ, μ
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lnc.codecs.base import ImageCodec
from lnc.codecs.hyperprior import HyperpriorMixin
from lnc.codecs.image.transforms import analysis_transform, synthesis_transform
from lnc.codecs.layers import conv, deconv
from lnc.codecs.registry import register


def _hyper_analysis(M: int, N: int, activation: type[nn.Module]) -> nn.Sequential:
    """``y`` → ``z``: a 3×3 convolution then two stride-2 5×5 ones (total stride 4)."""
    return nn.Sequential(
        conv(M, N, 3, 1), activation(inplace=True), conv(N, N), activation(inplace=True), conv(N, N)
    )


class _Hyperprior(HyperpriorMixin, ImageCodec):
    """Shared body of the hyperprior codecs; subclasses define ``h_a``, ``h_s``, the parameters
    and set ``latent_codec`` (usually :meth:`_hyperprior` around a codec of ``y``).

    Args:
        N, M: channels of the hyper latent ``z`` and of the latent ``y``.
        rate_points: number of trained rate points (gain vectors); 0 for a fixed-rate codec.
        mixed_quantization: in training, ``g_s`` gets the latents rounded with a straight-through
            gradient while the rate keeps the noise proxy (Minnen & Singh 2020, arXiv:2007.08739),
            so the synthesis learns on what it will decode. Evaluation and coding are unchanged.
        exact_entropy: compute the entropy parameters (``h_s``, any context model, the hyper gain)
            with exact sums on a dyadic grid (:mod:`lnc.codecs.layers.exact`), so every machine
            and thread count selects the same CDF tables; trained with that grid in the loop.
    """

    stream_strides = {"z": 64, "y": 16}
    value_range = (0.0, 1.0)

    def __init__(
        self, N: int, M: int, rate_points: int, mixed_quantization: bool = False, exact_entropy: bool = False
    ) -> None:
        super().__init__(rate_points)
        self.config.update(N=N, M=M)
        self._set_exact_entropy(exact_entropy)
        self.g_a = analysis_transform(N, M)
        self.g_s = synthesis_transform(N, M)
        self._build_entropy_models(N, M, rate_points, mixed_quantization)


@register
class ScaleHyperprior(_Hyperprior):
    """Scale hyperprior: ``z`` predicts the standard deviation of each latent (zero mean)."""

    architecture = "bmshj2018-hyperprior"

    def __init__(
        self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False,
        exact_entropy: bool = False,
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        self.h_a = _hyper_analysis(M, N, nn.ReLU)
        self.h_s = nn.Sequential(
            deconv(N, N),
            nn.ReLU(inplace=True),
            deconv(N, N),
            nn.ReLU(inplace=True),
            conv(N, M, 3, 1),
            nn.ReLU(inplace=True),
        )
        self.latent_codec = self._hyperprior(self.y_gaussian)

    def _hyper_input(self, y: Tensor) -> Tensor:
        return torch.abs(y)

    def hyper_side(self, z_hat: Tensor, q: Tensor) -> tuple[Tensor, None]:
        """Scales (zero means)."""
        return self.entropy_path(self.h_s, self.hyper_input(z_hat, q)), None


@register
class MeanScaleHyperprior(_Hyperprior):
    """Mean-scale hyperprior: ``z`` predicts a mean and a standard deviation per latent."""

    architecture = "mbt2018-mean"

    def __init__(
        self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False,
        exact_entropy: bool = False,
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        self.h_a = _hyper_analysis(M, N, nn.LeakyReLU)
        self.h_s = nn.Sequential(
            deconv(N, M),
            nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2),
            nn.LeakyReLU(inplace=True),
            conv(M * 3 // 2, M * 2, 3, 1),
        )
        self.latent_codec = self._hyperprior(self.y_gaussian)
