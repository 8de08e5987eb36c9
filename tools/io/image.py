"""Image files ↔ 8-bit pictures: the one image reader, with one policy.

EXIF orientation is applied; grayscale is coded as RGB with equal channels and decoded back to
grayscale; an alpha channel that is not fully opaque is kept beside the RGB (grayscale with alpha
comes back as grayscale with alpha); palette and CMYK images are converted to RGB; images with more
than 8 bits per channel (16-bit PNG and TIFF included) and animated images are refused.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lnc.entropy.errors import InputError

MAX_PIXELS = 1 << 28
"""Largest image accepted (about 16k × 16k): lnc sets Pillow's decompression-bomb limit to this, so
that one limit applies, checked from the file's header before any pixel is decoded."""
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass
class Picture:
    """An 8-bit picture as the pipeline sees it: RGB, the original channel count, optional alpha."""

    rgb: np.ndarray
    channels: int = 3
    alpha: np.ndarray | None = None

    @property
    def stored_channels(self) -> int:
        """Channels a file records: 1 gray, 2 gray + alpha, 3 RGB, 4 RGB + alpha."""
        return self.channels + (self.alpha is not None)

    def to_image(self) -> Image.Image:
        """The Pillow image to save: grayscale, grayscale with alpha, RGB or RGBA, as the input was."""
        if self.channels == 1:
            image = Image.fromarray(np.round(self.rgb.astype(np.float32).mean(axis=2)).astype(np.uint8))
        else:
            image = Image.fromarray(self.rgb)
        if self.alpha is not None:
            image.putalpha(Image.fromarray(self.alpha))
        return image


def _rawmodes(image: Image.Image) -> list[str]:
    """The raw sample layouts the decoder will read, e.g. ``"RGB;16B"`` for a 16-bit PNG that
    Pillow would silently reduce to 8 bits."""
    return [str(tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0]) for tile in image.tile]


def read_picture(source: str | bytes, name: str | None = None) -> Picture:
    """Read an image file (path, or bytes named ``name``, default "stdin") with the policy in the
    module docstring; every refusal is one :class:`InputError` line naming the file."""
    name = name or ("stdin" if isinstance(source, bytes) else str(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        deep = any(";16" in mode or ";32" in mode for mode in _rawmodes(image))
        image.load()
    except FileNotFoundError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InputError(f"image {name} exceeds the limit of {MAX_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise InputError(f"cannot read image {name}: not an image format Pillow reads") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"cannot read image {name}: {exc}") from None
    if getattr(image, "n_frames", 1) > 1:
        raise InputError(f"image {name} is animated ({image.n_frames} frames); lnc codes still images")
    image = ImageOps.exif_transpose(image)
    if deep or image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise InputError(f"image {name} has more than 8 bits per channel, which lnc does not code")
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
