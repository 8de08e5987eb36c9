"""Composable latent codecs: how a latent becomes symbols in named streams, and back."""
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.latent.channel_groups import ChannelGroupsLatentCodec
from lnc.codecs.latent.checkerboard import CheckerboardConv2d, CheckerboardLatentCodec, checkerboard_mask
from lnc.codecs.latent.factorized import EntropyBottleneckLatentCodec
from lnc.codecs.latent.gaussian import GaussianConditionalLatentCodec
from lnc.codecs.latent.hyperprior import HyperpriorLatentCodec

__all__ = [
    "ChannelGroupsLatentCodec",
    "CheckerboardConv2d",
    "CheckerboardLatentCodec",
    "EntropyBottleneckLatentCodec",
    "GaussianConditionalLatentCodec",
    "HyperpriorLatentCodec",
    "LatentCodec",
    "checkerboard_mask",
]
