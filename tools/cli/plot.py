"""``lnc plot``: draw RD curves from results JSON files into one image."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lnc.entropy.errors import InputError
from lnc.tools.eval import datasets, results

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="plot RD curves from results JSON files",
        description=(
            "Plot bpp against a quality metric; anchors (files under the anchors folder, "
            "or given with --anchor) are drawn dashed."
        ),
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="RESULTS.json")
    parser.add_argument(
        "--anchor", action="append", default=[], type=Path, metavar="FILE",
        help="a reference curve, drawn dashed (repeatable)",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="rd.png")
    parser.add_argument("--metric", choices=results.METRICS, default="psnr-rgb")
    parser.add_argument("--title")
    parser.set_defaults(func=run)


def figure(
    files: list[Path], anchors: list[Path], metric: str = "psnr-rgb", title: str | None = None
) -> Figure:
    """The RD figure of ``files`` then ``anchors``; files inside the anchors folder count as anchors."""
    from lnc.tools.eval import plot

    if not files and not anchors:
        raise InputError("nothing to plot: give at least one results JSON")
    root = datasets.anchors_root().resolve()
    dashed = [p.resolve().is_relative_to(root) for p in files] + [True] * len(anchors)
    return plot.rd_figure([results.load(p) for p in files + anchors], metric, title, dashed)


def run(args: argparse.Namespace) -> int:
    from lnc.tools.eval import plot

    plot.save(figure(args.files, args.anchor, args.metric, args.title), args.output)
    print(f"wrote {args.output}")
    return 0
