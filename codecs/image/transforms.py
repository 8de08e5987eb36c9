"""The GDN analysis/synthesis pair of Ballé et al. 2017/2018, shared by the hyperprior family.

Four 5×5 stride-2 convolutions (total stride 16) with GDN between them, mirrored with IGDN and
transposed convolutions for synthesis. Layer indices match CompressAI's ``g_a``/``g_s`` so its state
dicts map one to one.
"""
from __future__ import annotations

from torch import nn

from lnc.codecs.layers import GDN, conv, deconv


def analysis_transform(N: int, M: int) -> nn.Sequential:
    """RGB → latent ``y`` with ``M`` channels at 1/16 resolution."""
    return nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))


def synthesis_transform(N: int, M: int) -> nn.Sequential:
    """Latent ``ŷ`` → RGB at 16× the resolution."""
    return nn.Sequential(
        deconv(M, N),
        GDN(N, inverse=True),
        deconv(N, N),
        GDN(N, inverse=True),
        deconv(N, N),
        GDN(N, inverse=True),
        deconv(N, 3),
    )
