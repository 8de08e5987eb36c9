"""A factorised-prior audio codec over strided 1-D convolutions (``factorized-1d``).

The image codec of Ballé et al. 2017/2018 (arXiv:1611.01704, arXiv:1802.01436) with 1-D layers:
a waveform ``[B, C, T]`` in [-1, 1] goes through three stride-4 convolutions with GDN (total stride
64), its latent is coded with a learned per-channel density, and the synthesis mirrors it. It is
small and fast to train, the smallest codec that exercises the audio path end to end (file →
chunks → entropy coder → container → file); the learned audio codecs of the audio issue build on
the same pieces.
"""
from __future__ import annotations

from torch import nn

from lnc.codecs.base import AudioCodec
from lnc.codecs.factorized import FactorizedPriorMixin
from lnc.codecs.layers import GDN, conv, deconv
from lnc.codecs.registry import register


@register
class FactorizedPrior1d(FactorizedPriorMixin, AudioCodec):
    """Waveform codec with a factorised prior; ``channels`` audio channels coded together (a mono
    codec codes each channel of a stereo file as its own batch item).

    Args:
        N, M: hidden and latent channels.
        channels: audio channels of the input.
        rate_points: trained rate points (gain vectors); 0 for a fixed-rate codec.
    """

    architecture = "factorized-1d"
    stream_strides = {"y": 64}
    value_range = (-1.0, 1.0)

    def __init__(self, N: int = 64, M: int = 32, channels: int = 1, rate_points: int = 0) -> None:
        super().__init__(rate_points)
        self.config.update(N=N, M=M, channels=channels)
        self.channels = channels
        self.g_a = nn.Sequential(
            conv(channels, N, 9, 4, dim=1), GDN(N), conv(N, N, 9, 4, dim=1), GDN(N), conv(N, M, 9, 4, dim=1)
        )
        self.g_s = nn.Sequential(
            deconv(M, N, 9, 4, dim=1),
            GDN(N, inverse=True),
            deconv(N, N, 9, 4, dim=1),
            GDN(N, inverse=True),
            deconv(N, channels, 9, 4, dim=1),
        )
        self._build_prior(M, rate_points)
