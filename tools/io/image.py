"""Image files ↔ 8-bit pictures: the one image reader, with one policy.

EXIF orientation is applied; grayscale is coded as RGB with equal channels and decoded back to
grayscale; an alpha channel that is not fully opaque is kept beside the RGB; palette and CMYK images
are converted to RGB; images with more than 8 bits per channel are refused.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lnc.entropy.errors import InputError

MAX_PIXELS = 1 << 28
"""Largest image accepted (about 16k × 16k)."""


@dataclass
class Picture:
    """An 8-bit picture as the pipeline sees it: RGB, the original channel count, optional alpha."""

    rgb: np.ndarray
    channels: int = 3
    alpha: np.ndarray | None = None

    def to_image(self) -> Image.Image:
        """The Pillow image to save: grayscale, RGB or RGBA, as the input was."""
        if self.channels == 1:
            gray = np.round(self.rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
            return Image.fromarray(gray)
        image = Image.fromarray(self.rgb)
        if self.alpha is not None:
            image.putalpha(Image.fromarray(self.alpha))
        return image


def read_picture(source: str | bytes) -> Picture:
    """Read an image file (path or bytes) with the policy in the module docstring."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        name = "stdin" if isinstance(source, bytes) else source
        raise InputError(f"cannot read image {name}: {exc}") from None
    if image.width * image.height > MAX_PIXELS:
        raise InputError(f"image of {image.width}x{image.height} pixels exceeds the limit of {MAX_PIXELS}")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise InputError(f"{image.mode} images (more than 8 bits per channel) are not supported")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    channels = 1 if image.mode in ("L", "LA", "1") else 3
    alpha = None
    if image.mode in ("RGBA", "LA", "PA"):
        a = np.asarray(image.getchannel("A"))
        alpha = a if (a != 255).any() else None
    rgb = np.array(image.convert("RGB"))  # a writable copy: torch refuses read-only arrays
    return Picture(rgb=rgb, channels=channels, alpha=alpha)


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as the H×W×3 uint8 RGB array the codecs see, under the same policy: what
    evaluation, training and benchmarks read."""
    return read_picture(os.fspath(path)).rgb
