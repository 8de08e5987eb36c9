"""Shallow decoders: a mean-scale hyperprior with a heavy analysis and a one- or two-layer synthesis
(Yang & Mandt 2023, "Computationally-efficient neural image compression with shallow decoders",
ICCV 2023, arXiv:2304.06244).

The decoder's cost is the synthesis plus the hyperprior's ``h_s``; the paper cuts the synthesis to
a few thousand multiply-adds per pixel and moves the capacity into the encoder, whose analysis is
ELIC's (He et al. 2022, arXiv:2203.10886)::

    x ─ELIC analysis─► y ─► the mean-scale hyperprior of mbt2018-mean (h_a, h_s, entropy models) ─► ŷ
    ŷ ─► "JPEG-like":  one 18×18 stride-16 transposed convolution: overlapping basis patches
    ŷ ─┬─ 13×13 stride-8 transposed conv ─► IGDN ─┐
       └─ 13×13 stride-8 transposed conv (linear) ─⊕─► 5×5 stride-2 transposed conv ─► x̂   ("two-layer")

Everything but ``g_a`` and ``g_s`` is :class:`~lnc.codecs.image.hyperprior.MeanScaleHyperprior`'s:
the hyper transforms, gain units, entropy path and coding. The two syntheses are two registered
architectures rather than one option, so a weights file or bitstream names the decoder it needs
and ``lnc models`` lists both. With ELIC's analysis they share no layer with ``mbt2018-mean``;
with its GDN analysis (the CPU configuration) they grow from its trained encoder and hyperprior.

As in the paper (and its code, mandt-lab/shallow-ntc), the hyper latent ``z`` has as many channels
as ``y`` (N = M = 320) and the analysis is 192 wide. The two-layer synthesis's residual branch
upsamples ``ŷ`` to the hidden layer, where it adds a linear path to the IGDN one: about 1.3 M
parameters at M = 320, nearly all in the two 13×13 kernels. IGDN is lnc's GDN (the paper's code
uses the cheaper GDN1 of Johnston et al. 2019, arXiv:1912.08771: |x| for x², no square root).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from lnc.codecs.image.hyperprior import MeanScaleHyperprior
from lnc.codecs.image.transforms import analysis_transform
from lnc.codecs.layers import GDN, conv, deconv
from lnc.codecs.registry import register


class ResidualBottleneck(nn.Module):
    """``x + 1×1 → ReLU → 3×3 → ReLU → 1×1``, through half the channels: ELIC's residual bottleneck
    block, and the residual unit of Cheng et al.'s attention (2020, arXiv:2001.01568)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, half, 1), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(half, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class AttentionBlock(nn.Module):
    """Cheng et al.'s simplified attention (2020, arXiv:2001.01568), as ELIC uses it:
    ``x + trunk(x) · sigmoid(mask(x))``, each branch three rectified residual units, so the block
    learns where to spend the analysis's capacity."""

    def __init__(self, channels: int) -> None:
        super().__init__()

        def units() -> list[nn.Module]:
            return [layer for _ in range(3) for layer in (ResidualBottleneck(channels), nn.ReLU(inplace=True))]

        self.trunk = nn.Sequential(*units())
        self.mask = nn.Sequential(*units(), nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


def heavy_analysis(N: int, M: int) -> nn.Sequential:
    """ELIC's analysis (He et al. 2022, arXiv:2203.10886): four 5×5 stride-2 convolutions (RGB →
    ``M`` channels at 1/16 resolution, ``N`` wide in between), three residual bottleneck blocks after
    each of the first three and attention after the second and the last."""

    def blocks(channels: int) -> list[nn.Module]:
        return [ResidualBottleneck(channels) for _ in range(3)]

    return nn.Sequential(
        conv(3, N), *blocks(N),
        conv(N, N), *blocks(N), AttentionBlock(N),
        conv(N, N), *blocks(N),
        conv(N, M), AttentionBlock(M),
    )


def patch_deconv(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.ConvTranspose2d:
    """A transposed convolution whose output is exactly ``stride`` times its input, for any kernel
    at least ``stride`` wide: the overhang ``kernel_size − stride`` is cropped half on each side, so
    each input's patch lies centred on its ``stride``×``stride`` block and overlaps its neighbours.
    (:func:`~lnc.codecs.layers.deconv`'s padding leaves the last rows without any input once the
    kernel is wider than twice the stride plus one.)"""
    overhang = kernel_size - stride
    padding = (overhang + 1) // 2
    return nn.ConvTranspose2d(
        in_channels, out_channels, kernel_size, stride, padding=padding, output_padding=2 * padding - overhang
    )


class TwoLayerSynthesis(nn.Module):
    """``ŷ`` (``M`` channels) → RGB at 16×: a 13×13 stride-8 transposed convolution to ``hidden``
    channels and IGDN, plus a linear 13×13 stride-8 one (the paper's residual connection), then a
    5×5 stride-2 transposed convolution to RGB."""

    def __init__(self, M: int, hidden: int = 12) -> None:
        super().__init__()
        self.hidden = patch_deconv(M, hidden, 13, 8)
        self.igdn = GDN(hidden, inverse=True)
        self.residual = patch_deconv(M, hidden, 13, 8)
        self.output = deconv(hidden, 3)

    def forward(self, y: Tensor) -> Tensor:
        return self.output(self.igdn(self.hidden(y)) + self.residual(y))


ANALYSES = {"elic": heavy_analysis, "gdn": analysis_transform}
"""The analyses a shallow codec can have: ELIC's (the paper's) or mbt2018-mean's four GDN convolutions."""


class ShallowHyperprior(MeanScaleHyperprior):
    """The mean-scale hyperprior with a heavy analysis and the synthesis :meth:`shallow_synthesis`
    builds; subclasses choose it.

    With ``analysis="gdn"`` and ``analysis_width == N`` every layer but ``g_s`` is ``mbt2018-mean``'s,
    so ``--model.init_weights mbt2018-mean-vr`` starts from the shipped encoder and hyperprior and
    trains a new synthesis (a CPU configuration: ELIC's analysis is too slow to train there).

    Args:
        N, M: channels of ``z`` and ``y`` (the paper: 320 and 320).
        analysis_width: channels inside the analysis (the paper: 192).
        analysis: ``"elic"`` (the paper's) or ``"gdn"`` (``mbt2018-mean``'s).
        rate_points, mixed_quantization, exact_entropy: as for ``mbt2018-mean``.
    """

    grows_from = {"mbt2018-mean": ("g_s.",)}  # with the "gdn" analysis: a new synthesis on its encoder

    def __init__(
        self, N: int = 320, M: int = 320, analysis_width: int = 192, rate_points: int = 0,
        mixed_quantization: bool = False, exact_entropy: bool = False, analysis: str = "elic",
    ) -> None:
        super().__init__(N, M, rate_points, mixed_quantization, exact_entropy)
        if analysis not in ANALYSES:
            raise ValueError(f"analysis must be one of {', '.join(ANALYSES)}, got {analysis!r}")
        self.config.update(analysis_width=analysis_width)
        if analysis != "elic":
            self.config.update(analysis=analysis)
        self.g_a = ANALYSES[analysis](analysis_width, M)
        self.g_s = self.shallow_synthesis(M)

    @staticmethod
    def shallow_synthesis(M: int) -> nn.Module:
        """``ŷ`` (``M`` channels) → RGB at 16× the resolution."""
        raise NotImplementedError


@register
class ShallowJPEGLike(ShallowHyperprior):
    """The "JPEG-like" synthesis: one 18×18 stride-16 transposed convolution, so each latent
    vector adds a learned combination of ``M`` basis patches, overlapping their neighbours by one
    pixel on each side (≈ 1.2 K multiply-adds per pixel at M = 320)."""

    architecture = "yang2023-shallow-jpeglike"

    @staticmethod
    def shallow_synthesis(M: int) -> nn.Module:
        return patch_deconv(M, 3, 18, 16)


@register
class ShallowTwoLayer(ShallowHyperprior):
    """The two-layer synthesis with its residual connection (:class:`TwoLayerSynthesis`, 12 hidden
    channels: ≈ 5.3 K multiply-adds per pixel at M = 320)."""

    architecture = "yang2023-shallow-2layer"

    @staticmethod
    def shallow_synthesis(M: int) -> nn.Module:
        return TwoLayerSynthesis(M)
