"""A learned transform codec for speech and music over an MDCT front end (``mdct-hyperprior``).

The classical transform codecs (AAC, Opus CELT, Vorbis) quantise MDCT coefficients with hand-made
band energies and psychoacoustic allocation; here learned transforms take their place, as the seed
paper on adaptive transform coding suggests, around a mean-scale hyperprior (Minnen et al. 2018,
arXiv:1809.02736) through ``lnc.entropy``::

    x ─MDCT(H)─► X ─conv, residual blocks─► y ─(×gain)─► Q ─► GaussianConditional(σ, μ) ─► ŷ
    x̂ ◄─MDCT⁻¹── X̂ ◄─conv, residual blocks─ (×inverse gain) ◄────────────────────────────┘
                      y ─h_a (stride 4)─► z ─► EntropyBottleneck ─► ẑ ─h_s─► σ, μ

The MDCT (:mod:`lnc.codecs.layers.mdct`) packs ``H`` samples into a frame of ``H`` coefficients,
so every learned layer runs at the frame rate (86 frames/s at 44.1 kHz for ``H = 512``): the whole
codec costs a few MFLOPs per second of audio and trains on a CPU. The transforms are convolutions
over frames (kernel 3, so each latent sees its neighbours), which learn the per-band allocation
that the rate term and the multi-scale mel distortion ask for. The model works at one
``sample_rate``; the audio pipeline resamples other rates to it and back. Variable rate from one
model by gain units (Cui et al. 2021, arXiv:2003.02012); the entropy parameters run on the exact
path so every machine selects the same tables.
"""
from __future__ import annotations

from torch import nn

from lnc.codecs.base import AudioCodec
from lnc.codecs.hyperprior import HyperpriorMixin
from lnc.codecs.layers import conv, deconv
from lnc.codecs.layers.blocks import ResidualBlock, Scale
from lnc.codecs.layers.mdct import MDCT, InverseMDCT
from lnc.codecs.registry import register


@register
class MDCTHyperprior(HyperpriorMixin, AudioCodec):
    """MDCT, learned frame transforms, mean-scale hyperprior (module docstring).

    Args:
        hop: MDCT hop ``H`` (frames of ``2H`` samples, ``H`` coefficients per channel and frame).
        N: hidden channels of the transforms.
        M: latent channels per frame.
        hyper: channels of the hyper latent ``z``.
        blocks: residual blocks in each transform.
        channels: audio channels coded together (1: a stereo file is coded as mid and side).
        sample_rate: the rate the model was trained at; other rates are resampled to it.
        rate_points: trained rate points (gain vectors); 0 for a fixed-rate codec.
        mixed_quantization, exact_entropy: as for the image hyperpriors.
    """

    architecture = "mdct-hyperprior"
    stream_strides = {"z": 2048, "y": 512}  # 4·hop and hop at the default hop; each instance sets its own
    value_range = (-1.0, 1.0)
    joint_stereo = True
    coefficient_scale = 16.0
    """MDCT coefficients are multiplied by this before the encoder, so that at gain 1 a rounding step is
    about 1/16 of full scale in the coefficients' own units from the first step."""

    def __init__(
        self, hop: int = 512, N: int = 256, M: int = 256, hyper: int = 64, blocks: int = 2, channels: int = 1,
        sample_rate: int = 44100, rate_points: int = 0, mixed_quantization: bool = True, exact_entropy: bool = True,
    ) -> None:
        super().__init__(rate_points)
        self.config.update(hop=hop, N=N, M=M, hyper=hyper, blocks=blocks, channels=channels, sample_rate=sample_rate)
        self._set_exact_entropy(exact_entropy)
        self.channels = channels
        self.sample_rate = sample_rate
        self.stream_strides = {"z": 4 * hop, "y": hop}
        bands = channels * hop
        mdct = MDCT(hop)
        self.g_a = nn.Sequential(
            mdct, Scale(self.coefficient_scale), conv(bands, N, 3, 1, dim=1),
            *(ResidualBlock(N, N, 3, 1) for _ in range(blocks)), nn.SiLU(), conv(N, M, 3, 1, dim=1),
        )
        self.g_s = nn.Sequential(
            conv(M, N, 3, 1, dim=1), *(ResidualBlock(N, N, 3, 1) for _ in range(blocks)), nn.SiLU(),
            conv(N, bands, 3, 1, dim=1), Scale(1.0 / self.coefficient_scale), InverseMDCT(mdct),
        )
        self.h_a = nn.Sequential(
            conv(M, hyper, 3, 1, dim=1), nn.LeakyReLU(inplace=True),
            conv(hyper, hyper, 5, 2, dim=1), nn.LeakyReLU(inplace=True), conv(hyper, hyper, 5, 2, dim=1),
        )
        self.h_s = nn.Sequential(
            deconv(hyper, M, 5, 2, dim=1), nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2, 5, 2, dim=1), nn.LeakyReLU(inplace=True), conv(M * 3 // 2, M * 2, 3, 1, dim=1),
        )
        self._build_entropy_models(hyper, M, rate_points, mixed_quantization)
        self.latent_codec = self._hyperprior(self.y_gaussian)
