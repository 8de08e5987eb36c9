"""Multi-reference entropy model: channel slices, each coded in two checkerboard passes.

MLIC (Jiang et al., ACM MM 2023, arXiv:2211.07273) and MLIC++ (Jiang & Wang 2023,
arXiv:2307.15421): the latent is split into channel slices, coded one after another; inside a
slice the anchors go first and the non-anchors second (He et al. 2021, arXiv:2103.15306). The mean
and scale of every pass refine a prior (the hyperprior's, or a checkerboard model's) with
corrections from several references to what is already decoded::

    slice k, anchors:      prior ─+─ anchor_parameters[side, channel(ŷ<k), global_inter(ŷ<k)]
    slice k, non-anchors:  prior ─+─ other_parameters[side, channel, global_inter,
                                                      local(anchors of k), global_intra(ŷk-1, anchors of k)]
    after slice k:         ŷk += 0.5·tanh(residual[side, channel, ŷk])   (latent residual prediction,
                                                      Minnen & Singh 2020, arXiv:2007.08739)

Decoding takes two parallel passes per slice and no serial loop over positions. Every pass appends
to the same stream, so a tile is one stream for ``y`` however many slices it has.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.latent.checkerboard import checkerboard_mask
from lnc.codecs.latent.gaussian import GaussianConditionalLatentCodec, Parameters

Prior = Callable[[Tensor, Tensor | None], Parameters]
"""``(side, anchors)`` → scales and means of the whole latent: of the anchors when ``anchors`` is
None, else of the non-anchors given an estimate of every anchor (e.g.
:meth:`~lnc.codecs.latent.CheckerboardLatentCodec.parameters`)."""
Pass = Callable[[int, Tensor, Parameters], Tensor]
"""``(slice, positions, (σ, μ) of the slice)`` → the slice at ``positions`` as the decoder sees it
(zero elsewhere)."""


@dataclass(frozen=True)
class SliceContexts:
    """The networks of one slice ``k`` (modules its codec owns). ``channel``, ``global_inter`` and
    ``global_intra`` are None for the first slice, which has nothing before it.

    Attributes:
        channel: ``ŷ<k`` (the slices before, concatenated) → channel context.
        global_inter: ``ŷ<k`` → global context across slices.
        local: the anchors of slice ``k`` (zero elsewhere) → local context, read at the non-anchors.
        global_intra: ``(ŷk-1, anchors of slice k, anchor positions)`` → global context within the
            slice (:class:`~lnc.codecs.layers.attention.LinearAttention2d`).
        anchor_parameters: ``[side, channel, global_inter]`` → a correction of the anchors' prior
            scales and means (``2C`` channels: scales, then means).
        other_parameters: ``[side, channel, global_inter, local, global_intra]`` → the same for
            the non-anchors.
        residual: ``[side, channel, ŷk]`` → the rounding residual of the slice, before its bound.
    """

    channel: nn.Module | None
    global_inter: nn.Module | None
    local: nn.Module
    global_intra: nn.Module | None
    anchor_parameters: nn.Module
    other_parameters: nn.Module
    residual: nn.Module


def _refined(network: nn.Module, features: list[Tensor], prior: Parameters) -> Parameters:
    """``prior`` plus the scales and means ``network`` predicts from ``features``."""
    scales, means = network(torch.cat(features, 1)).chunk(2, 1)
    return prior[0] + scales, prior[1] + means  # type: ignore[operator]


def _at(parameters: Parameters, positions: Tensor) -> Parameters:
    scales, means = parameters
    return scales[..., positions], means[..., positions]  # type: ignore[index]


class MultiReferenceLatentCodec(LatentCodec):
    """``y`` in channel slices of ``groups`` channels, each coded as anchors then non-anchors with
    the scales and means of ``prior`` corrected by the slice's :class:`SliceContexts`.

    Not-yet-decoded anchors of later slices enter the prior of the non-anchors as their prior
    means, so a prior that is a checkerboard model over all channels works unchanged: with zero
    corrections every anchor and the last slice's non-anchors are coded exactly as that model
    codes them, the other non-anchors nearly so.

    Args:
        gaussian: codes each pass given its scales and means; its stream receives every pass.
        groups: channels of each slice, summing to the latent's channels.
        contexts: the networks of each slice.
        prior: the scales and means the contexts correct (:data:`Prior`).
    """

    def __init__(
        self, gaussian: GaussianConditionalLatentCodec, groups: Sequence[int], contexts: Sequence[SliceContexts],
        prior: Prior,
    ) -> None:
        if len(groups) != len(contexts) or not groups:
            raise ValueError(f"{len(groups)} slices for {len(contexts)} sets of contexts")
        self.gaussian = gaussian
        self.groups = [int(g) for g in groups]
        self.bounds = [sum(self.groups[:k]) for k in range(len(self.groups) + 1)]
        self.contexts = list(contexts)
        self.prior = prior
        self.streams = gaussian.streams

    def _slice(self, t: Tensor, k: int) -> Tensor:
        return t[:, self.bounds[k] : self.bounds[k + 1]]

    def _code(self, side: Tensor, code: Pass) -> Tensor:
        """The decoded latent, slice by slice and pass by pass; ``code`` runs each pass. The one
        place that computes entropy parameters, so encoder, decoder and training agree."""
        anchor = checkerboard_mask(*side.shape[-2:], device=side.device)
        prior_scales, prior_means = self.prior(side, None)
        decoded: list[Tensor] = []
        for k, ctx in enumerate(self.contexts):
            shared = features = [side]  # shared: what the residual reads too
            if decoded:
                before = torch.cat(decoded, 1)
                shared = [side, ctx.channel(before)]  # type: ignore[misc]
                features = [*shared, ctx.global_inter(before)]  # type: ignore[misc]
            prior = (self._slice(prior_scales, k), self._slice(prior_means, k))
            anchors = code(k, anchor, _refined(ctx.anchor_parameters, features, prior))
            # Anchors of later slices are not decoded yet: their prior means stand in for them.
            estimate = torch.cat([*decoded, anchors, prior_means[:, self.bounds[k + 1] :]], 1)
            other_scales, other_means = self.prior(side, estimate)
            features = [*features, ctx.local(anchors)]
            if decoded:
                features.append(ctx.global_intra(decoded[-1], anchors, anchor))  # type: ignore[misc]
            prior = (self._slice(other_scales, k), self._slice(other_means, k))
            y_hat = anchors + code(k, ~anchor, _refined(ctx.other_parameters, features, prior))
            residual = ctx.residual(torch.cat([*shared, y_hat], 1))
            decoded.append(y_hat + 0.5 * torch.tanh(residual))
        return torch.cat(decoded, 1)

    def forward(self, y: Tensor, side: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        passes: list[Tensor] = []

        def code(k: int, positions: Tensor, parameters: Parameters) -> Tensor:
            # The contexts see each pass as decoded: rounded in evaluation and, with mixed
            # quantisation, in training too (straight through); the noise proxy otherwise.
            y_hat, likelihoods = self.gaussian(self._slice(y, k), parameters)
            passes.append(torch.where(positions, likelihoods[self.streams[0]], 0))
            return torch.where(positions, y_hat, 0)

        y_hat = self._code(side, code)
        likelihoods = torch.cat([a + b for a, b in zip(passes[::2], passes[1::2])], 1)
        return y_hat, {self.streams[0]: likelihoods}

    def compress(self, y: Tensor, side: Tensor, encoders: Encoders) -> Tensor:
        def code(k: int, positions: Tensor, parameters: Parameters) -> Tensor:
            part = self._slice(y, k)
            y_hat = torch.zeros_like(part)
            y_hat[..., positions] = self.gaussian.compress(part[..., positions], _at(parameters, positions), encoders)
            return y_hat

        return self._code(side, code)

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Tensor) -> Tensor:
        def code(k: int, positions: Tensor, parameters: Parameters) -> Tensor:
            y_hat = torch.zeros_like(parameters[0])
            y_hat[..., positions] = self.gaussian.decompress(decoders, shapes, _at(parameters, positions))
            return y_hat

        return self._code(side, code)
