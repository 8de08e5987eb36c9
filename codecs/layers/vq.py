"""Vector quantisers: a latent vector becomes the index of its nearest codebook entry.

* :class:`VectorQuantizer`, the plain VQ of van den Oord et al. 2017 (arXiv:1711.00937): a learned
  codebook, the straight-through estimator, codebook and commitment losses.
* :class:`SimVQ` (Zhu et al. 2024, arXiv:2411.02038): the codebook is a fixed random basis times one
  learned linear map, so every entry moves with every gradient and (almost) none is left unused.
* :class:`CodebookSet`: explicit codebooks, one per rate point, as codebook reduction leaves them
  (Mao et al. 2024, arXiv:2307.08265: k-means of the trained codebook to fewer entries, then
  codebook-only fine-tuning).

All three give ``forward(z, point) -> (z_q, indices, loss)`` on channel-first latents
``[B, D, *spatial]``, ``assign(z, point)`` (the indices alone) and ``lookup(indices, point)``. With
``normalize`` latents and entries are projected onto the unit sphere before they are compared
(Yu et al. 2022, "Vector-quantized image modeling with improved VQGAN", arXiv:2110.04627): the
distance becomes the cosine, no entry is out of reach for being too short, and far more of the
codebook stays in use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


NEAREST_CHUNK = 1 << 24
"""Distances computed at once (vectors × entries), bounding :func:`nearest_rows`'s memory to 64 MB."""


def nearest_rows(vectors: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest codebook row (squared Euclidean distance) for each row of ``vectors``
    ``[N, D]``; int64 ``[N]``. Ties go to the lower index."""
    flat = vectors.detach().float()
    book = codebook.detach().float()
    norms = book.pow(2).sum(1)[None, :]  # ‖z‖² is the same for every entry
    rows = max(1, NEAREST_CHUNK // book.size(0))
    # In float32 whatever the autocast: bfloat16's 8-bit significand ties most distances, and ties
    # go to the lowest index, which collapses the codebook onto its first entries.
    with torch.autocast(flat.device.type, enabled=False):
        out = [(norms - 2.0 * part @ book.t()).argmin(1) for part in flat.split(rows)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=flat.device)


def nearest(z: Tensor, codebook: Tensor) -> Tensor:
    """:func:`nearest_rows` of each vector of channel-first latents ``z`` ``[B, D, *spatial]``:
    int64 ``[B, *spatial]``."""
    return nearest_rows(z.movedim(1, -1).reshape(-1, z.size(1)), codebook).reshape(z.size(0), *z.shape[2:])


def quantize(z: Tensor, codebook: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(z_q, indices, loss)``: the nearest entries with straight-through gradients to ``z``, and
    the codebook loss ‖sg(z) − e‖² plus ``beta`` times the commitment loss ‖z − sg(e)‖²."""
    indices = nearest(z, codebook)
    chosen = F.embedding(indices, codebook).movedim(-1, 1).to(z.dtype)
    loss = F.mse_loss(chosen, z.detach()) + beta * F.mse_loss(z, chosen.detach())
    return z + (chosen - z).detach(), indices, loss


def usage(indices: Tensor, num_codes: int) -> dict[str, float]:
    """Codebook usage of ``indices``: the fraction of entries used and the perplexity
    ``2^H`` of the empirical index distribution (``num_codes`` when every entry is equally used)."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=num_codes).double()
    p = counts[counts > 0] / counts.sum()
    return {"used": float((counts > 0).double().mean()), "perplexity": float(torch.exp2(-(p * p.log2()).sum()))}


class VectorQuantizer(nn.Module):
    """Plain VQ with a learned codebook ``[num_codes, dim]``.

    Args:
        num_codes: codebook size ``K``.
        dim: vector dimension ``D``.
        beta: weight of the commitment loss (0.25 in the paper).
        normalize: compare and reconstruct unit vectors (module docstring).
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, normalize: bool = False) -> None:
        super().__init__()
        self.beta = beta
        self.normalize = normalize
        self.embedding = nn.Parameter(torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes))

    @property
    def sizes(self) -> list[int]:
        """Codebook size of each rate point (one)."""
        return [self.embedding.size(0)]

    def codebook(self, point: int = 0) -> Tensor:
        """The stored entries ``[K, D]`` (what training and reduction change)."""
        return self.embedding

    def entries(self, point: int = 0) -> Tensor:
        """The entries latents are compared with and decoded from."""
        return F.normalize(self.codebook(point), dim=1) if self.normalize else self.codebook(point)

    def prepare(self, z: Tensor) -> Tensor:
        """Latents ``[B, D, *spatial]`` as they are compared with the entries."""
        return F.normalize(z, dim=1) if self.normalize else z

    def assign(self, z: Tensor, point: int = 0) -> Tensor:
        """The index of each latent's nearest entry, ``[B, *spatial]``."""
        return nearest(self.prepare(z), self.entries(point))

    def lookup(self, indices: Tensor, point: int = 0) -> Tensor:
        """The entries of ``indices`` ``[B, *spatial]`` as latents ``[B, D, *spatial]``."""
        return F.embedding(indices.long(), self.entries(point)).movedim(-1, 1)

    def forward(self, z: Tensor, point: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        return quantize(self.prepare(z), self.entries(point), self.beta)


class SimVQ(VectorQuantizer):
    """VQ whose codebook is ``C W``: a frozen random basis ``C`` ``[K, D]`` (normal, variance 1/D)
    and one learned linear map ``W`` (SimVQ). The codebook loss trains ``W``, which rotates and
    scales the whole space, so unused entries follow the used ones instead of dying."""

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, normalize: bool = False) -> None:
        nn.Module.__init__(self)
        self.beta = beta
        self.normalize = normalize
        self.register_buffer("basis", torch.randn(num_codes, dim, generator=torch.Generator().manual_seed(0)) * dim**-0.5)
        self.projection = nn.Linear(dim, dim, bias=False)

    @property
    def sizes(self) -> list[int]:
        return [self.basis.size(0)]

    def codebook(self, point: int = 0) -> Tensor:
        return self.projection(self.basis)


class CodebookSet(VectorQuantizer):
    """Explicit codebooks of the given sizes, one per rate point (the smallest first): what codebook
    reduction makes of a trained quantiser, each fine-tuned with the transforms frozen."""

    def __init__(self, sizes: list[int], dim: int, beta: float = 0.25, normalize: bool = False) -> None:
        nn.Module.__init__(self)
        self.beta = beta
        self.normalize = normalize
        self.codebooks = nn.ParameterList([nn.Parameter(torch.zeros(k, dim)) for k in sizes])

    @property
    def sizes(self) -> list[int]:
        return [book.size(0) for book in self.codebooks]

    def codebook(self, point: int = 0) -> Tensor:
        return self.codebooks[point]


@torch.no_grad()
def kmeans(vectors: Tensor, weights: Tensor, k: int, iterations: int = 50, seed: int = 0) -> Tensor:
    """``k`` centroids of the rows of ``vectors`` weighted by ``weights`` (Lloyd's algorithm from
    k-means++ seeds; an emptied cluster takes the worst-served vector). For reducing a codebook,
    ``vectors`` are its entries and ``weights`` how often each was used."""
    if k >= vectors.size(0):
        return vectors.clone()
    generator = torch.Generator().manual_seed(seed)
    x, w = vectors.double(), weights.double().clamp_min(1e-9)
    centres = x[torch.multinomial(w, 1, generator=generator)]
    for _ in range(1, k):  # k-means++: the next seed with probability ∝ weight · distance²
        d = torch.cdist(x, centres).pow(2).min(1).values
        centres = torch.cat([centres, x[torch.multinomial(w * d + 1e-30, 1, generator=generator)]])
    for _ in range(iterations):
        d = torch.cdist(x, centres).pow(2)
        assign = d.argmin(1)
        mass = torch.zeros(k, dtype=x.dtype).index_add_(0, assign, w)
        sums = torch.zeros_like(centres).index_add_(0, assign, x * w[:, None])
        empty = mass == 0
        centres = torch.where(empty[:, None], centres, sums / mass.clamp_min(1e-30)[:, None])
        for c in torch.nonzero(empty).flatten():
            centres[c] = x[(w * d.min(1).values).argmax()]
    return centres.to(vectors.dtype)


class ResidualVectorQuantizer(nn.Module):
    """Residual VQ (Zeghidour et al. 2021, SoundStream, arXiv:2107.03312): stage ``s`` quantises what
    the stages before it left, so the first ``n`` stages give a coarse-to-fine code and the bitrate is
    set by how many are sent. Each stage has DAC's factorised codes (Kumar et al. 2023,
    arXiv:2306.06546): the residual is projected to ``code_dim`` dimensions, l2-normalised and looked
    up there, and the entry projected back, which keeps most of every codebook in use.

    Runs in float32 whatever the autocast: the residual of the last stages is small, and bfloat16
    would round it away.

    Args:
        stages: number of stages ``S``.
        num_codes: entries per stage ``K``.
        dim: dimension of the latent vectors.
        code_dim: dimension in which each stage looks up.
        beta: commitment-loss weight.
    """

    def __init__(self, stages: int, num_codes: int, dim: int, code_dim: int = 8, beta: float = 0.25) -> None:
        super().__init__()
        self.project_in = nn.ModuleList(nn.Conv1d(dim, code_dim, 1) for _ in range(stages))
        self.project_out = nn.ModuleList(nn.Conv1d(code_dim, dim, 1) for _ in range(stages))
        self.stages = nn.ModuleList(VectorQuantizer(num_codes, code_dim, beta, normalize=True) for _ in range(stages))

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def num_codes(self) -> int:
        return self.stages[0].sizes[0]

    def stage_vectors(self, indices: Tensor, stage: int) -> Tensor:
        """The latent contribution ``[B, dim, T]`` of stage ``stage``'s indices ``[B, T]``."""
        with torch.autocast(indices.device.type, enabled=False):
            return self.project_out[stage](self.stages[stage].lookup(indices))

    def lookup(self, indices: Tensor) -> Tensor:
        """The latent ``[B, dim, T]`` of the first ``indices.size(1)`` stages' indices ``[B, n, T]``."""
        return sum(self.stage_vectors(indices[:, s], s) for s in range(indices.size(1)))

    def assign(self, z: Tensor, count: int) -> Tensor:
        """The indices ``[B, count, T]`` of the first ``count`` stages for latents ``z`` ``[B, dim, T]``."""
        residual = z.float()
        out = []
        with torch.autocast(z.device.type, enabled=False):
            for s in range(count):
                indices = self.stages[s].assign(self.project_in[s](residual))
                residual = residual - self.stage_vectors(indices, s)
                out.append(indices)
        return torch.stack(out, 1)

    def forward(self, z: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_q, indices, loss)`` with ``counts`` ``[B]`` stages for each item: every stage is
        trained on every item (codebook and commitment losses summed over the stages), the
        reconstruction ``z_q`` keeps the item's first ``counts`` (straight-through gradients, as in
        quantiser dropout)."""
        residual = z.float()
        z_q = torch.zeros_like(residual)
        indices, loss = [], residual.new_zeros(())
        with torch.autocast(z.device.type, enabled=False):
            for s, stage in enumerate(self.stages):
                code, chosen, stage_loss = stage(self.project_in[s](residual))
                vectors = self.project_out[s](code)
                z_q = z_q + vectors * (counts > s).to(vectors.dtype)[:, None, None]
                residual = residual - vectors
                indices.append(chosen)
                loss = loss + stage_loss
        return z_q, torch.stack(indices, 1), loss
