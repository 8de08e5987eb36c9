"""Classical codecs round-trip real Kodak images through real encoders, in memory."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lnc.entropy.errors import InputError
from lnc.tools.eval import image_baselines as baselines, image_metrics as metrics

# File signatures: each codec must produce its real format, not something Pillow would also read.
MAGIC = {
    "jpeg": (0, b"\xff\xd8\xff"),
    "jpeg444": (0, b"\xff\xd8\xff"),
    "webp": (8, b"WEBP"),
    "avif": (4, b"ftypavif"),
    "jpeg2000": (0, b"\xff\x4f\xff\x51"),  # J2K codestream: SOC then SIZ marker
}
# A low and a high quality of each codec's own scale.
LOW_HIGH = {
    "jpeg": (10, 80), "jpeg444": (10, 80), "webp": (10, 80), "avif": (20, 70), "jpeg2000": (0.25, 1.5)
}


@pytest.fixture(scope="module")
def image(kodim) -> np.ndarray:
    """kodim19 (portrait, 512x768), cropped to 384x512 to keep AVIF and JPEG 2000 quick."""
    return np.ascontiguousarray(kodim(19)[:512, :384])


@pytest.mark.parametrize("name", sorted(baselines.CODECS))
def test_round_trip_bpp_from_bytes_and_quality_rising_with_rate(name, image) -> None:
    codec = baselines.get(name)
    offset, magic = MAGIC[name]
    bpps, psnrs = [], []
    for quality in LOW_HIGH[name]:
        data = codec.encode(image, quality)
        assert data[offset : offset + len(magic)] == magic
        decoded = codec.decode(data)
        assert decoded.shape == image.shape and decoded.dtype == np.uint8
        bpps.append(8 * len(data) / (image.shape[0] * image.shape[1]))
        psnrs.append(metrics.psnr(image, decoded))
    assert 0.05 < bpps[0] < bpps[1] < 6
    assert 22 < psnrs[0] < psnrs[1] < 50
    assert codec.payload_bytes(data) is None


def test_default_jpeg_is_pillows_default_420_like_compressais_anchor(image) -> None:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=50)  # what CompressAI's bench does
    assert baselines.get("jpeg").encode(image, 50) == buffer.getvalue()
    with Image.open(buffer) as jpeg:
        assert jpeg.layer[0][1:3] == (2, 2) and jpeg.layer[1][1:3] == (1, 1)  # luma sampled 2x2: 4:2:0


def test_jpeg444_keeps_full_chroma_and_costs_more_bits(image) -> None:
    sub, full = baselines.get("jpeg").encode(image, 50), baselines.get("jpeg444").encode(image, 50)
    with Image.open(io.BytesIO(full)) as jpeg:
        assert all(layer[1:3] == (1, 1) for layer in jpeg.layer)
    assert len(full) > len(sub)


def test_jpeg2000_quality_is_the_target_bpp(image) -> None:
    codec = baselines.get("jpeg2000")
    for target in (0.3, 1.0):
        bpp = 8 * len(codec.encode(image, target)) / (image.shape[0] * image.shape[1])
        assert bpp == pytest.approx(target, rel=0.05)


def test_descriptions_name_the_library_versions() -> None:
    assert "libjpeg_turbo" in baselines.get("jpeg").description
    assert "aom" in baselines.get("avif").description and "dav1d" in baselines.get("avif").description
    assert "Pillow" in baselines.get("webp").description


def test_unknown_codec_and_out_of_range_quality_are_input_errors(image) -> None:
    with pytest.raises(InputError, match="choose from"):
        baselines.get("heif")
    with pytest.raises(InputError, match=r"quality must lie in \[1, 100\]"):
        baselines.get("jpeg").encode(image, 150)
    with pytest.raises(InputError, match="target bits per pixel"):
        baselines.get("jpeg2000").encode(image, 0)
