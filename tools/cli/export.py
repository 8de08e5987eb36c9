"""``lnc export CKPT -o model.safetensors``: a training checkpoint to a codec weights file."""
from __future__ import annotations

import argparse
from pathlib import Path

from lnc.entropy.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a training checkpoint's codec as .safetensors (CDF tables built)",
        description="Rebuild the codec from the checkpoint's hyper-parameters, build its CDF tables "
        "and save it with the training config, step count and data as metadata.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by lnc train")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors file to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--no-ema", action="store_true", help="export the training weights, not their EMA")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import save_codec
    from lnc.train.module import codec_from_checkpoint

    if args.output.exists() and not args.force:
        raise InputError(f"{args.output} exists; pass --force to overwrite it")
    codec, metadata = codec_from_checkpoint(args.checkpoint, use_ema=not args.no_ema)
    digest = save_codec(codec, args.output, metadata)
    print(
        f"{args.output}: {codec.architecture} {codec.config}, step {metadata['lnc.train.steps']}, "
        f"ema {metadata['lnc.train.ema']}, weights {digest.hex()}"
    )
    return 0
