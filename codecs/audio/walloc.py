"""WaLLoC for stereo audio (``walloc-stereo``, 44.1 kHz): Jacobellis & Yadwadkar 2025
(arXiv:2412.09405), body in :mod:`lnc.codecs.walloc`.

Defaults follow the paper's stereo codecs: ``J = 8`` packet levels turn 2 channels into 512 at
1/256 of the sample rate, and ``M = 108`` latent channels reduce the dimension 4.74× (the first
WaLLoC row of ``/work/shared/anchors/walloc/rd_table_audio.md``; its 18.96× row is ``M = 27``).
"""
from __future__ import annotations

from lnc.codecs.base import AudioCodec
from lnc.codecs.registry import register
from lnc.codecs.walloc import WaveletPacketCodecMixin


@register
class WaLLoCStereo(WaveletPacketCodecMixin, AudioCodec):
    """Wavelet packet, linear encoder, factorised prior, small residual decoder, inverse packet, on
    waveforms ``[B, channels, T]`` in [-1, 1] (a 2-channel codec: mono files cannot use it).

    Args:
        N: hidden channels of the decoder's residual blocks.
        M: latent channels (WaLLoC's ``latent_dim``).
        levels: packet levels ``J``; chunks are padded to multiples of ``2^J`` samples.
        blocks: residual blocks of the decoder.
        channels: audio channels of the input.
        rate_points: trained rate points (gain vectors); 0 for a fixed-rate codec.
    """

    architecture = "walloc-stereo"
    stream_strides = {"y": 256}  # 2^levels at the default levels; each instance sets its own
    value_range = (-1.0, 1.0)
    signal_dims = 1
    coefficient_scale = 32.0  # at gain 1 a rounding step is 1/32 of full scale (1024 steps of 16-bit PCM)

    def __init__(
        self, N: int = 512, M: int = 108, levels: int = 8, blocks: int = 2, channels: int = 2, rate_points: int = 0
    ) -> None:
        super().__init__(rate_points)
        self.config.update(channels=channels)
        self.channels = channels
        self._build(channels, levels, N, M, blocks, rate_points)
