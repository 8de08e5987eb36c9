"""Hyperprior image codecs: scale hyperprior (``bmshj2018-hyperprior``) and mean-scale
hyperprior (``mbt2018-mean``).

Ballé et al. 2018 (arXiv:1802.01436) send side information ``z`` that predicts the scale of each
latent; Minnen, Ballé & Toderici 2018 (arXiv:1809.02736, without the autoregressive context)
predict a mean as well::

    x ─g_a─► y ─(×gain)───────────────► Q ─► GaussianConditional(σ, μ) ─► ŷ ─(×inverse gain)─g_s─► x̂
                 └─h_a─► z ─(×gain)─► Q ─► EntropyBottleneck ─► ẑ ─(×inverse gain)─h_s─► σ, μ
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lnc.codecs.base import ImageCodec
from lnc.codecs.gain import GainUnit
from lnc.codecs.image.transforms import analysis_transform, synthesis_transform
from lnc.codecs.layers import conv, deconv
from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy.gaussian import GaussianConditional


def _apply(unit: GainUnit | None, which: str, t: Tensor, q: Tensor) -> Tensor:
    return t if unit is None else t * getattr(unit, which)(q)


def _hyper_analysis(M: int, N: int, activation: type[nn.Module]) -> nn.Sequential:
    """``y`` → ``z``: a 3×3 convolution then two stride-2 5×5 ones (total stride 4)."""
    return nn.Sequential(
        conv(M, N, 3, 1), activation(inplace=True), conv(N, N), activation(inplace=True), conv(N, N)
    )


class _Hyperprior(ImageCodec):
    """Shared body of the hyperprior codecs; subclasses define ``h_a``, ``h_s`` and the parameters.

    Args:
        N, M: channels of the hyper latent ``z`` and of the latent ``y``.
        rate_points: number of trained rate points (gain vectors); 0 for a fixed-rate codec.
        mixed_quantization: in training, ``g_s`` gets the latents rounded with a straight-through
            gradient while the rate keeps the noise proxy (Minnen & Singh 2020, arXiv:2007.08739),
            so the synthesis learns on what it will decode. Evaluation and coding are unchanged.
    """

    def __init__(self, N: int, M: int, rate_points: int, mixed_quantization: bool = False) -> None:
        super().__init__(rate_points)
        self.config.update(N=N, M=M)
        self.mixed_quantization = mixed_quantization
        self.g_a = analysis_transform(N, M)
        self.g_s = synthesis_transform(N, M)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.gain = GainUnit(rate_points, M, init_range=(0.3, 3.0)) if rate_points else None
        self.hyper_gain = GainUnit(rate_points, N) if rate_points else None

    def _hyper_input(self, y: Tensor) -> Tensor:
        return y

    def entropy_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor | None]:
        """Scales and means (or None) of the Gaussian over ``y`` predicted from ``ẑ``."""
        raise NotImplementedError

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        y = _apply(self.gain, "gain", self.g_a(x), q)
        z = _apply(self.hyper_gain, "gain", self.h_a(self._hyper_input(y)), q)
        return {"y": y, "z": z}

    def _parameters_from(self, z_hat: Tensor, q: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.entropy_parameters(_apply(self.hyper_gain, "inverse_gain", z_hat, q))

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        z_hat, z_likelihoods = self.entropy_bottleneck(latents["z"])
        scales, means = self._parameters_from(z_hat, q)
        return self._training_output(latents["y"], scales, means, q, z_likelihoods)

    def _training_output(
        self, y: Tensor, scales: Tensor, means: Tensor | None, q: Tensor, z_likelihoods: Tensor
    ) -> dict[str, Any]:
        """``forward``'s result once the Gaussian over ``y`` is known."""
        y_hat, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        if self.mixed_quantization and self.training:
            # The rate keeps its noisy proxy; g_s sees the rounded latents it will decode from.
            y_hat = self.gaussian_conditional.quantize(y, "ste", means)
        x_hat = self.g_s(_apply(self.gain, "inverse_gain", y_hat, q))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def _code_z(
        self, x: Tensor, quality: Tensor | float | None, latents: dict[str, Tensor] | None
    ) -> tuple[Tensor, Tensor, list[bytes], Tensor]:
        """The first half of :meth:`compress`: qualities, ``y``, the strings of ``z`` and ``ẑ`` as the
        decoder will decode it (the encoder must derive the Gaussian over ``y`` from that, too)."""
        q = self.quality_tensor(quality, x.shape[0], x.device)
        latents = self._latents(x, q, latents)
        z_strings = self.entropy_bottleneck.compress(latents["z"])
        z_hat = self.entropy_bottleneck.decompress(z_strings, latents["z"].shape[-2:])
        return q, latents["y"], z_strings, z_hat

    def compress(
        self, x: Tensor, quality: Tensor | float | None = None, latents: dict[str, Tensor] | None = None
    ) -> dict[str, Any]:
        q, y, z_strings, z_hat = self._code_z(x, quality, latents)
        scales, means = self._parameters_from(z_hat, q)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means)
        return {"strings": {"z": z_strings, "y": y_strings}, "shape": tuple(z_hat.shape[-2:])}

    def decompress(
        self, strings: dict[str, list[bytes]], shape: tuple[int, int], quality: Tensor | float | None = None
    ) -> Tensor:
        z_hat = self.entropy_bottleneck.decompress(strings["z"], shape)
        q = self.quality_tensor(quality, z_hat.shape[0], z_hat.device)
        scales, means = self._parameters_from(z_hat, q)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_hat = self.gaussian_conditional.decompress(strings["y"], indexes, dtype=z_hat.dtype, means=means)
        return self.g_s(_apply(self.gain, "inverse_gain", y_hat, q)).clamp_(0, 1)


class ScaleHyperprior(_Hyperprior):
    """Scale hyperprior: ``z`` predicts the standard deviation of each latent (zero mean)."""

    architecture = "bmshj2018-hyperprior"

    def __init__(self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False) -> None:
        super().__init__(N, M, rate_points, mixed_quantization)
        self.h_a = _hyper_analysis(M, N, nn.ReLU)
        self.h_s = nn.Sequential(
            deconv(N, N),
            nn.ReLU(inplace=True),
            deconv(N, N),
            nn.ReLU(inplace=True),
            conv(N, M, 3, 1),
            nn.ReLU(inplace=True),
        )

    def _hyper_input(self, y: Tensor) -> Tensor:
        return torch.abs(y)

    def entropy_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.h_s(z_hat), None


class MeanScaleHyperprior(_Hyperprior):
    """Mean-scale hyperprior: ``z`` predicts a mean and a standard deviation per latent."""

    architecture = "mbt2018-mean"

    def __init__(self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False) -> None:
        super().__init__(N, M, rate_points, mixed_quantization)
        self.h_a = _hyper_analysis(M, N, nn.LeakyReLU)
        self.h_s = nn.Sequential(
            deconv(N, M),
            nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2),
            nn.LeakyReLU(inplace=True),
            conv(M * 3 // 2, M * 2, 3, 1),
        )

    def entropy_parameters(self, z_hat: Tensor) -> tuple[Tensor, Tensor | None]:
        scales, means = self.h_s(z_hat).chunk(2, 1)
        return scales, means
