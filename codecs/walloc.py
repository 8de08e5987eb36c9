"""WaLLoC's body, shared by its image and audio codecs.

Jacobellis & Yadwadkar 2025, "Learned Compression for Compressed Learning" (DCC 2025,
arXiv:2412.09405): a wavelet packet transform does the work of the deep analysis transform, so the
encoder left is a single linear layer, cheap enough for sensors and for training in the compressed
domain; a small decoder undoes it. Here the latent goes through lnc's learned factorised prior
(Ballé et al. 2018, arXiv:1802.01436) instead of WaLLoC's 8-bit images (compared on the same
latents in :mod:`lnc.tools.eval.walloc_baseline`)::

    x ─WPT(J)─► X ─1×1 conv─► y ─(×gain)─► Q ─► EntropyBottleneck ─► ŷ ─(×inverse gain)─┐
    x̂ ◄─WPT⁻¹─ X̂ ◄─ residual blocks ◄─ 1×1 conv to the packet channels ◄─────────────────┘

The decoder's residual blocks start at zero (their last convolutions are zero-initialised), so an
untrained codec is a linear autoencoder around the packet transform and training adds the
non-linear corrections. The packet coefficients are scaled by a fixed ``coefficient_scale`` before
the encoder (and the latents by its inverse before the decoder), so that from the first step the
rate points' rounding steps (the initial gains span 0.3–3) lie around the ones a trained model
uses, in the signal's own units. Unscaled, a rounding step is the whole range of an image: the
encoder's weights must first grow by orders of magnitude, and Adam's small steps took thousands
of steps to do it (Kodak at 16 dB after 2,000 steps); scaled to single 8-bit levels, every rate
point started above 4 bpp and the gains took as long to come down. Unlike WaLLoC the encoder has no clamp: the entropy model bounds the
latents' range, and the 8-bit baseline clamps on its own.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from lnc.codecs.base import Codec, single_threaded
from lnc.codecs.factorized import FactorizedPriorMixin
from lnc.codecs.layers import apply_gain
from lnc.codecs.layers.blocks import CONV, ResidualBlock, Scale
from lnc.codecs.layers.wavelets import WaveletPacket
from lnc.entropy.errors import InputError

class InversePacket(nn.Module):
    """:meth:`WaveletPacket.inverse` as a layer, so the synthesis ``g_s`` ends in it."""

    def __init__(self, packet: WaveletPacket) -> None:
        super().__init__()
        self.packet = packet

    def forward(self, coefficients: Tensor) -> Tensor:
        return self.packet.inverse(coefficients)


def wavelet_autoencoder(
    channels: int, levels: int, hidden: int, M: int, blocks: int, dim: int, scale: float, kernel_size: int = 3
) -> tuple[nn.Sequential, nn.Sequential]:
    """WaLLoC's ``g_a`` (packet transform, ×``scale``, 1×1 convolution to ``M`` latents) and ``g_s`` (÷``scale``,
    1×1 convolution back to the packet bands, ``blocks`` residual blocks of ``hidden`` channels, inverse
    packet) for ``channels``-channel signals with ``dim`` spatial dimensions."""
    if not 1 <= levels <= 10:
        raise ValueError(f"levels must lie in 1..10, got {levels}")
    conv = CONV[dim]
    packet = WaveletPacket(levels, dim)
    bands = packet.channels(channels)
    g_a = nn.Sequential(packet, Scale(scale), conv(bands, M, 1))
    g_s = nn.Sequential(
        Scale(1 / scale),
        conv(M, bands, 1),
        *(ResidualBlock(bands, hidden, kernel_size, dim) for _ in range(blocks)),
        InversePacket(packet),
    )
    return g_a, g_s


class IntegerLatentsMixin:
    """The compressed-domain verbs of a WaLLoC codec: :meth:`encode_latents` gives the integer latents
    its stream codes and :meth:`decode_latents` the samples :meth:`decompress` gives for them, for
    learning on the latents (WaLLoC's use). Mixed into a codec with ``g_a``, ``g_s`` and a ``gain``,
    before the codec's base class; a subclass says how ``y`` becomes integers and back."""

    signal_dims: ClassVar[int]
    """Spatial dimensions of the signal: 1 for waveforms, 2 for images."""

    def _integers(self, latents: dict[str, Tensor], q: Tensor) -> Tensor:
        """The int32 latents that the stream codes for :meth:`analyse`'s ``latents``."""
        raise NotImplementedError

    def _values(self, integers: Tensor) -> Tensor:
        """The quantised ``ŷ`` of :meth:`_integers`' output."""
        raise NotImplementedError

    def _check_input(self: Codec, x: Tensor) -> None:
        factor = self.downsampling
        if x.dim() != self.signal_dims + 2 or any(s % factor for s in x.shape[2:]):
            raise InputError(
                f"{self.architecture} codes [B, C, {'T' if self.signal_dims == 1 else 'H, W'}] with sizes "
                f"multiples of {factor}, got {tuple(x.shape)}"
            )

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        self._check_input(x)
        return super().analyse(x, q)

    def encode_latents(self: Codec, x: Tensor, quality: Tensor | float | None = None) -> Tensor:
        """The integer latents ``[B, M, *size/2^J]`` (int32) that :meth:`compress` codes for ``x``.
        Computed on one CPU thread like :meth:`compress`, so that they are its symbols exactly."""
        q = self.quality_tensor(quality, x.shape[0], x.device)
        with torch.no_grad(), single_threaded(x.device):
            return self._integers(self.analyse(x, q), q)

    def decode_latents(self: Codec, latents: Tensor, quality: Tensor | float | None = None) -> Tensor:
        """The samples that :meth:`decompress` gives for the integer latents of :meth:`encode_latents`."""
        channels = self.config["M"]
        if latents.dim() != self.signal_dims + 2 or latents.shape[1] != channels:
            raise InputError(
                f"latents must be [B, {channels}, ...] with {self.signal_dims} spatial dimension(s), "
                f"got {tuple(latents.shape)}"
            )
        if latents.is_floating_point() or latents.is_complex():
            raise InputError(f"latents must be integers, got {latents.dtype}")
        q = self.quality_tensor(quality, latents.shape[0], latents.device)
        with torch.no_grad(), single_threaded(latents.device):
            y_hat = self._values(latents)
            return self.g_s(apply_gain(self.gain, y_hat, q, inverse=True)).clamp_(*self.value_range)


class WaveletPacketCodecMixin(IntegerLatentsMixin, FactorizedPriorMixin):
    """Mixed into an :class:`~lnc.codecs.base.ImageCodec` or :class:`~lnc.codecs.base.AudioCodec`
    (after this mixin in the bases): builds ``g_a``, ``g_s`` and the factorised prior in :meth:`_build`;
    the integer latents are the rounded ``y`` less each channel's median."""

    kernel_size: ClassVar[int] = 3
    """Kernel of the decoder's residual convolutions."""
    coefficient_scale: ClassVar[float]
    """Packet coefficients times this are the encoder's input: it sets the rounding step, in the
    signal's units, that the rate points start around."""

    def _build(self: Codec, channels: int, levels: int, N: int, M: int, blocks: int, rate_points: int) -> None:
        """The transforms of a ``channels``-channel signal: ``levels`` packet levels, ``M`` latent
        channels, ``blocks`` residual blocks of ``N`` hidden channels; the stream's stride is ``2^levels``."""
        self.config.update(N=N, M=M, levels=levels, blocks=blocks)
        # The stride depends on the configuration, so this instance declares its own.
        self.stream_strides = {"y": 2**levels}
        self.g_a, self.g_s = wavelet_autoencoder(
            channels, levels, N, M, blocks, self.signal_dims, self.coefficient_scale, self.kernel_size
        )
        self._build_prior(M, rate_points)

    def _integers(self, latents: dict[str, Tensor], q: Tensor) -> Tensor:
        y = latents["y"]
        return self.entropy_bottleneck.quantize(y, "symbols", self.entropy_bottleneck.broadcast_medians(y.dim()))

    def _values(self, integers: Tensor) -> Tensor:
        return self.entropy_bottleneck.dequantize(integers, self.entropy_bottleneck.broadcast_medians(integers.dim()))
