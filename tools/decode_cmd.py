"""``lnc decode``: ``.lnc`` bitstream → image file."""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from lnc.entropy import container as lncfile
from lnc.entropy.errors import LncError
from lnc.tools.fileio import check_output, default_output, read_input, write_output

_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode a .lnc file to an image (PNG by default)",
        description="Decode a .lnc bitstream to a lossless image file.",
    )
    parser.add_argument("input", help=".lnc file, or - for stdin")
    parser.add_argument("-o", "--output", help="output image (.png, .bmp, .tif, lossless .webp) or - for PNG on stdout")
    parser.add_argument("-m", "--model", help="model to decode with (default: the one named in the bitstream)")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import load
    from lnc.tools.image_pipeline import decode_container

    output = args.output or default_output(args.input, ".png")
    fmt = "PNG" if output == "-" else _FORMATS.get(Path(output).suffix.lower())
    if fmt is None:
        raise LncError(f"cannot write {output}: use .png, .bmp, .tif or .webp (lossless)")
    check_output(output, args.force)
    container = lncfile.read(read_input(args.input))
    codec = load(args.model or container.header.codec)
    picture = decode_container(container, codec)
    buffer = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {}
    picture.to_image().save(buffer, format=fmt, **options)
    write_output(output, buffer.getvalue(), args.force)
    return 0
