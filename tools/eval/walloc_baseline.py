"""WaLLoC's own entropy stage, as a baseline for lnc's learned prior on the same integer latents.

Jacobellis & Yadwadkar 2025 (arXiv:2412.09405) store a codec's quantised latents as 8-bit images
and let a lossless image coder find their redundancy: one grayscale PNG, or an RGB lossless WebP.
Here the integer latents of :meth:`lnc.codecs.walloc.IntegerLatentsMixin.encode_latents` are

* shifted by 128 and clamped to 0..255 (values outside -128..127 are clipped and counted:
  :attr:`LatentImages.clipped`; the latents decode back exactly when it is 0);
* tiled as WaLLoC tiles them (``b (c nh nw) h w -> b (nh h) (nw w) c``): an image holds
  ``colours`` planes (1 for PNG, 3 for WebP) of ``t`` tiles each, a tile the size of the latent
  (1-D latents are rows of height 1), and channel ``k`` is tile ``k mod t`` of plane ``k div t``,
  the tiles filling the grid row by row; channels beyond ``M`` are zeros. The grid is
  ``ceil(√(M/colours))`` tiles wide for 2-D latents, one tile wide for 1-D ones (an audio
  latent's channels become stacked rows of its time axis), and as many rows deep as needed:
  WaLLoC pads the channels to ``colours·n²`` for a square grid, which is never fewer tiles;
* written by Pillow, one image per batch item: PNG at zlib level 9, WebP lossless at its highest
  effort (``quality=100, method=6``).

The rate to compare is :attr:`LatentImages.size` against the bytes of the ``y`` stream of
``codec.compress`` for the same input and quality.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from lnc.entropy.errors import InputError

FORMATS = {"png": 1, "webp": 3}
"""Image format → colours per pixel (grayscale PNG, RGB WebP, as WaLLoC stores its latents)."""
_OFFSET = 128


@dataclass(frozen=True)
class LatentImages:
    """Integer latents ``[B, M, *size]`` stored as one 8-bit image file per batch item."""

    format: str
    files: list[bytes]
    shape: tuple[int, ...]
    """``(M, *size)``: what :func:`decode_latent_images` rebuilds."""
    clipped: int
    """Latent values outside -128..127, clamped before storing."""

    @property
    def size(self) -> int:
        """Bytes of every file together."""
        return sum(len(f) for f in self.files)


def _grid(channels: int, size: tuple[int, ...], colours: int) -> tuple[int, int, int, int]:
    """Tile height and width, and the grid's tiles per column and per row, for ``channels`` latent
    channels in planes of ``colours``."""
    tiles = -(-channels // colours)
    height, width = (1, size[0]) if len(size) == 1 else size
    across = 1 if len(size) == 1 else math.ceil(math.sqrt(tiles))
    return height, width, -(-tiles // across), across


def _check_format(fmt: str) -> int:
    if fmt not in FORMATS:
        raise InputError(f"latent image format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt]


def encode_latent_images(latents: Tensor, fmt: str = "webp") -> LatentImages:
    """Store integer latents ``[B, M, T]`` or ``[B, M, H, W]`` as 8-bit ``fmt`` images (``png`` or ``webp``)."""
    colours = _check_format(fmt)
    if latents.dim() not in (3, 4) or latents.is_floating_point() or latents.is_complex():
        raise InputError(
            f"latents must be integers [B, M, T] or [B, M, H, W], got {latents.dtype} {tuple(latents.shape)}"
        )
    batch, channels, *size = latents.shape
    height, width, down, across = _grid(channels, tuple(size), colours)
    values = latents.detach().to("cpu", torch.int64)
    clipped = int(((values < -_OFFSET) | (values > 255 - _OFFSET)).sum())
    pixels = (values + _OFFSET).clamp(0, 255).to(torch.uint8).reshape(batch, channels, height, width)
    planes = torch.zeros(batch, colours * down * across, height, width, dtype=torch.uint8)
    planes[:, :channels] = pixels
    # [B, (colours, rows, columns), h, w] → [B, rows·h, columns·w, colours]
    mosaic = planes.reshape(batch, colours, down, across, height, width).permute(0, 2, 4, 3, 5, 1)
    mosaic = mosaic.reshape(batch, down * height, across * width, colours).numpy()
    files = []
    for image in mosaic:
        buffer = io.BytesIO()
        if fmt == "png":
            Image.fromarray(image[..., 0]).save(buffer, "PNG", compress_level=9)
        else:
            Image.fromarray(image).save(buffer, "WEBP", lossless=True, quality=100, method=6)
        files.append(buffer.getvalue())
    return LatentImages(fmt, files, (channels, *size), clipped)


def decode_latent_images(stored: LatentImages) -> Tensor:
    """The int32 latents ``[B, *stored.shape]`` of :func:`encode_latent_images` (clamped values stay clamped)."""
    colours = _check_format(stored.format)
    channels, *size = stored.shape
    height, width, down, across = _grid(channels, tuple(size), colours)
    images = []
    for data in stored.files:
        try:
            with Image.open(io.BytesIO(data)) as image:
                array = np.asarray(image.convert("L" if colours == 1 else "RGB"))
        except OSError as exc:  # Pillow's errors for unreadable images
            raise InputError(f"not a readable {stored.format} latent image ({exc})") from None
        if array.shape[:2] != (down * height, across * width):
            raise InputError(f"a {array.shape[1]}×{array.shape[0]} latent image does not hold latents {stored.shape}")
        images.append(array.reshape(down * height, across * width, colours))
    mosaic = torch.from_numpy(np.stack(images))
    planes = mosaic.reshape(-1, down, height, across, width, colours).permute(0, 5, 1, 3, 2, 4)
    planes = planes.reshape(-1, colours * down * across, height, width)[:, :channels]
    return (planes.to(torch.int32) - _OFFSET).reshape(-1, channels, *size)
