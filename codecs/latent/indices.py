"""Codebook indices coded through the range coder, with one of three priors.

A vector quantiser leaves an index map ``[B, h, w]`` over ``K`` codebook entries. The index map is
coded with

* ``uniform``: every index costs ``log2 K`` bits (what Mao et al. 2024, arXiv:2307.08265, assume);
* ``factorized``: one learned distribution over the entries (the codebook's skewed usage);
* ``context``: the map split into the four phases of its 2×2 grid, coded in four passes (no raster
  loop); the first pass with the factorized distribution, every later one with a distribution per
  index that a small network predicts from the codebook vectors of the indices already decoded
  around it (the checkerboard idea of He et al. 2021, arXiv:2103.15306, extended to four passes as in
  ELIC's spatial context, He et al. 2022, arXiv:2203.10886).

The context network runs on the exact path (:func:`~lnc.codecs.layers.exact.exact_forward`) and its
logits become tables through :func:`~lnc.codecs.layers.exact.portable_exp` and portable quantisation,
so a decoder on any machine rebuilds the encoder's tables from the decoded indices. All passes append
to one stream per batch item.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.layers.exact import exact_forward, portable_exp
from lnc.entropy.categorical import CategoricalModel

IndexPrior = Literal["uniform", "factorized", "context"]
INDEX_PRIORS = ("uniform", "factorized", "context")
PHASES = ((0, 0), (1, 1), (0, 1), (1, 0))
"""The 2×2 grid's phases (row, column parity) in coding order: the diagonal first, so the second
pass sees four decoded neighbours around each index and the last two see six."""
LOGIT_FLOOR = -30.0
"""Logits below the row's maximum by more than this get the same (minimal) frequency."""


def phase_masks(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """``[4, H, W]`` bool: the positions of each pass."""
    rows = torch.arange(height, device=device)[:, None] % 2
    cols = torch.arange(width, device=device)[None, :] % 2
    return torch.stack([(rows == r) & (cols == c) for r, c in PHASES])


def context_network(dim: int, num_codes: int, hidden: int) -> nn.Sequential:
    """Codebook vectors of decoded neighbours and their mask (``dim + 1`` channels) → ``num_codes``
    logits per position: 5×5, 3×3 and 1×1 convolutions with ReLUs, which the exact path runs."""
    return nn.Sequential(
        nn.Conv2d(dim + 1, hidden, 5, padding=2), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, num_codes, 1),
    )


def portable_pmfs(logits: Tensor) -> Tensor:
    """Unnormalised float64 pmfs from exact logits ``[..., K]``, the same on every machine."""
    logits = logits.to(torch.float64)
    return portable_exp((logits - logits.amax(-1, keepdim=True)).clamp_min(LOGIT_FLOOR))


class PriorIndexCodec(LatentCodec):
    """What the index codecs share: a factorized model, an optional context network, the prior in
    use and one stream; fixed-length coding as a uniform categorical model."""

    def __init__(self, categorical: CategoricalModel, context: nn.Module | None, prior: IndexPrior, stream: str) -> None:
        if prior not in INDEX_PRIORS:
            raise ValueError(f"prior must be one of {INDEX_PRIORS}, got {prior!r}")
        if prior == "context" and context is None:
            raise ValueError("the context prior needs a context network")
        self.categorical = categorical
        self.context = context
        self.prior = prior
        self.streams = (stream,)

    def _uniform(self) -> CategoricalModel:
        """Fixed-length codes: every index ``log2 K`` bits."""
        model = CategoricalModel(self.categorical.num_symbols, probs=torch.ones(self.categorical.num_symbols))
        model.update()
        return model

    def _uniform_likelihoods(self, y: Tensor) -> dict[str, Tensor]:
        return {self.streams[0]: torch.full(y.shape, 1.0 / self.categorical.num_symbols, device=y.device)}


class IndexLatentCodec(PriorIndexCodec):
    """Codes an index map ``[B, h, w]`` into one stream with a chosen prior (module docstring).

    Args:
        categorical: the factorized distribution over the ``K`` entries.
        context: :func:`context_network` of these entries (needed for ``"context"``).
        embed: indices ``[B, h, w]`` → codebook vectors ``[B, D, h, w]``.
        prior: ``"uniform"``, ``"factorized"`` or ``"context"``.
        stream: the stream's name.
    """

    def __init__(
        self,
        categorical: CategoricalModel,
        context: nn.Module | None,
        embed: Callable[[Tensor], Tensor],
        prior: IndexPrior = "context",
        stream: str = "indices",
    ) -> None:
        super().__init__(categorical, context, prior, stream)
        self.embed = embed

    def _context_input(self, indices: Tensor, known: Tensor) -> Tensor:
        """The codebook vectors where ``known`` ``[B, h, w]`` (zeros elsewhere) and the mask."""
        mask = known.unsqueeze(1).to(torch.float32)
        return torch.cat([self.embed(indices).float() * mask, mask], dim=1)

    def _logits(self, indices: Tensor, known: Tensor) -> Tensor:
        """Per-position logits ``[B, h, w, K]`` given the indices where ``known``."""
        return exact_forward(self.context, self._context_input(indices, known)).movedim(1, -1)

    def forward(self, y: Tensor, side: object = None) -> tuple[Tensor, dict[str, Tensor]]:
        """The likelihood of each index of ``y`` ``[B, h, w]`` under the prior (what training
        minimises); the indices pass through."""
        name = self.streams[0]
        if self.prior == "uniform":
            return y, self._uniform_likelihoods(y)
        likelihoods = self.categorical(y)
        if self.prior == "factorized":
            return y, {name: likelihoods}
        masks = phase_masks(*y.shape[1:], device=y.device)
        known = torch.cat([masks[:k].any(0).expand_as(y) for k in range(1, len(PHASES))])
        # Passes 2–4 in one batched call: pass k sees the phases before it.
        logits = self._logits(y.repeat(len(PHASES) - 1, 1, 1), known)
        predicted = self.categorical(y.repeat(len(PHASES) - 1, 1, 1), logits=logits).reshape(-1, *y.shape)
        for k in range(1, len(PHASES)):
            likelihoods = torch.where(masks[k], predicted[k - 1], likelihoods)
        return y, {name: likelihoods}

    def compress(self, y: Tensor, side: object, encoders: Encoders) -> Tensor:
        encs = encoders[self.streams[0]]
        if self.prior != "context":
            model = self._uniform() if self.prior == "uniform" else self.categorical
            return model.compress_into(encs, y)
        masks = phase_masks(*y.shape[1:], device=y.device)
        for k in range(len(PHASES)):
            rows, cols = torch.nonzero(masks[k], as_tuple=True)
            symbols = y[:, rows, cols]
            if not len(rows):
                continue
            if k == 0:
                self.categorical.compress_into(encs, symbols)
                continue
            known = masks[:k].any(0).expand_as(y)
            pmfs = portable_pmfs(self._logits(y, known)[:, rows, cols])
            self.categorical.compress_into(encs, symbols, pmfs=pmfs)
        return y

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: object) -> Tensor:
        decs = decoders[self.streams[0]]
        height, width = shapes[self.streams[0]]
        if self.prior != "context":
            model = self._uniform() if self.prior == "uniform" else self.categorical
            return model.decompress_from(decs, (height, width))
        device = next(self.context.parameters()).device
        y = torch.zeros(len(decs), height, width, dtype=torch.int64, device=device)
        masks = phase_masks(height, width, device=device)
        for k in range(len(PHASES)):
            rows, cols = torch.nonzero(masks[k], as_tuple=True)
            if not len(rows):
                continue
            if k == 0:
                y[:, rows, cols] = self.categorical.decompress_from(decs, (len(rows),)).to(device)
                continue
            known = masks[:k].any(0).expand_as(y)
            pmfs = portable_pmfs(self._logits(y, known)[:, rows, cols])
            y[:, rows, cols] = self.categorical.decompress_from(decs, (len(rows),), pmfs=pmfs).to(device)
        return y
