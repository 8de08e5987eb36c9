"""Rate-distortion plots: rate (bpp, or kbit/s for audio) against a quality metric, one line per results file.

Built on a bare matplotlib ``Figure`` (Agg canvas), so no GUI backend or pyplot state is involved.
Published anchors are drawn dashed and thinner, so the curves under test stand out.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from lnc.entropy.errors import InputError
from lnc.tools.eval.results import LOWER_IS_BETTER, METRIC_LABELS, RATE_LABELS, RDCurve

_MARKERS = "osD^vP*Xh<>p"


def rd_figure(
    curves: Sequence[RDCurve],
    metric: str = "psnr-rgb",
    title: str | None = None,
    anchors: Sequence[bool] | None = None,
) -> Figure:
    """One RD figure: ``curves[i]`` drawn dashed and labelled "(anchor)" when ``anchors[i]`` is true."""
    anchors = anchors if anchors is not None else [False] * len(curves)
    figure = Figure(figsize=(7.0, 5.0), dpi=120, layout="constrained")
    axes = figure.add_subplot()
    for index, (curve, anchor) in enumerate(zip(curves, anchors)):
        rate, values = curve.points(metric)
        axes.plot(
            rate, values,
            linestyle="--" if anchor else "-",
            linewidth=1.2 if anchor else 1.8,
            marker=_MARKERS[index % len(_MARKERS)],
            markersize=4 if anchor else 5,
            label=f"{curve.name} (anchor)" if anchor else curve.name,
        )
    rate_keys = {curve.rate_key for curve in curves}
    if len(rate_keys) > 1:
        raise InputError("cannot plot curves in bpp and in kbit/s on one axis")
    axes.set_xlabel(RATE_LABELS[rate_keys.pop()] if rate_keys else "Rate")
    axes.set_ylabel(METRIC_LABELS[metric])
    axes.set_title(title or f"{METRIC_LABELS[metric]} vs rate")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right" if metric in LOWER_IS_BETTER else "lower right", fontsize="small")
    return figure


def save(figure: Figure, path: str | Path) -> None:
    """Write the figure; the format follows the file suffix (png, pdf, svg)."""
    try:
        figure.savefig(path)
    except ValueError as exc:  # matplotlib's answer to an unknown suffix
        raise InputError(f"cannot write {path}: {exc}") from None
