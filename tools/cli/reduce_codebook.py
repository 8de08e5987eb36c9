"""``lnc reduce-codebook MODEL --sizes 16 64 256 1024 -o OUT``: rate points of a VQ codec."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lnc.entropy.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reduce-codebook",
        help="give a trained VQ codec one rate point per smaller codebook",
        description="Cluster a trained VQ codec's codebook to each of --sizes entries (k-means weighted "
        "by use, then Lloyd iterations on the encoder's latents of training crops), fit each size's "
        "index priors, and save the result: quality q codes with the q-th smallest codebook.",
    )
    parser.add_argument("model", help="a VQ codec's weights (shipped name or .safetensors, from lnc export)")
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="codebook sizes, one per rate point")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors file to write")
    parser.add_argument("--data", nargs="+", default=None,
                        help="training image folders, relative to $LNC_DATA (default: the image configs')")
    parser.add_argument("--crop", type=int, default=256, help="training crop side (default 256)")
    parser.add_argument("--crops-per-image", type=int, default=2, help="crops per training image (default 2)")
    parser.add_argument("--prior-steps", type=int, default=300,
                        help="Adam steps of each context prior, from the trained one's (default 300)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.image.vq import VQGAN
    from lnc.codecs.registry import load, save_codec
    from lnc.train.codebook_reduction import DEFAULT_DIRS, reduce_codebook

    if args.output.exists() and not args.force:
        raise InputError(f"{args.output} exists; pass --force to overwrite it")
    if args.crop <= 0 or args.crops_per_image <= 0 or args.prior_steps < 0:
        raise InputError("--crop and --crops-per-image must be positive, --prior-steps not negative")
    codec = load(args.model)
    if not isinstance(codec, VQGAN):
        raise InputError(f"{args.model} is a {codec.architecture} codec, not a VQ codec")
    reduced, record = reduce_codebook(codec, args.sizes, args.data or DEFAULT_DIRS, args.crop,
                                      args.crops_per_image, args.prior_steps)
    metadata = {k: v for k, v in codec.metadata.items() if k.startswith("lnc.train.")}
    record["source"] = {"model": str(args.model), "hash": codec.weights_hash.hex()}
    metadata["lnc.reduce"] = json.dumps(record, sort_keys=True)
    digest = save_codec(reduced, args.output, metadata)
    print(f"{args.output}: {reduced.architecture} codebooks {reduced.quantizer.sizes}, weights {digest.hex()}")
    return 0
