"""Gain units for variable-rate coding with one set of weights.

Cui et al. 2021, "Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation"
(arXiv:2003.02012): a latent is scaled channel-wise by a learned gain vector before quantisation and
by a separate inverse-gain vector after it. One pair of vectors per rate point; a rate between two
points interpolates the pair geometrically, so the rate is continuous. With ``portable=True`` the
exponential is :func:`~lnc.codecs.layers.exact.portable_exp`, the same bits on every device, for
gains that feed entropy parameters (:mod:`lnc.codecs.layers.exact`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lnc.codecs.layers.exact import portable_exp


COMPRESSAI_MSE_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
"""λ of CompressAI's MSE models at qualities 1..8: the rate points lnc's variable-rate codecs train at
unless told otherwise (and the motion search's rate constraint of the video codec)."""


class GainUnit(nn.Module):
    """Learned per-channel gains and inverse gains for ``points`` rate points.

    Gains are stored as logarithms (always positive). Rate point 1 is the lowest rate; the initial
    gains span ``init_range`` geometrically so the points differ from the first training step.
    """

    def __init__(self, points: int, channels: int, init_range: tuple[float, float] = (1.0, 1.0)):
        super().__init__()
        if points < 1:
            raise ValueError("a gain unit needs at least one rate point")
        self.points = points
        low, high = (math.log(v) for v in init_range)
        log_gain = torch.linspace(low, high, points).unsqueeze(1).repeat(1, channels)
        self.log_gain = nn.Parameter(log_gain)
        self.log_inverse_gain = nn.Parameter(-log_gain.clone())

    def _interpolate(self, table: Tensor, quality: Tensor, portable: bool) -> Tensor:
        dtype = table.dtype
        if portable:
            table = table.to(torch.float64)
        q = quality.to(table.dtype).clamp(1, self.points) - 1
        lower = q.floor().clamp(max=max(self.points - 2, 0)).long()
        upper = (lower + 1).clamp(max=self.points - 1)
        frac = (q - lower.to(q.dtype)).unsqueeze(1)
        log_value = table[lower] * (1 - frac) + table[upper] * frac
        return portable_exp(log_value).to(dtype) if portable else log_value.exp()

    def gain(self, quality: Tensor, spatial_dims: int = 2, portable: bool = False) -> Tensor:
        """Gain vectors shaped ``[B, C, 1, …]`` (``spatial_dims`` ones) for qualities ``[B]``."""
        return self._interpolate(self.log_gain, quality, portable)[(...,) + (None,) * spatial_dims]

    def inverse_gain(self, quality: Tensor, spatial_dims: int = 2, portable: bool = False) -> Tensor:
        """Inverse-gain vectors shaped ``[B, C, 1, …]``."""
        return self._interpolate(self.log_inverse_gain, quality, portable)[(...,) + (None,) * spatial_dims]


def apply_gain(
    unit: GainUnit | None, t: Tensor, quality: Tensor, inverse: bool = False, portable: bool = False
) -> Tensor:
    """``t`` ``[B, C, …]`` scaled by the unit's (inverse) gain at ``quality``; unchanged without a unit."""
    if unit is None:
        return t
    spatial = t.dim() - 2
    return t * (unit.inverse_gain(quality, spatial, portable) if inverse else unit.gain(quality, spatial, portable))


def regrid_log_gains(table: Tensor, lmbdas: list[float], new_lmbdas: list[float]) -> Tensor:
    """A gain table ``[points, C]`` trained at ``lmbdas`` carried to ``new_lmbdas``: each log-gain is
    interpolated piecewise-linearly in log λ, and extrapolated beyond the ends from the two outer
    points, so a λ the table already has keeps its gains exactly. It grows a variable-rate codec's
    range (more, lower or higher rate points) from trained weights."""
    if table.shape[0] != len(lmbdas) or len(lmbdas) < 2:
        raise ValueError(f"a table of {table.shape[0]} rate points and {len(lmbdas)} λ")
    old = torch.tensor(lmbdas, dtype=torch.float64).log()
    if not bool((old[1:] > old[:-1]).all()):
        raise ValueError("the trained λ must increase")
    new = torch.tensor(new_lmbdas, dtype=torch.float64).log()
    lower = (torch.searchsorted(old, new, right=True) - 1).clamp(0, len(lmbdas) - 2)
    frac = ((new - old[lower]) / (old[lower + 1] - old[lower])).unsqueeze(1)
    rows = table.to(torch.float64)
    return (rows[lower] * (1 - frac) + rows[lower + 1] * frac).to(table.dtype)
