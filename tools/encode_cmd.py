"""``lnc encode``: image file → ``.lnc`` bitstream."""
from __future__ import annotations

import argparse
import sys

from lnc.entropy.errors import InputError
from lnc.tools.fileio import check_output, default_output, read_input, write_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode an image (PNG, JPEG, WebP, TIFF, BMP) to a .lnc file",
        description="Encode an image to a .lnc bitstream with a learned codec.",
    )
    parser.add_argument("input", help="image file, or - for stdin")
    parser.add_argument("-o", "--output", help="output .lnc file, or - for stdout (default: INPUT.lnc)")
    parser.add_argument("-m", "--model", help="shipped model name or .safetensors path (default: the shipped default, see `lnc models`)")
    parser.add_argument("-q", "--quality", type=float, help="rate point, continuous in the model's range (see `lnc models`)")
    parser.add_argument(
        "--refine", type=int, default=0, metavar="STEPS",
        help="encoder-side latent refinement: gradient steps per tile (0: off; on Kodak 100 steps save 8.4%% "
        "of the bits at equal PSNR, at about 0.25 s per step per Kodak-sized image on 2 cores)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print size and bits per pixel to stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import load
    from lnc.tools.image_pipeline import encode_picture, read_picture, refinement_progress

    output = args.output or default_output(args.input, ".lnc")
    check_output(output, args.force)
    picture = read_picture(read_input(args.input))
    codec = load(args.model)
    if args.refine < 0:
        raise InputError("--refine takes a number of steps, 0 or more")
    with refinement_progress(picture, codec, args.refine) as progress:
        data = encode_picture(picture, codec, args.quality, args.refine, progress)
    write_output(output, data, args.force)
    if args.verbose:
        h, w = picture.rgb.shape[:2]
        print(f"{output}: {len(data)} bytes, {8 * len(data) / (h * w):.4f} bpp", file=sys.stderr)
    return 0
