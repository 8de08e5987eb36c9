"""Files written by an earlier release still decode to the same PNG bytes, and the same crops now
code into files no larger (``tests/data/golden``: container version 1, one stream per checkerboard pass)."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnc.codecs import load
from lnc.entropy.chunked import ChunkReader, open_reader
from lnc.tools.cli import main
from lnc.tools.pipeline.image import decode_picture

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
RECORDS = json.loads((GOLDEN / "decoded.json").read_text())


def _crop(data_dir: Path, source: dict) -> Image.Image:
    """The crop a golden file was encoded from, rebuilt as its ``source`` record describes."""
    rgb = np.asarray(Image.open(data_dir / source["image"]).convert("RGB"))
    (top, bottom), (left, right) = source["rows"], source["cols"]
    image = Image.fromarray(rgb[top:bottom, left:right])
    if source["mode"] in ("RGB", "L"):
        return image.convert(source["mode"])
    if source["mode"] == "LA":
        image = image.convert("L")
    elif source["mode"] == "RGBA":
        image = image.convert("RGBA")
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 192).astype(np.uint8), (128, 1)))
    image.putalpha(ramp if image.size == ramp.size else ramp.resize(image.size))
    return image


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_golden_file_decodes_to_the_same_png_and_recodes_no_larger_but_for_checksums(name, data_dir, tmp_path):
    record = RECORDS[name]
    decoded = tmp_path / "decoded.png"
    assert main(["decode", str(GOLDEN / name), "-o", str(decoded)]) == 0
    assert hashlib.sha256(decoded.read_bytes()).hexdigest() == record["png_sha256"]

    crop = tmp_path / "crop.png"
    _crop(data_dir, record["source"]).save(crop)
    model, quality = name.split("-", 1)[1].rsplit("-q", 1)
    recoded = tmp_path / "new.lnc"
    assert main(["encode", str(crop), "-o", str(recoded), "-m", model, "-q", quality.removesuffix(".lnc")]) == 0
    # Version 2 costs no more than version 1 but for the 4-byte checksum of each tile's symbols.
    with open_reader(recoded) as reader:
        tiles = reader.count
    assert recoded.stat().st_size <= record["bytes"] + 4 * tiles, (recoded.stat().st_size, record["bytes"])
    # The same decoded samples from the new layout (grayscale with alpha now comes back as LA
    # rather than RGBA, so compare what the codec decoded, not the PNGs).
    codec = load(model)
    old, new = (decode_picture(ChunkReader(io.BytesIO(p.read_bytes()), p.stat().st_size), codec)
                for p in (GOLDEN / name, recoded))
    assert np.array_equal(old.rgb, new.rgb)
    assert (old.alpha is None and new.alpha is None) or np.array_equal(old.alpha, new.alpha)
