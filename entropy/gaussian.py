"""Conditional entropy models: a location-scale density whose scale (and mean) another network predicts.

The Gaussian is the scale-hyperprior model of Ballé, Minnen, Singh, Hwang, Johnston 2018
(arXiv:1802.01436), with means as in Minnen, Ballé, Toderici 2018 (arXiv:1809.02736); the Laplace
variant is the same model with a Laplace density (e.g. Zhou et al. 2019, CLIC). The likelihood of
a quantised value ``y`` is the density's mass on ``[y - 1/2, y + 1/2]``. For coding, the scales are
snapped up to a log-spaced ``scale_table`` and each table entry gets one CDF table, centred at 0
(symbols are ``round(y - mean)``). Names and buffers are CompressAI's, so a CompressAI
``GaussianConditional`` state dict loads unchanged.

With ``mean_offsets = K`` the latents are quantised on the integer grid instead (``ŷ = round(y)``,
the symbols ``ŷ - round(mean)``) while the density keeps its real-valued mean: each scale gets
``K`` tables, one per bin of the mean's fractional offset ``mean - round(mean)`` in ``[-1/2, 1/2]``,
built at the bin's centre. Rounding around the mean (the default) lets a well-predicted latent cost
nothing and land on its mean, but its values are no longer integers; with offsets they are, for
codecs whose latents must be plain integers (WaLLoC's, stored and learned on as such), and a mean
between two integers still splits the probability between them instead of being rounded away.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from lnc.entropy import coder
from lnc.entropy.base import EntropyModel
from lnc.entropy.bound_ops import LowerBound

SCALES_MIN = 0.11
SCALES_MAX = 256.0
SCALES_LEVELS = 64


def get_scale_table(min: float = SCALES_MIN, max: float = SCALES_MAX, levels: int = SCALES_LEVELS) -> Tensor:
    """``levels`` scales spaced logarithmically from ``min`` to ``max`` (tensorflow-compression's default)."""
    # On the CPU whatever the default device: codecs are built on the meta device before loading.
    return torch.exp(torch.linspace(math.log(min), math.log(max), levels, device="cpu"))


class LocationScaleConditional(EntropyModel):
    """Conditional model of a symmetric location-scale density; subclasses give its standardised
    cumulative and lower quantile.

    Args:
        scale_table: increasing positive scales, one CDF table each (``None``: set later with
            :meth:`update_scale_table`).
        scale_bound: predicted scales are bounded below by this (default: the first table entry).
        tail_mass: probability left outside each table's range (sent by escape).
        mean_offsets: 0 to quantise around the means; ``K > 0`` to quantise on the integer grid
            with ``K`` tables per scale, one per bin of the means' fractional offset.
        **kwargs: see :class:`~lnc.entropy.base.EntropyModel`.
    """

    _table_buffers: ClassVar[tuple[str, ...]] = (*EntropyModel._table_buffers, "scale_table")

    scale_table: Tensor
    scale_bound: Tensor

    def __init__(
        self,
        scale_table: Sequence[float] | Tensor | None,
        *,
        scale_bound: float | None = 0.11,
        tail_mass: float = 1e-9,
        mean_offsets: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mean_offsets < 0:
            raise ValueError(f"mean_offsets must be 0 or positive, got {mean_offsets}")
        self.mean_offsets = int(mean_offsets)
        table = self._prepare_scale_table(scale_table) if scale_table is not None else torch.Tensor()
        if scale_bound is None:
            if not table.numel():
                raise ValueError("scale_bound is needed when there is no scale_table")
            scale_bound = float(table[0])
        if scale_bound <= 0:
            raise ValueError(f"scale_bound must be positive, got {scale_bound}")
        self.tail_mass = float(tail_mass)
        self.lower_bound_scale = LowerBound(scale_bound)
        self.register_buffer("scale_table", table)
        self.register_buffer("scale_bound", torch.Tensor([float(scale_bound)]))

    @staticmethod
    def _prepare_scale_table(scale_table: Sequence[float] | Tensor) -> Tensor:
        table = torch.as_tensor(scale_table, dtype=torch.float32, device="cpu").detach().reshape(-1)
        if table.numel() < 1 or bool((table <= 0).any()) or bool((table[1:] < table[:-1]).any()):
            raise ValueError(f"scale_table must be non-empty, positive and increasing, got {table.tolist()}")
        return table

    @staticmethod
    def _standardized_cumulative(inputs: Tensor) -> Tensor:
        """Cumulative of the standardised density (location 0, scale 1)."""
        raise NotImplementedError

    @staticmethod
    def _standardized_quantile(quantile: float) -> float:
        """Inverse of :meth:`_standardized_cumulative`, for ``quantile < 1/2``."""
        raise NotImplementedError

    def centres(self, means: Tensor | None) -> Tensor | None:
        """The means rounded to integers with ``mean_offsets``, else the means."""
        return torch.round(means) if self.mean_offsets and means is not None else means

    def _likelihood(self, inputs: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        # By symmetry, evaluate on the negative side, where the cumulative is small and precise.
        values = torch.abs(inputs - means if means is not None else inputs)
        scales = self.lower_bound_scale(scales)
        upper = self._standardized_cumulative((0.5 - values) / scales)
        lower = self._standardized_cumulative((-0.5 - values) / scales)
        return upper - lower

    def forward(
        self,
        inputs: Tensor,
        scales: Tensor,
        means: Tensor | None = None,
        training: bool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Quantised (or noisy) ``inputs`` and their likelihoods under ``(means, scales)``."""
        outputs = self.quantize(inputs, self.forward_mode(training), means)
        return outputs, self.bound_likelihood(self._likelihood(outputs, scales, means))

    def build_indexes(self, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Index of the smallest table scale ``>=`` each (bounded) scale, the last one beyond; with
        ``mean_offsets``, times ``K`` plus the bin of each mean's offset from its integer."""
        if self.mean_offsets and means is None:
            raise ValueError("a model with mean_offsets needs the means to choose its tables")
        scales = self.lower_bound_scale(scales).detach()
        means_cpu = means.detach().to("cpu", torch.float32) if self.mean_offsets else None
        indexes = coder.table_indexes(scales.to("cpu", torch.float32), self.scale_table, means_cpu, self.mean_offsets)
        return torch.from_numpy(indexes).reshape(scales.shape).to(scales.device)

    def update_scale_table(self, scale_table: Sequence[float] | Tensor, force: bool = False) -> bool:
        """Replace the scale table and build its CDF tables, unless tables exist and not ``force``."""
        if self.has_tables and not force:
            return False
        self.scale_table = self._prepare_scale_table(scale_table).to(self.scale_table.device)
        return self.update(force=True)

    @torch.no_grad()
    def update(self, force: bool = False) -> bool:
        """Build one CDF table per table scale (and mean offset bin) over ``±ceil(scale * q)``
        (one more with offsets), ``q`` the ``1 - tail_mass / 2`` quantile; deterministic (float64
        on the CPU, whatever the device). Without a scale table, :func:`get_scale_table`'s is used.
        With offsets the tables are built at the centre of the scales each one serves."""
        if self.has_tables and not force:
            return False
        if not self.scale_table.numel():  # CompressAI's default table, as its models' update() sets
            self.scale_table = get_scale_table().to(self.scale_table.device)
        table = self.scale_table.to("cpu", torch.float64)
        if self.mean_offsets:
            # Each table serves the scales above the previous entry up to its own: built at their
            # geometric centre rather than at the top, it costs 0.2 % over the exact likelihoods
            # instead of 3 % (a table step of 14 %). The default keeps CompressAI's tables.
            table = torch.sqrt(table * torch.cat([table[:1], table[:-1]]))
        bins = max(self.mean_offsets, 1)
        # Bin centres of the offset in [-1/2, 1/2]; one bin at 0 (the table's centre) without offsets.
        offsets = (torch.arange(bins, dtype=torch.float64) + 0.5) / bins - 0.5
        multiplier = -self._standardized_quantile(self.tail_mass / 2)
        pmf_center = torch.ceil(table * multiplier).to(torch.int64) + (1 if self.mean_offsets else 0)
        pmf_center = pmf_center.repeat_interleave(bins)  # rows: scale-major, offset bin minor
        scales = table.repeat_interleave(bins)[:, None]
        offsets = offsets.repeat(len(table))[:, None]
        pmf_length = 2 * pmf_center + 1
        # By symmetry each symbol's mass is evaluated on the negative side, where it is precise.
        samples = torch.abs(torch.arange(int(pmf_length.max())) - pmf_center[:, None] - offsets)
        upper = self._standardized_cumulative((0.5 - samples) / scales)
        lower = self._standardized_cumulative((-0.5 - samples) / scales)
        # Both tails, below -(pmf_center + 1/2) and above pmf_center + 1/2.
        edge = (pmf_center[:, None] + 0.5).to(torch.float64)
        below, above = ((-edge - offsets) / scales, (-edge + offsets) / scales)
        tail_mass = (self._standardized_cumulative(below) + self._standardized_cumulative(above))[:, 0]
        self._set_tables(upper - lower, tail_mass, pmf_length, -pmf_center)
        return True


class GaussianConditional(LocationScaleConditional):
    """Conditional Gaussian: ``scales`` are standard deviations."""

    @staticmethod
    def _standardized_cumulative(inputs: Tensor) -> Tensor:
        # erfc keeps the precision of the lower tail.
        return 0.5 * torch.erfc(inputs * -(2**-0.5))

    @staticmethod
    def _standardized_quantile(quantile: float) -> float:
        return statistics.NormalDist().inv_cdf(quantile)


class LaplaceConditional(LocationScaleConditional):
    """Conditional Laplace: ``scales`` are the diversity ``b`` (standard deviation ``b * sqrt(2)``)."""

    @staticmethod
    def _standardized_cumulative(inputs: Tensor) -> Tensor:
        # 0.5 * exp(x) below 0 and 1 - 0.5 * exp(-x) above; exp(-|x|) never overflows.
        half_tail = 0.5 * torch.exp(-torch.abs(inputs))
        return torch.where(inputs < 0, half_tail, 1 - half_tail)

    @staticmethod
    def _standardized_quantile(quantile: float) -> float:
        return math.log(2 * quantile)
