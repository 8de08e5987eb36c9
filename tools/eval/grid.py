"""Picture grids: the same crop of each image through several codecs, side by side, labelled with
rate and PSNR. At extreme rates people would rather look than read numbers."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from lnc.tools.eval import image_metrics
from lnc.tools.eval.image import RateCodec

LABEL_HEIGHT = 16


def centre_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size``² window of ``rgb`` (the whole side where it is smaller)."""
    h, w = rgb.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return rgb[top : top + size, left : left + size]


def coded_cell(codec: RateCodec, rgb: np.ndarray, quality: float) -> tuple[np.ndarray, str]:
    """``rgb`` through ``codec`` at ``quality`` (whole image, real bytes) and its label."""
    data = codec.encode(rgb, quality)
    decoded = codec.decode(data)
    bpp = 8 * len(data) / (rgb.shape[0] * rgb.shape[1])
    return decoded, f"{codec.label} q{quality:g}: {bpp:.3f} bpp, {image_metrics.psnr(rgb, decoded):.1f} dB"


def picture_grid(rows: Sequence[Sequence[tuple[np.ndarray, str]]], crop: int) -> Image.Image:
    """One row per image, one column per (picture, label) cell: the centred ``crop`` of each
    picture with its label above it."""
    cells = [[(centre_crop(rgb, crop), label) for rgb, label in row] for row in rows]
    height = max(c.shape[0] for row in cells for c, _ in row) + LABEL_HEIGHT
    width = max(c.shape[1] for row in cells for c, _ in row)
    columns = max(len(row) for row in cells)
    grid = Image.new("RGB", (columns * width, len(cells) * height), "white")
    draw = ImageDraw.Draw(grid)
    for r, row in enumerate(cells):
        for c, (picture, label) in enumerate(row):
            grid.paste(Image.fromarray(picture), (c * width, r * height + LABEL_HEIGHT))
            draw.text((c * width + 2, r * height + 2), label, fill="black")
    return grid
