"""Categorical entropy model over a finite alphabet, e.g. the codebook indices of a vector quantiser
(van den Oord, Vinyals, Kavukcuoglu 2017, "Neural discrete representation learning",
arXiv:1711.00937).

The model holds ``num_tables`` distributions over ``{0, ..., num_symbols - 1}``, either learned
(logits as a parameter) or fixed (a given probability table). ``forward`` returns likelihoods
under those tables or under logits predicted per position by another network (a conditional
prior); coding uses the tables.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnc.entropy import coder
from lnc.entropy.base import EntropyModel, Tables
from lnc.entropy.coder import RangeDecoder, RangeEncoder
from lnc.entropy.errors import BitstreamError


MAX_SYMBOLS = (1 << 16) - 1
"""The largest alphabet: with the escape symbol, every symbol needs a frequency of 1 of 2^16."""


class CategoricalModel(EntropyModel):
    """Distributions over ``num_symbols`` symbols, ``num_tables`` of them.

    Args:
        num_symbols: alphabet size ``K``.
        num_tables: number of distributions ``T`` (e.g. one per codebook); ignored with ``probs``.
        probs: a fixed probability table ``[K]`` or ``[T, K]`` (rows are normalised); without it
            the logits are learned, starting uniform.
        **kwargs: see :class:`~lnc.entropy.base.EntropyModel`.
    """

    logits: Tensor

    def __init__(self, num_symbols: int, num_tables: int = 1, probs: Tensor | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_symbols < 1 or num_tables < 1:
            raise ValueError(f"need num_symbols >= 1 and num_tables >= 1, got {num_symbols}, {num_tables}")
        if num_symbols > MAX_SYMBOLS:
            raise ValueError(f"an alphabet of {num_symbols} symbols is more than the coder's {MAX_SYMBOLS} "
                             "(16-bit frequencies, each symbol and the escape at least 1)")
        if probs is None:
            self.logits = nn.Parameter(torch.zeros(num_tables, num_symbols))
            return
        probs = torch.as_tensor(probs, dtype=torch.float32).detach()
        probs = probs.reshape(-1, probs.size(-1))
        if probs.size(1) != num_symbols or bool((probs < 0).any()) or not bool((probs.sum(1) > 0).all()):
            raise ValueError(f"probs must be non-negative rows of {num_symbols} entries with positive sums")
        self.register_buffer("logits", torch.log(probs / probs.sum(1, keepdim=True)))

    @property
    def num_symbols(self) -> int:
        return self.logits.size(1)

    @property
    def num_tables(self) -> int:
        return self.logits.size(0)

    def probs(self) -> Tensor:
        """The tables' probabilities ``[T, K]``."""
        return F.softmax(self.logits, dim=-1)

    def _check_indices(self, indices: Tensor) -> None:
        if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
            raise ValueError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_symbols):
            raise ValueError(
                f"indices must lie in [0, {self.num_symbols}), got [{int(indices.min())}, {int(indices.max())}]"
            )

    def _table_indexes(self, table_indexes: Tensor | None, shape: Sequence[int]) -> Tensor:
        """``table_indexes`` broadcast to ``shape`` (all zeros when None), checked against ``T``."""
        if table_indexes is None:
            return torch.zeros(shape, dtype=torch.int64, device=self.logits.device)
        table_indexes = table_indexes.to(torch.int64).expand(*shape)
        if table_indexes.numel() and (int(table_indexes.min()) < 0 or int(table_indexes.max()) >= self.num_tables):
            raise ValueError(f"table indexes must lie in [0, {self.num_tables})")
        return table_indexes

    def forward(self, indices: Tensor, logits: Tensor | None = None, table_indexes: Tensor | None = None) -> Tensor:
        """Likelihood of each index: under ``logits`` ``[*indices.shape, K]`` when given (a
        conditional prior), else under the tables chosen by ``table_indexes`` (default table 0)."""
        self._check_indices(indices)
        indices = indices.long()
        if logits is not None:
            if logits.shape != (*indices.shape, self.num_symbols):
                raise ValueError(f"logits must be {(*indices.shape, self.num_symbols)}, got {tuple(logits.shape)}")
            log_probs = F.log_softmax(logits, dim=-1).gather(-1, indices.unsqueeze(-1)).squeeze(-1)
        else:
            tables = self._table_indexes(table_indexes, indices.shape).to(indices.device)
            log_probs = F.log_softmax(self.logits, dim=-1)[tables, indices]
        return self.bound_likelihood(log_probs.exp())

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Quantise each table's pmf into a CDF table; the (never used) escape symbol gets the
        minimal frequency."""
        if self.has_tables and not force:
            return False
        pmf = F.softmax(self.logits.detach().to("cpu", torch.float64), dim=-1)
        tables = self.num_tables
        pmf_length = torch.full((tables,), self.num_symbols, dtype=torch.int64)
        self._set_tables(pmf, torch.zeros(tables, dtype=torch.float64), pmf_length, torch.zeros(tables))
        return True

    def _checked_indexes(self, indices: Tensor, table_indexes: Tensor | None) -> Tensor:
        self._check_indices(indices)
        if indices.dim() < 1:
            raise ValueError("indices need a leading batch dimension")
        return self._table_indexes(table_indexes, indices.shape)

    def _checked_indices(self, symbols: Tensor) -> Tensor:
        indices = symbols.long()
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_symbols):
            raise BitstreamError("decoded an index outside the alphabet: the stream is corrupt")
        return indices

    def compress(self, indices: Tensor, table_indexes: Tensor | None = None) -> list[bytes]:  # type: ignore[override]
        """Code ``indices`` ``[B, ...]`` (one string per batch item) with the tables
        ``table_indexes`` (broadcast to ``indices``; default table 0)."""
        return self.encode_symbols(indices, self._checked_indexes(indices, table_indexes))

    def decompress(  # type: ignore[override]
        self, strings: Sequence[bytes], shape: Sequence[int], table_indexes: Tensor | None = None
    ) -> Tensor:
        """Inverse of :meth:`compress`: int64 indices ``[len(strings), *shape]``."""
        full_shape = (len(strings), *shape)
        return self._checked_indices(self.decode_symbols(strings, self._table_indexes(table_indexes, full_shape)))

    def conditional_tables(self, pmfs: Tensor) -> Tables:
        """One CDF table per row of ``pmfs`` ``[..., K]`` (non-negative, any positive sum, float64),
        quantised portably (:func:`lnc.entropy.coder.pmf_to_quantized_cdf`), so that a decoder that
        computed the same pmfs from decoded data, on any machine, builds the same tables. Like
        :meth:`update`'s, each table ends with the minimal escape symbol."""
        if pmfs.size(-1) != self.num_symbols:
            raise ValueError(f"pmfs need {self.num_symbols} entries in the last dimension, got {pmfs.size(-1)}")
        rows = pmfs.detach().to("cpu", torch.float64).reshape(-1, self.num_symbols).numpy()
        rows = np.concatenate([rows, np.zeros((len(rows), 1))], axis=1)
        cdf = coder.pmf_to_quantized_cdf(rows, self.precision, portable=True)
        return cdf, np.full(len(rows), self.num_symbols + 2, np.int32), np.zeros(len(rows), np.int32)

    def _conditional(self, pmfs: Tensor, shape: Sequence[int]) -> tuple[Tensor, Tables]:
        """Per-element table indexes ``shape`` and the tables of ``pmfs`` ``[*shape, K]``."""
        if tuple(pmfs.shape[:-1]) != tuple(shape):
            raise ValueError(f"pmfs must be {(*shape, self.num_symbols)}, got {tuple(pmfs.shape)}")
        batch = shape[0]
        per_item = math.prod(shape[1:])
        # Item b's elements use tables b·n … b·n + n − 1 (the coder indexes tables per stream).
        indexes = torch.arange(batch * per_item, dtype=torch.int64).reshape(shape)
        return indexes, self.conditional_tables(pmfs)

    def compress_into(  # type: ignore[override]
        self,
        encoders: Sequence[RangeEncoder],
        indices: Tensor,
        table_indexes: Tensor | None = None,
        pmfs: Tensor | None = None,
    ) -> Tensor:
        """Append ``indices`` ``[B, ...]`` to each batch item's encoder; returns them. Each index is
        coded with its table (``table_indexes``), or with its own distribution when ``pmfs``
        ``[B, ..., K]`` gives one per index (a context model's prediction)."""
        if pmfs is None:
            self.append_symbols(encoders, indices, self._checked_indexes(indices, table_indexes))
        else:
            self._check_indices(indices)
            self.append_symbols(encoders, indices, *self._conditional(pmfs, indices.shape))
        return indices

    def decompress_from(  # type: ignore[override]
        self,
        decoders: Sequence[RangeDecoder],
        shape: Sequence[int],
        table_indexes: Tensor | None = None,
        pmfs: Tensor | None = None,
    ) -> Tensor:
        """Inverse of :meth:`compress_into`: int64 indices ``[len(decoders), *shape]``."""
        full_shape = (len(decoders), *shape)
        if pmfs is None:
            return self._checked_indices(self.read_symbols(decoders, self._table_indexes(table_indexes, full_shape)))
        return self._checked_indices(self.read_symbols(decoders, *self._conditional(pmfs, full_shape)))
