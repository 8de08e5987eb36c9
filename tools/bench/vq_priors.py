"""Rate of a VQ codec's indices under its three priors, and how much of each codebook is used.

    python -m lnc.tools.bench.vq_priors [-m MODEL] [--dataset kodak] [-q Q …] [--limit N]

For every image and rate point the same index map is coded three times, with the uniform prior
(``log2 K'`` bits per index, Mao et al.'s coding), the factorized prior and the four-pass context
prior; each is a whole ``.lnc`` file as ``lnc encode`` writes it, and each decodes to the same
picture (checked). Prints mean bits per pixel, the saving of each learned prior against uniform
coding, and the codebook's usage over the dataset: the fraction of entries used and the perplexity
of the index distribution.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm

from lnc.codecs import load
from lnc.codecs.image.vq import VQGAN
from lnc.codecs.latent.indices import INDEX_PRIORS
from lnc.codecs.layers.vq import usage
from lnc.entropy.errors import InputError
from lnc.tools.bench import dataset_images, dataset_parser
from lnc.tools.eval.datasets import image_paths
from lnc.tools.pipeline.image import decode_bytes, encode_array


def main(argv: list[str] | None = None) -> None:
    args = dataset_parser(__doc__.splitlines()[0], "vq-f16-vr", "VQ").parse_args(argv)

    codec = load(args.model)
    if not isinstance(codec, VQGAN):
        raise InputError(f"{codec.name} is a {codec.architecture} codec, not a VQ codec")
    qualities = args.quality or list(codec.quality_points)
    paths = image_paths(args.dataset, args.limit)
    bits = {prior: np.zeros((len(qualities), len(paths))) for prior in INDEX_PRIORS}
    indices: list[list[torch.Tensor]] = [[] for _ in qualities]
    shipped_prior = codec.index_prior
    with tqdm(total=len(qualities) * len(paths), unit="img", desc=codec.name) as bar:
        for j, path, rgb, x in dataset_images(paths, codec.downsampling):
            pixels = rgb.shape[0] * rgb.shape[1]
            for i, quality in enumerate(qualities):
                with torch.no_grad():
                    indices[i].append(codec.indices(x, quality).flatten())
                decoded = []
                for prior in INDEX_PRIORS:
                    codec.index_prior = prior
                    data = encode_array(rgb, codec, quality)
                    bits[prior][i, j] = 8 * len(data) / pixels
                    decoded.append(decode_bytes(data, codec))
                codec.index_prior = shipped_prior
                if any(not np.array_equal(decoded[0], d) for d in decoded[1:]):
                    raise AssertionError(f"{path.name} q{quality:g}: the priors decoded different pictures")
                bar.update()
    sizes = [codec.quantizer.sizes[max(0, round(q) - 1)] for q in qualities]
    print(f"{codec.name} on {args.dataset} ({len(paths)} images): mean bpp of whole .lnc files; saving against uniform")
    print(f"{'quality':>7} {'K':>6} {'uniform':>8} {'factorized':>10} {'context':>8} {'fact.':>7} {'context':>8} "
          f"{'used':>6} {'perplexity':>10}")
    for i, (quality, size) in enumerate(zip(qualities, sizes)):
        uniform, factorized, context = (bits[prior][i].mean() for prior in INDEX_PRIORS)
        stats = usage(torch.cat(indices[i]), size)
        print(f"{quality:7g} {size:6d} {uniform:8.4f} {factorized:10.4f} {context:8.4f} "
              f"{1 - factorized / uniform:7.1%} {1 - context / uniform:8.1%} {stats['used']:6.1%} "
              f"{stats['perplexity']:10.1f}")
    print(f"(uniform coding of one index per {codec.downsampling}² pixels costs log2 K / "
          f"{codec.downsampling ** 2} bpp: {', '.join(f'{math.log2(k) / codec.downsampling ** 2:.4f}' for k in sizes)})")


if __name__ == "__main__":
    main()
