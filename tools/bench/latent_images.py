"""Rate of a WaLLoC model's latents: lnc's learned prior against WaLLoC's own 8-bit images.

    python -m lnc.tools.bench.latent_images [-m MODEL] [--dataset kodak] [-q Q …] [--limit N]

For every image and rate point, the same integer latents (:meth:`encode_latents`) are measured
three ways: the whole ``.lnc`` file that ``lnc encode`` writes (header, lengths, checksums and CRC
included), and the latents tiled into one grayscale PNG and one lossless RGB WebP as WaLLoC stores
them (:mod:`lnc.tools.eval.walloc_baseline`, image bytes alone). Prints mean bits per pixel and the
learned file's size as a fraction of each image path's, from one run on the same latents.
"""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from lnc.codecs import load
from lnc.entropy.errors import InputError
from lnc.tools.bench import dataset_images, dataset_parser
from lnc.tools.eval.datasets import image_paths
from lnc.tools.eval.walloc_baseline import FORMATS, encode_latent_images
from lnc.tools.pipeline.image import encode_array


def main(argv: list[str] | None = None) -> None:
    args = dataset_parser(__doc__.splitlines()[0], "walloc-fast-vr", "WaLLoC").parse_args(argv)

    codec = load(args.model)
    if not hasattr(codec, "encode_latents"):
        raise InputError(f"{codec.name} has no integer latents to store as images (a WaLLoC model has)")
    qualities = args.quality or list(codec.quality_points)
    paths = image_paths(args.dataset, args.limit)
    bits = {name: np.zeros((len(qualities), len(paths))) for name in ("lnc", *FORMATS)}
    clipped = 0
    with tqdm(total=len(qualities) * len(paths), unit="img", desc=codec.name) as bar:
        # Larger images than a tile are coded tile by tile in the file, whole here.
        for j, _, rgb, x in dataset_images(paths, codec.downsampling):
            pixels = rgb.shape[0] * rgb.shape[1]
            for i, quality in enumerate(qualities):
                bits["lnc"][i, j] = 8 * len(encode_array(rgb, codec, quality)) / pixels
                latents = codec.encode_latents(x, quality)
                for fmt in FORMATS:
                    stored = encode_latent_images(latents, fmt)
                    bits[fmt][i, j] = 8 * stored.size / pixels
                    clipped += stored.clipped
                bar.update()
    print(f"{codec.name} on {args.dataset} ({len(paths)} images): mean bpp; lnc file as a fraction of each image path")
    print(f"{'quality':>7} {'lnc bpp':>8} {'PNG bpp':>8} {'WebP bpp':>9} {'lnc/PNG':>8} {'lnc/WebP':>9}")
    for i, quality in enumerate(qualities):
        lnc, png, webp = (bits[name][i].mean() for name in ("lnc", "png", "webp"))
        print(f"{quality:7g} {lnc:8.4f} {png:8.4f} {webp:9.4f} {lnc / png:8.3f} {lnc / webp:9.3f}")
    total = {name: bits[name].sum() for name in bits}
    print(f"{'all':>7} {'':8} {'':8} {'':9} {total['lnc'] / total['png']:8.3f} {total['lnc'] / total['webp']:9.3f}")
    if clipped:
        print(f"{clipped} latent values outside -128..127 were clipped for the image paths (their files are lossy)")


if __name__ == "__main__":
    main()
