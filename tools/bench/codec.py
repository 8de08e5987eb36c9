"""Encode + decode time of one Kodak image with learned codecs, next to Pillow's JPEG and WebP.

    python -m lnc.tools.bench.codec [-m MODEL [-m MODEL …]] [--image kodim01.png] [-q Q] [--repeat 3] [--refine STEPS]

Prints a table of seconds (best of ``--repeat``), throughput in megapixels per second, and each
row's encode and decode speed as a multiple of the first model's, all measured in the same run on
the same image; the time covers the whole file path (array → bytes → array). ``--refine`` adds a
row per model for the encoder with that many latent-refinement steps (timed once).
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
import torch
from PIL import Image

from lnc.codecs import load
from lnc.tools.eval.datasets import resolve
from lnc.tools.io.image import read_rgb
from lnc.tools.pipeline.image import decode_bytes, encode_array


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _pillow(rgb: np.ndarray, fmt: str, quality: int) -> tuple[bytes, np.ndarray]:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, quality=quality)
    data = buffer.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", action="append", dest="models",
                        help="model name or .safetensors path (default: the shipped default); repeat to compare")
    parser.add_argument("--image", default="kodim01.png", help="a file name in the Kodak folder")
    parser.add_argument("-q", "--quality", type=float, help="rate point (default: the model's default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS", help="also time a refined encode")
    args = parser.parse_args(argv)

    rgb = read_rgb(resolve("kodak") / args.image)
    pixels = rgb.shape[0] * rgb.shape[1]
    codecs = [load(model) for model in args.models or [None]]
    coded = [encode_array(rgb, codec, args.quality) for codec in codecs]  # also warms each codec up
    # The repeats take turns across the models, so that a slow phase of the machine (a busy
    # neighbour, a clock change) slows them all alike and their ratios hold.
    encode_s, decode_s = [float("inf")] * len(codecs), [float("inf")] * len(codecs)
    for _ in range(args.repeat):
        for k, (codec, data) in enumerate(zip(codecs, coded)):
            encode_s[k] = min(encode_s[k], _best(lambda: encode_array(rgb, codec, args.quality), 1)[0])
            decode_s[k] = min(decode_s[k], _best(lambda: decode_bytes(data, codec), 1)[0])
    rows = []
    for codec, data, enc, dec in zip(codecs, coded, encode_s, decode_s):
        rows.append((f"lnc {codec.name}", enc, dec, 8 * len(data) / pixels))
        if args.refine:
            refine_s, refined = _best(lambda: encode_array(rgb, codec, args.quality, args.refine), 1)
            rows.append((f"lnc {codec.name}, refine {args.refine}", refine_s, dec, 8 * len(refined) / pixels))
    for fmt, quality in (("JPEG", 75), ("WEBP", 75)):
        enc, (coded, _) = _best(lambda: _pillow(rgb, fmt, quality), args.repeat)
        rows.append((f"Pillow {fmt} q{quality} (enc+dec)", enc, 0.0, 8 * len(coded) / pixels))
    _, first_enc, first_dec, _ = rows[0]
    print(f"{args.image} {rgb.shape[1]}x{rgb.shape[0]}, torch threads {torch.get_num_threads()}, best of {args.repeat}")
    print(f"{'codec':44} {'encode s':>9} {'decode s':>9} {'enc MP/s':>9} {'dec MP/s':>9} {'bpp':>7} "
          f"{'enc ×1st':>9} {'dec ×1st':>9}")
    for name, enc, dec, bpp in rows:
        # Speeds as multiples of the first row's: above 1 is faster.
        dec_cells = (f"{pixels / dec / 1e6:9.2f}", f"{first_dec / dec:9.2f}") if dec else (f"{'':9}",) * 2
        print(f"{name:44} {enc:9.3f} {dec:9.3f} {pixels / enc / 1e6:9.2f} {dec_cells[0]} {bpp:7.3f} "
              f"{first_enc / enc:9.2f} {dec_cells[1]}")

if __name__ == "__main__":
    main()
