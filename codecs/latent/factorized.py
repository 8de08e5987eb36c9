"""A latent coded with a learned factorised prior (the entropy bottleneck), needing no side information."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.entropy.bottleneck import EntropyBottleneck


class EntropyBottleneckLatentCodec(LatentCodec):
    """``y`` → :class:`~lnc.entropy.bottleneck.EntropyBottleneck` into the stream ``stream``
    (Ballé et al. 2018, arXiv:1802.01436); ``side`` is ignored."""

    def __init__(self, entropy_bottleneck: EntropyBottleneck, stream: str = "y") -> None:
        self.entropy_bottleneck = entropy_bottleneck
        self.streams = (stream,)

    def forward(self, y: Tensor, side: Any = None) -> tuple[Tensor, dict[str, Tensor]]:
        y_hat, likelihoods = self.entropy_bottleneck(y)
        return y_hat, {self.streams[0]: likelihoods}

    def compress(self, y: Tensor, side: Any, encoders: Encoders) -> Tensor:
        return self.entropy_bottleneck.compress_into(encoders[self.streams[0]], y)

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Any = None) -> Tensor:
        stream = self.streams[0]
        return self.entropy_bottleneck.decompress_from(decoders[stream], shapes[stream])
