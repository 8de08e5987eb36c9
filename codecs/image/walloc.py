"""WaLLoC for RGB images (``walloc``): Jacobellis & Yadwadkar 2025 (arXiv:2412.09405), body in
:mod:`lnc.codecs.walloc`.

Defaults follow the paper's RGB codecs: ``J = 3`` packet levels turn 3 channels into 192 at 1/8 of
the resolution, and ``M = 48`` latent channels reduce the dimension 4× (the paper's 4× point,
``/work/shared/anchors/walloc``; its 16× point is ``M = 12``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lnc.codecs.base import ImageCodec
from lnc.codecs.image.hyperprior import MeanScaleHyperprior
from lnc.codecs.latent import GaussianConditionalLatentCodec
from lnc.codecs.layers import conv, deconv
from lnc.codecs.registry import register
from lnc.codecs.walloc import IntegerLatentsMixin, WaveletPacketCodecMixin, wavelet_autoencoder
from lnc.entropy.gaussian import GaussianConditional, get_scale_table

OFFSET_SCALES_MAX = 64.0
OFFSET_SCALES_LEVELS = 48
"""The scale table with mean offsets: each scale has ``K`` tables, so it stops where WaLLoC's
latents stop (trained scales stay below about 40 at the top rate point; larger values escape)."""


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
    resolution, predicts each latent's mean and scale, per rate point. The latents are quantised on
    the integer grid, ``ŷ = round(y)`` whatever ``z`` says: they stay WaLLoC's plain integers, which
    :meth:`decode_latents` reads without ``z`` and an image coder can store, and the stream codes the
    same values the 8-bit baseline does. With ``mean_offsets = K`` the means stay real-valued and
    pick one of ``K`` tables per scale by their offset from the nearest integer
    (:class:`~lnc.entropy.gaussian.GaussianConditional`); with 0 (the first shipped model) they are
    rounded to integers, straight through in training, which costs a quarter of the rate.

    Args:
        N: channels of the hyper latent ``z``.
        M: latent channels (WaLLoC's ``latent_dim``).
        hidden: channels of the decoder's residual blocks.
        levels: packet levels ``J``; sizes are padded to multiples of ``4·2^J``.
        blocks: residual blocks of the decoder.
        mean_offsets: offset bins of the real-valued means (0: integer means).
        rate_points, mixed_quantization, exact_entropy: as for :class:`MeanScaleHyperprior`.
    """

    architecture = "walloc-hyperprior"
    stream_strides = {"z": 32, "y": 8}  # at the default levels; each instance sets its own
    value_range = WaLLoC.value_range
    signal_dims = 2

    def __init__(
        self, N: int = 128, M: int = 48, hidden: int = 192, levels: int = 3, blocks: int = 2, rate_points: int = 0,
        mixed_quantization: bool = False, exact_entropy: bool = False, mean_offsets: int = 0,
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        self.config.update(hidden=hidden, levels=levels, blocks=blocks)
        self.stream_strides = {"z": 4 * 2**levels, "y": 2**levels}
        self.g_a, self.g_s = wavelet_autoencoder(3, levels, hidden, M, blocks, 2, WaLLoC.coefficient_scale)
        self.mean_offsets = int(mean_offsets)
        if self.mean_offsets:
            self.config.update(mean_offsets=self.mean_offsets)
            table = get_scale_table(max=OFFSET_SCALES_MAX, levels=OFFSET_SCALES_LEVELS)
            self.gaussian_conditional = GaussianConditional(table, mean_offsets=self.mean_offsets)
            self.y_gaussian = GaussianConditionalLatentCodec(self.gaussian_conditional, "y", mixed_quantization)
            self.latent_codec = self._hyperprior(self.y_gaussian)

    def hyper_side(self, z_hat: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
        """Scales and means (rounded to integers without ``mean_offsets``)."""
        scales, means = super().hyper_side(z_hat, q)
        if self.mean_offsets:
            return scales, means
        return scales, means + (torch.round(means) - means).detach()

    def _integers(self, latents: dict[str, Tensor], q: Tensor) -> Tensor:
        z = latents["z"]
        z_hat = self.entropy_bottleneck.quantize(z, "dequantize", self.entropy_bottleneck.broadcast_medians(z.dim()))
        means = self.gaussian_conditional.centres(self.hyper_side(z_hat, q)[1])
        return self.gaussian_conditional.quantize(latents["y"], "symbols", means) + means.to(torch.int32)

    def _values(self, integers: Tensor) -> Tensor:
        return integers.float()


@register
class WaLLoCFastHyperprior(WaLLoCHyperprior):
    """:class:`WaLLoCHyperprior` with hyper transforms as cheap as WaLLoC's encoder.

    The mean-scale hyperprior's ``h_a`` and ``h_s`` take about 1.1 G and 0.57 G multiply-adds on a
    Kodak image, four times the packet transform and the linear encoder together, and ``h_s`` runs
    on the exact path (float64 sums). Here ``h_a`` is two 3×3 convolutions at stride 2 and ``h_s`` a
    3×3 stride-2 transposed convolution and a 2×2 one, which gives each 2×2 block of latents its
    parameters from one position without overlap (0.06 G and 0.05 G multiply-adds at ``N = 64``),
    so the whole encoder stays within a few times WaLLoC's. The means are real-valued
    (``mean_offsets`` tables per scale), which more than pays for the lighter transforms. Grown from
    a trained ``walloc-hyperprior``: its packet transform, encoder, decoder and gains carry over, the
    hyperprior starts afresh.

    Args: as for :class:`WaLLoCHyperprior`.
    """

    architecture = "walloc-fast"
    grows_from = {
        "walloc-hyperprior": ("h_a.", "h_s.", "hyper_gain.", "entropy_bottleneck.", "gaussian_conditional.")
    }
    grown_options = ("N", "mean_offsets")

    def __init__(
        self, N: int = 64, M: int = 48, hidden: int = 192, levels: int = 3, blocks: int = 2, rate_points: int = 0,
        mixed_quantization: bool = False, exact_entropy: bool = False, mean_offsets: int = 16,
    ) -> None:
        super().__init__(N, M, hidden, levels, blocks, rate_points, mixed_quantization, exact_entropy, mean_offsets)
        self.h_a = nn.Sequential(conv(M, N, 3), nn.LeakyReLU(inplace=True), conv(N, N, 3))
        self.h_s = nn.Sequential(deconv(N, N, 3), nn.LeakyReLU(inplace=True), nn.ConvTranspose2d(N, M * 2, 2, stride=2))
