"""``lnc plot``: draw RD curves from results JSON files into one image."""
from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lnc.entropy.errors import InputError
from lnc.tools.eval import datasets, results
from lnc.tools.io.files import check_output, write_output

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
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
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


def render(fig: Figure, path: str | Path) -> bytes:
    """The bytes of ``fig`` as ``savefig(path)`` would write them: the format follows the suffix."""
    suffix = Path(path).suffix[1:].lower()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=suffix or None)
    except ValueError as exc:  # matplotlib's answer to an unknown suffix
        raise InputError(f"cannot write {path}: {exc}") from None
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    text = os.fspath(args.output)
    output = os.path.join(".", text) if text == "-" else text  # a file named -, not stdout
    check_output(output, args.force)
    data = render(figure(args.files, args.anchor, args.metric, args.title), output)
    write_output(output, data, args.force)
    print(f"wrote {args.output}")
    return 0
