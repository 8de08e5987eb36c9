"""Classical image codecs through Pillow, measured the same way as the learned ones.

One code path for every codec: an entry in ``CODECS`` says which Pillow format and encoder
options a quality value maps to; encoding goes to bytes in memory, bpp counts those bytes and
the decoded image is what the metrics see. Pillow ships all five encoders (libjpeg-turbo,
libwebp, libavif with aom, OpenJPEG), so no other library is needed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import PIL
from PIL import Image, features

from lnc.entropy.errors import InputError, LncError


def _jpeg2000_options(bpp: float) -> dict[str, Any]:
    # OpenJPEG's rate is a compression ratio against the raw 24 bit/pixel image; the 9/7
    # wavelet with the irreversible colour transform is JPEG 2000's lossy mode (ITU-T T.800).
    return {"quality_mode": "rates", "quality_layers": [24.0 / bpp], "irreversible": True, "mct": 1,
            "no_jp2": True}


@dataclass(frozen=True)
class ClassicalCodec:
    """A Pillow codec; ``quality`` means what ``options`` makes of it, as ``quality_meaning`` says."""

    name: str
    label: str
    pillow_format: str
    libraries: tuple[str, ...]  # PIL.features names, for availability and versions
    qualities: tuple[float, ...]  # default sweep, about 0.1-2 bpp on Kodak
    quality_range: tuple[float, float]  # inclusive
    quality_meaning: str
    options: Callable[[float], dict[str, Any]] = field(repr=False)

    def check_quality(self, quality: float) -> None:
        """Raise ``InputError`` unless ``quality`` lies in the codec's range."""
        low, high = self.quality_range
        if not low <= quality <= high:
            raise InputError(
                f"{self.label} quality must lie in [{low:g}, {high:g}] ({self.quality_meaning}), "
                f"got {quality:g}"
            )

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Encode an HxWx3 uint8 image to the codec's file bytes."""
        self.check_quality(quality)
        buffer = io.BytesIO()
        image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
        image.save(buffer, format=self.pillow_format, **self.options(quality))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decode file bytes to an HxWx3 uint8 RGB image."""
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))

    def payload_bytes(self, data: bytes) -> None:
        """Classical files have no separately counted payload: bpp is the whole file."""
        return None

    @property
    def description(self) -> str:
        """What was measured, with the library versions that produced it."""
        versions = [f"Pillow {PIL.__version__}"]
        versions += [f"{lib} {features.version(lib)}" for lib in self.libraries]
        if self.pillow_format == "AVIF":
            from PIL import AvifImagePlugin

            versions += [f"{c} {AvifImagePlugin.get_codec_version(c)}" for c in ("aom", "dav1d")]
        return f"{self.label} ({self.quality_meaning}). {', '.join(versions)}"


_SWEEP_5_95 = tuple(range(5, 100, 5))  # CompressAI's Pillow JPEG and WebP anchors use q = 5, 10, ..., 95

CODECS: dict[str, ClassicalCodec] = {
    c.name: c
    for c in (
        ClassicalCodec(
            name="jpeg", label="JPEG", pillow_format="JPEG", libraries=("libjpeg_turbo",),
            qualities=_SWEEP_5_95, quality_range=(1, 100),
            quality_meaning="libjpeg quality, 4:2:0 chroma like Pillow's default",
            options=lambda q: {"quality": int(q), "subsampling": "4:2:0"},
        ),
        ClassicalCodec(
            name="jpeg444", label="JPEG 4:4:4", pillow_format="JPEG", libraries=("libjpeg_turbo",),
            qualities=_SWEEP_5_95, quality_range=(1, 100),
            quality_meaning="libjpeg quality, 4:4:4 chroma",
            options=lambda q: {"quality": int(q), "subsampling": "4:4:4"},
        ),
        ClassicalCodec(
            name="webp", label="WebP", pillow_format="WEBP", libraries=("webp",),
            qualities=_SWEEP_5_95, quality_range=(0, 100),
            quality_meaning="libwebp quality, lossy, method 4",
            options=lambda q: {"quality": int(q), "method": 4},
        ),
        ClassicalCodec(
            name="avif", label="AVIF", pillow_format="AVIF", libraries=("avif",),
            qualities=(10, 20, 30, 40, 50, 60, 70, 80), quality_range=(0, 100),
            quality_meaning="libavif quality, 4:2:0, speed 6",
            options=lambda q: {"quality": int(q), "subsampling": "4:2:0", "speed": 6},
        ),
        ClassicalCodec(
            name="jpeg2000", label="JPEG 2000", pillow_format="JPEG2000", libraries=("jpg_2000",),
            qualities=(0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0),
            quality_range=(0.01, 24),
            quality_meaning="quality = target bits per pixel, 9/7 wavelet, J2K codestream",
            options=_jpeg2000_options,
        ),
    )
}


def get(name: str) -> ClassicalCodec:
    """The classical codec ``name``, checked to be built into this Pillow."""
    if name not in CODECS:
        raise InputError(f"unknown classical codec {name!r}; choose from {', '.join(CODECS)}")
    codec = CODECS[name]
    missing = [lib for lib in codec.libraries if not features.check(lib)]
    if missing:
        raise LncError(
            f"{codec.label} is not available: Pillow {PIL.__version__} was built without {', '.join(missing)}"
        )
    return codec
