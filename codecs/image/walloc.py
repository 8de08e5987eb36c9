"""WaLLoC for RGB images (``walloc``): Jacobellis & Yadwadkar 2025 (arXiv:2412.09405), body in
:mod:`lnc.codecs.walloc`.

Defaults follow the paper's RGB codecs: ``J = 3`` packet levels turn 3 channels into 192 at 1/8 of
the resolution, and ``M = 48`` latent channels reduce the dimension 4× (the paper's 4× point,
``/work/shared/anchors/walloc``; its 16× point is ``M = 12``).
"""
from __future__ import annotations

import torch
from torch import Tensor

from lnc.codecs.base import ImageCodec
from lnc.codecs.image.hyperprior import MeanScaleHyperprior
from lnc.codecs.registry import register
from lnc.codecs.walloc import IntegerLatentsMixin, WaveletPacketCodecMixin, wavelet_autoencoder


@register
class WaLLoC(WaveletPacketCodecMixin, ImageCodec):
    """Wavelet packet, linear encoder, factorised prior, small residual decoder, inverse packet.

    Args:
        N: hidden channels of the decoder's residual blocks.
        M: latent channels (WaLLoC's ``latent_dim``).
        levels: packet levels ``J``; sizes are padded to multiples of ``2^J``.
        blocks: residual blocks of the decoder.
        rate_points: trained rate points (gain vectors); 0 for a fixed-rate codec.
    """

    architecture = "walloc"
    stream_strides = {"y": 8}  # 2^levels at the default levels; each instance sets its own
    value_range = (0.0, 1.0)
    signal_dims = 2
    coefficient_scale = 16.0  # at gain 1 a rounding step is 16 8-bit levels of an orthonormal coefficient

    def __init__(self, N: int = 192, M: int = 48, levels: int = 3, blocks: int = 2, rate_points: int = 0) -> None:
        super().__init__(rate_points)
        self._build(3, levels, N, M, blocks, rate_points)


@register
class WaLLoCHyperprior(IntegerLatentsMixin, MeanScaleHyperprior):
    """WaLLoC's transforms with a mean-scale hyperprior (Minnen et al. 2018) on their latents.

    The factorised prior of :class:`WaLLoC` cannot see the latents' spatial correlation, which a
    lossless image coder finds (lossless WebP of the same latents beat it by 1.4–2.2× on Kodak), and
    one density per channel must serve every rate point. Here ``z``, at a quarter of the latent
    resolution, predicts each latent's mean and scale, per rate point. The means are rounded to
    integers (straight through in training), so ``ŷ = round(y)`` whatever ``z`` says: the latents
    stay WaLLoC's plain integers, which :meth:`decode_latents` reads without ``z`` and an image coder
    can store, and the stream codes the same values the 8-bit baseline does.

    Args:
        N: channels of the hyper latent ``z``.
        M: latent channels (WaLLoC's ``latent_dim``).
        hidden: channels of the decoder's residual blocks.
        levels: packet levels ``J``; sizes are padded to multiples of ``4·2^J``.
        blocks: residual blocks of the decoder.
        rate_points, mixed_quantization, exact_entropy: as for :class:`MeanScaleHyperprior`.
    """

    architecture = "walloc-hyperprior"
    stream_strides = {"z": 32, "y": 8}  # at the default levels; each instance sets its own
    value_range = WaLLoC.value_range
    signal_dims = 2

    def __init__(
        self, N: int = 128, M: int = 48, hidden: int = 192, levels: int = 3, blocks: int = 2, rate_points: int = 0,
        mixed_quantization: bool = False, exact_entropy: bool = False,
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        self.config.update(hidden=hidden, levels=levels, blocks=blocks)
        self.stream_strides = {"z": 4 * 2**levels, "y": 2**levels}
        self.g_a, self.g_s = wavelet_autoencoder(3, levels, hidden, M, blocks, 2, WaLLoC.coefficient_scale)

    def hyper_side(self, z_hat: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        """Scales and integer means."""
        scales, means = super().hyper_side(z_hat, q)
        return scales, means + (torch.round(means) - means).detach()

    def _integers(self, latents: dict[str, Tensor], q: Tensor) -> Tensor:
        z = latents["z"]
        z_hat = self.entropy_bottleneck.quantize(z, "dequantize", self.entropy_bottleneck.broadcast_medians(z.dim()))
        means = self.hyper_side(z_hat, q)[1]
        return self.gaussian_conditional.quantize(latents["y"], "symbols", means) + means.to(torch.int32)

    def _values(self, integers: Tensor) -> Tensor:
        return integers.float()
