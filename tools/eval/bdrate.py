"""Bjøntegaard delta metrics between two rate-distortion curves.

BD-rate is the average relative rate difference at equal quality, BD-quality (BD-PSNR for
PSNR) the average quality difference at equal rate, both over the range where the two curves
overlap (Bjøntegaard, 2001, VCEG-M33). Each curve is interpolated with log-rate on one axis and
integrated exactly over the shared interval:

- ``pchip``: piecewise cubic Hermite interpolation (Fritsch & Carlson, 1980), the method of the
  JCT-VC/JVET common-test-conditions Excel sheet (Bossen, JCTVC-L1100) and the default here;
- ``cubic``: one least-squares cubic polynomial per curve, VCEG-M33's original method;
- ``akima``: Akima (1970) splines, found more stable by Herglotz et al. (2022, arXiv:2202.12565).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

from lnc.entropy.errors import InputError, LncError

METHODS = ("pchip", "cubic", "akima")
MIN_POINTS = {"pchip": 2, "akima": 3, "cubic": 4}
# Below this share of the narrower curve's range, a BD figure extrapolates more than it measures.
SMALL_OVERLAP = 0.5

Integral = Callable[[float, float], float]


@dataclass(frozen=True)
class BDResult:
    """BD-rate in percent (negative: the test saves rate), BD-quality in the metric's unit, and overlap.

    ``overlap`` is the smaller of the two shared fractions (quality axis for BD-rate, log-rate
    axis for BD-quality), each relative to the narrower curve's span on that axis.
    """

    bd_rate: float
    bd_quality: float
    overlap: float


def _integral(x: np.ndarray, y: np.ndarray, method: str) -> Integral:
    if method == "pchip":
        return PchipInterpolator(x, y).integrate
    if method == "akima":
        return Akima1DInterpolator(x, y).integrate
    antiderivative = np.polyint(np.polyfit(x, y, 3))
    return lambda lo, hi: float(np.polyval(antiderivative, hi) - np.polyval(antiderivative, lo))


def _curve(rate: ArrayLike, quality: ArrayLike, method: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    """Log-rate and quality of one curve, ordered by rate and checked to be a proper RD curve."""
    if method not in METHODS:
        raise InputError(f"unknown BD interpolation {method!r}; choose from {', '.join(METHODS)}")
    rate = np.asarray(rate, dtype=np.float64)
    quality = np.asarray(quality, dtype=np.float64)
    if rate.shape != quality.shape or rate.ndim != 1:
        raise InputError(f"{role} curve: rate and quality must be 1-D lists of the same length")
    if len(rate) < MIN_POINTS[method]:
        raise InputError(
            f"{role} curve: {method} needs at least {MIN_POINTS[method]} RD points, got {len(rate)}"
        )
    if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(quality)) and np.all(rate > 0)):
        raise InputError(f"{role} curve: rates must be positive and all values finite")
    order = np.argsort(rate)
    rate, quality = rate[order], quality[order]
    if np.any(np.diff(rate) <= 0) or np.any(np.diff(quality) <= 0):
        raise InputError(f"{role} curve: quality must increase strictly with rate for a BD comparison")
    return np.log(rate), quality


def _mean_gap(
    xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, method: str
) -> tuple[float, float]:
    """Mean of (test − anchor) over the shared x interval, and its share of the narrower span."""
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if lo >= hi:
        raise LncError("the RD curves do not overlap; a BD figure needs a shared quality and rate range")
    gap = _integral(xt, yt, method)(lo, hi) - _integral(xa, ya, method)(lo, hi)
    return gap / (hi - lo), (hi - lo) / min(xa[-1] - xa[0], xt[-1] - xt[0])


def compare(
    anchor_rate: ArrayLike,
    anchor_quality: ArrayLike,
    test_rate: ArrayLike,
    test_quality: ArrayLike,
    method: str = "pchip",
) -> BDResult:
    """BD-rate (%) and BD-quality of a test RD curve against an anchor; rates in any common unit."""
    log_ra, qa = _curve(anchor_rate, anchor_quality, method, "anchor")
    log_rt, qt = _curve(test_rate, test_quality, method, "test")
    log_gap, rate_share = _mean_gap(qa, log_ra, qt, log_rt, method)
    quality_gap, quality_share = _mean_gap(log_ra, qa, log_rt, qt, method)
    return BDResult(
        bd_rate=float(np.expm1(log_gap) * 100.0),
        bd_quality=float(quality_gap),
        overlap=float(min(rate_share, quality_share)),
    )
