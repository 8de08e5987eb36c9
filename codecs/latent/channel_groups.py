"""Channel groups (slices): a latent coded group after group, each conditioned on the ones before.

Minnen & Singh 2020, "Channel-wise autoregressive entropy models" (arXiv:2007.08739); the uneven
groups of He et al. 2022 (ELIC, arXiv:2203.10886) and MLIC's channel context build on it. Every
group appends to the same streams, so a tile with many groups is still one stream per name.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec


class ChannelGroupsLatentCodec(LatentCodec):
    """``y`` split along channels into ``groups``; group ``k`` goes through ``codecs[k]`` with the
    side ``parameters(k, side, decoded)``, ``decoded`` being the groups before it as the decoder
    sees them.

    Args:
        groups: channels of each group, summing to the latent's channels.
        codecs: one latent codec per group (usually writing to the same stream).
        parameters: the side information of group ``k`` from the outer side and earlier groups.
    """

    def __init__(
        self,
        groups: Sequence[int],
        codecs: Sequence[LatentCodec],
        parameters: Callable[[int, Any, list[Tensor]], Any],
    ) -> None:
        if len(groups) != len(codecs) or not groups:
            raise ValueError(f"{len(groups)} groups for {len(codecs)} latent codecs")
        self.groups = [int(g) for g in groups]
        self.codecs = list(codecs)
        self.parameters = parameters
        self.streams = tuple(dict.fromkeys(s for codec in codecs for s in codec.streams))

    def forward(self, y: Tensor, side: Any) -> tuple[Tensor, dict[str, Tensor]]:
        decoded: list[Tensor] = []
        likelihoods: dict[str, list[Tensor]] = {}
        for k, (part, codec) in enumerate(zip(y.split(self.groups, 1), self.codecs)):
            part_hat, part_likelihoods = codec(part, self.parameters(k, side, decoded))
            decoded.append(part_hat)
            for name, value in part_likelihoods.items():
                likelihoods.setdefault(name, []).append(value)
        return torch.cat(decoded, 1), {name: torch.cat(values, 1) for name, values in likelihoods.items()}

    def compress(self, y: Tensor, side: Any, encoders: Encoders) -> Tensor:
        decoded: list[Tensor] = []
        for k, (part, codec) in enumerate(zip(y.split(self.groups, 1), self.codecs)):
            decoded.append(codec.compress(part, self.parameters(k, side, decoded), encoders))
        return torch.cat(decoded, 1)

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Any) -> Tensor:
        decoded: list[Tensor] = []
        for k, codec in enumerate(self.codecs):
            decoded.append(codec.decompress(decoders, shapes, self.parameters(k, side, decoded)))
        return torch.cat(decoded, 1)
