"""Block motion vectors coded through the range coder, losslessly, into one stream.

Each vector of a field ``[B, 2, h, w]`` (integers, quarter pixels; :mod:`lnc.codecs.layers.motion`)
is predicted from the row above it (the median of the three vectors above it; in the first row, the
vector to its left), and the difference is coded with a learned categorical distribution, one per
rate point and component: low rates learn that vectors mostly continue their neighbours'. The
distributions do not depend on the neighbours, so every difference of a field is coded in one call;
the decoder then adds the predictions back one row at a time (a loop over rows, not over vectors).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.layers.motion import BitsFn, median_of_above
from lnc.entropy.categorical import CategoricalModel
from lnc.entropy.errors import BitstreamError


def laplace_logits(tables: int, reach: int, spread: float) -> Tensor:
    """Logits ``[tables, 2·reach + 1]`` of a two-sided geometric distribution over ``-reach..reach``
    with mean absolute value about ``spread``: a start the learned tables refine."""
    values = torch.arange(-reach, reach + 1, dtype=torch.float32).abs()
    return (-values / spread).expand(tables, -1).clone()


class MotionVectorLatentCodec(LatentCodec):
    """Codes block vectors into the stream ``stream`` (module docstring).

    Args:
        categorical: ``2 · max(rate_points, 1)`` tables over ``2 · reach + 1`` differences.
        reach: the largest difference coded, twice the largest vector (which the decoder checks).
        rate_points: the codec's rate points (0: one pair of tables).
    """

    def __init__(self, categorical: CategoricalModel, reach: int, rate_points: int, stream: str = "mv") -> None:
        if categorical.num_symbols != 2 * reach + 1 or categorical.num_tables != 2 * max(rate_points, 1):
            raise ValueError("the categorical model needs 2·reach + 1 symbols and two tables per rate point")
        self.categorical = categorical
        self.reach = reach
        self.rate_points = rate_points
        self.streams = (stream,)

    def table_indexes(self, q: Tensor, shape: tuple[int, ...]) -> Tensor:
        """The table of each difference ``[B, 2, h, w]``: two per rate point (x, y)."""
        point = (q.round().long() - 1).clamp_min(0) if self.rate_points else torch.zeros_like(q, dtype=torch.long)
        component = torch.arange(2, device=q.device).view(1, 2, 1, 1)
        return (2 * point.view(-1, 1, 1, 1) + component).expand(shape)

    def _symbols(self, vectors: Tensor) -> Tensor:
        return vectors - median_of_above(vectors) + self.reach

    def bits(self, q: Tensor) -> BitsFn:
        """What :func:`~lnc.codecs.layers.motion.estimate_motion` charges a vector: −log2 of its
        difference's probability under the tables of ``q``, per block ``[B, h, w]``."""
        log_probs = torch.log_softmax(self.categorical.logits.detach().float(), -1) / -torch.log(torch.tensor(2.0))

        def charge(vectors: Tensor, predictions: Tensor) -> Tensor:
            symbols = (vectors - predictions + self.reach).clamp(0, 2 * self.reach)
            return log_probs[self.table_indexes(q, tuple(vectors.shape)), symbols].sum(1)

        return charge

    def forward(self, y: Tensor, side: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The likelihood of each vector component; the vectors pass through (they are lossless)."""
        symbols = self._symbols(y.long())
        return y, {self.streams[0]: self.categorical(symbols, table_indexes=self.table_indexes(side, tuple(y.shape)))}

    def compress(self, y: Tensor, side: Tensor, encoders: Encoders) -> Tensor:
        symbols = self._symbols(y.long())
        self.categorical.compress_into(encoders[self.streams[0]], symbols, self.table_indexes(side, tuple(y.shape)))
        return y

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Tensor) -> Tensor:
        decs = decoders[self.streams[0]]
        rows, cols = shapes[self.streams[0]]
        shape = (len(decs), 2, rows, cols)
        differences = self.categorical.decompress_from(decs, shape[1:], self.table_indexes(side, shape)) - self.reach
        differences = differences.to(side.device)
        vectors = torch.empty_like(differences)
        vectors[:, :, 0] = differences[:, :, 0].cumsum(-1)
        for row in range(1, rows):
            above = vectors[:, :, row - 1 : row]
            vectors[:, :, row] = median_of_above(torch.cat([above, above], dim=2))[:, :, 1] + differences[:, :, row]
        if vectors.numel() and int(vectors.abs().max()) > self.reach // 2:
            raise BitstreamError("decoded a motion vector beyond the search range: the stream is corrupt")
        return vectors
