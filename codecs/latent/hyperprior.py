"""A hyperprior: side latent ``z`` coded first, whose reconstruction conditions the main latent ``y``."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec


class HyperpriorLatentCodec(LatentCodec):
    """Latents ``{"y": …, "z": …}``: ``z`` through ``hyper`` (no side information), then ``y``
    through ``main`` with the side ``parameters(ẑ, side)`` (Ballé et al. 2018, arXiv:1802.01436).

    ``z`` and ``y`` stay separate latents rather than ``z = h_a(y)`` inside, so an encoder may
    choose both (refinement optimises them jointly, Yang et al. 2020, arXiv:2006.04240).
    """

    def __init__(self, hyper: LatentCodec, main: LatentCodec, parameters: Callable[[Tensor, Any], Any]) -> None:
        self.hyper = hyper
        self.main = main
        self.parameters = parameters
        self.streams = hyper.streams + main.streams

    def forward(self, y: dict[str, Tensor], side: Any) -> tuple[Tensor, dict[str, Tensor]]:
        z_hat, z_likelihoods = self.hyper(y["z"], None)
        y_hat, y_likelihoods = self.main(y["y"], self.parameters(z_hat, side))
        return y_hat, {**y_likelihoods, **z_likelihoods}

    def compress(self, y: dict[str, Tensor], side: Any, encoders: Encoders) -> Tensor:
        # The encoder conditions y on ẑ exactly as the decoder will reconstruct it.
        z_hat = self.hyper.compress(y["z"], None, encoders)
        return self.main.compress(y["y"], self.parameters(z_hat, side), encoders)

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Any) -> Tensor:
        z_hat = self.hyper.decompress(decoders, shapes, None)
        return self.main.decompress(decoders, shapes, self.parameters(z_hat, side))
