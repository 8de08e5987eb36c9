"""The interface of latent codecs: pieces that code one latent (or a tree of them) into named streams.

After CompressAI's ``latent_codecs`` (Bégaint et al. 2020, arXiv:2011.03029): a latent codec knows
how to turn a latent into likelihoods for training, into symbols appended to range encoders for
coding, and back. Latent codecs nest (a hyperprior around a checkerboard around a Gaussian
conditional) and are plain objects over modules their codec owns, so a codec's state dict keeps
CompressAI's flat names (``entropy_bottleneck.*``, ``h_s.*``) and shipped weights load unchanged.

Every method takes ``side``: what conditions the latent (Gaussian parameters, a hyperprior's
output, the quality of a variable-rate codec); its type is the latent codec's own.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from lnc.codecs.base import Decoders, Encoders


class LatentCodec:
    """Codes a latent into the streams named in :attr:`streams`."""

    streams: tuple[str, ...] = ()

    def forward(self, y: Any, side: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """Training and evaluation pass: the quantised (or noisy) latent that synthesis sees, and
        the likelihoods of every coded element by stream name."""
        raise NotImplementedError

    def compress(self, y: Any, side: Any, encoders: Encoders) -> Tensor:
        """Append the quantised latent to ``encoders``; return it as the decoder will see it."""
        raise NotImplementedError

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Any) -> Tensor:
        """Read the latent back from ``decoders`` in the order :meth:`compress` wrote it."""
        raise NotImplementedError

    def __call__(self, y: Any, side: Any) -> tuple[Tensor, dict[str, Tensor]]:
        return self.forward(y, side)
