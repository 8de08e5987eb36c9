"""``lnc grid IMAGE… --panel MODEL:Q --panel jpeg:Q … -o grid.png``: codecs side by side on crops."""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from lnc.entropy.errors import InputError


def _panel(text: str) -> tuple[str, float]:
    name, sep, quality = text.rpartition(":")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(quality)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a panel is CODEC:QUALITY (e.g. jpeg:5 or a model name:1), got {text!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid",
        help="a picture grid: the same crops through several codecs, labelled with bpp and PSNR",
        description="Code each image with each panel's codec at its quality (whole images, real "
        "bytes), and write one PNG: a row per image, the original first, then a column per panel.",
    )
    parser.add_argument("images", nargs="+", type=Path, help="images (PNG, JPEG, …)")
    parser.add_argument("--panel", type=_panel, action="append", required=True, metavar="CODEC:Q",
                        help="a classical codec (jpeg, webp, avif, …) or an lnc model, and its quality; repeatable")
    parser.add_argument("--crop", type=int, default=256, help="side of the centred crop shown (default 256)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.tools.eval import image_baselines
    from lnc.tools.eval.grid import coded_cell, picture_grid
    from lnc.tools.eval.image import LearnedCodec
    from lnc.tools.io.files import check_output, write_output
    from lnc.tools.io.image import read_rgb

    check_output(str(args.output), args.force, [str(p) for p in args.images])
    if args.crop < 16:
        raise InputError(f"--crop must be at least 16, got {args.crop}")
    codecs = {}
    for name, quality in args.panel:
        if name not in codecs:
            codecs[name] = image_baselines.get(name) if name in image_baselines.CODECS else LearnedCodec(name)
        codecs[name].check_quality(quality)
    rows = []
    for path in args.images:
        rgb = read_rgb(path)
        rows.append([(rgb, f"{path.name} original"),
                     *(coded_cell(codecs[name], rgb, quality) for name, quality in args.panel)])
        print(" | ".join(label for _, label in rows[-1]))
    buffer = io.BytesIO()
    picture_grid(rows, args.crop).save(buffer, format="PNG", optimize=True)
    write_output(str(args.output), buffer.getvalue(), args.force)
    print(f"{args.output}: {len(rows)} images × {len(args.panel) + 1} columns")
    return 0
