"""The indices of a residual vector quantiser coded through the range coder, stage after stage.

Residual VQ leaves ``[B, S, T]`` indices: ``S`` stages over ``T`` frames. EnCodec and DAC send them
as fixed-length codes (``log2 K`` bits each); here they go through a learned prior, with

* ``uniform``: the fixed-length code, ``log2 K`` bits an index (the baseline the saving is told against);
* ``factorized``: one learned distribution per stage (its codebook's skewed usage);
* ``context``: stage 0 with its factorized distribution, every later stage ``s`` with a distribution
  per frame that a small network predicts from the latent the stages before it reconstruct, over a
  window of neighbouring frames. Each pass decodes a whole stage at once (no loop over frames):
  the decoder knows stages ``0..s-1`` of every frame before it reads stage ``s``.

The context network runs on the exact path (:func:`~lnc.codecs.layers.exact.exact_forward`) and its
logits become tables through :func:`~lnc.codecs.layers.exact.portable_exp` and portable quantisation,
as in :mod:`lnc.codecs.latent.indices`. All stages append to one stream per batch item.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.indices import IndexPrior, PriorIndexCodec, portable_pmfs
from lnc.codecs.layers.exact import exact_forward
from lnc.entropy.categorical import CategoricalModel


class StageContext(nn.Module):
    """Latent of the stages decoded so far ``[B, dim, T]`` → logits ``[B, K, T]`` of stage ``s``'s
    indices: a shared trunk (5- and 3-frame convolutions with ReLUs) and a 1×1 head per stage."""

    def __init__(self, dim: int, num_codes: int, stages: int, hidden: int = 64) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv1d(dim, hidden, 5, padding=2), nn.ReLU(), nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU()
        )
        self.heads = nn.ModuleList(nn.Conv1d(hidden, num_codes, 1) for _ in range(stages - 1))

    def features(self, partial: Tensor) -> Tensor:
        """The trunk on the exact path: ``[B, hidden, T]``."""
        return exact_forward(self.trunk, partial)

    def logits(self, features: Tensor, stage: int) -> Tensor:
        """Stage ``stage``'s (≥ 1) logits ``[B, T, K]`` from :meth:`features`."""
        return exact_forward(self.heads[stage - 1], features).movedim(1, -1)


class ResidualIndexLatentCodec(PriorIndexCodec):
    """Codes residual-VQ indices ``[B, S, T]`` into one stream with a chosen prior (module docstring);
    ``side`` is the number of stages ``S`` coded.

    Args:
        categorical: one factorized distribution per stage (``num_tables`` = stages).
        context: the :class:`StageContext` (needed for ``"context"``).
        stage_vectors: (indices ``[B, T]``, stage) → that stage's latent contribution ``[B, dim, T]``.
        prior: ``"uniform"``, ``"factorized"`` or ``"context"``.
        stream: the stream's name.
    """

    def __init__(
        self,
        categorical: CategoricalModel,
        context: StageContext | None,
        stage_vectors: Callable[[Tensor, int], Tensor],
        prior: IndexPrior = "context",
        stream: str = "indices",
    ) -> None:
        super().__init__(categorical, context, prior, stream)
        self.stage_vectors = stage_vectors

    def _stage_table(self, y: Tensor) -> Tensor:
        """Table index of every element of ``y`` ``[B, S, T]``: its stage."""
        return torch.arange(y.size(1), device=y.device)[None, :, None].expand_as(y)

    def _partials(self, y: Tensor) -> list[Tensor]:
        """The latent reconstructed by stages ``< s``, for ``s = 1 .. S-1``."""
        out, partial = [], None
        for s in range(y.size(1) - 1):
            vectors = self.stage_vectors(y[:, s], s).detach().float()
            partial = vectors if partial is None else partial + vectors
            out.append(partial)
        return out

    def forward(self, y: Tensor, side: object = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The likelihood of each index of ``y`` under the prior (what training minimises)."""
        name = self.streams[0]
        if self.prior == "uniform":
            return y, self._uniform_likelihoods(y)
        likelihoods = self.categorical(y, table_indexes=self._stage_table(y))
        if self.prior == "factorized" or y.size(1) < 2:
            return y, {name: likelihoods}
        partials = self._partials(y)
        features = self.context.features(torch.cat(partials)).chunk(len(partials))
        predicted = [self.categorical(y[:, s], logits=self.context.logits(features[s - 1], s))
                     for s in range(1, y.size(1))]
        return y, {name: torch.cat([likelihoods[:, :1], torch.stack(predicted, 1)], 1)}

    def _pmfs(self, partial: Tensor, stage: int) -> Tensor:
        """Unnormalised float64 pmfs ``[B, T, K]`` of stage ``stage``, the same on every machine."""
        return portable_pmfs(self.context.logits(self.context.features(partial), stage))

    def compress(self, y: Tensor, side: object, encoders: Encoders) -> Tensor:
        encs = encoders[self.streams[0]]
        if self.prior == "uniform":
            return self._uniform().compress_into(encs, y)
        if self.prior == "factorized":
            return self.categorical.compress_into(encs, y, self._stage_table(y))
        self.categorical.compress_into(encs, y[:, 0], torch.zeros_like(y[:, 0]))
        for s, partial in enumerate(self._partials(y), start=1):
            self.categorical.compress_into(encs, y[:, s], pmfs=self._pmfs(partial, s))
        return y

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: object) -> Tensor:
        decs = decoders[self.streams[0]]
        (frames,) = shapes[self.streams[0]]
        stages = int(side)  # type: ignore[call-overload]
        shape = (stages, frames)
        if self.prior == "uniform":
            return self._uniform().decompress_from(decs, shape)
        device = self.categorical.logits.device
        if self.prior == "factorized":
            tables = torch.arange(stages, device=device)[:, None].expand(shape)
            return self.categorical.decompress_from(decs, shape, tables.expand(len(decs), *shape))
        y = torch.zeros(len(decs), stages, frames, dtype=torch.int64, device=device)
        y[:, 0] = self.categorical.decompress_from(decs, (frames,)).to(device)
        partial = None
        for s in range(1, stages):
            vectors = self.stage_vectors(y[:, s - 1], s - 1).float()
            partial = vectors if partial is None else partial + vectors
            y[:, s] = self.categorical.decompress_from(decs, (frames,), pmfs=self._pmfs(partial, s)).to(device)
        return y
