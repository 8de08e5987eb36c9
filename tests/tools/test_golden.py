"""Files written by earlier releases still decode (``tests/data/golden``).

Two generations: container version 1 files of the float models (``decoded.json``), whose scale
indexes come from float32 convolutions and so match the writer's only where the CPU's float kernels
round as the writer's did; and version 2 files of the exact default (``portable.json``), whose
entropy parameters are computed exactly, so every machine decodes the same symbols and the picture
differs from the writer's by at most one level in a few samples (the synthesis is float)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnc.codecs import load
from lnc.entropy.chunked import ChunkReader, open_reader
from lnc.tools.cli import main
from lnc.tools.eval.image_metrics import psnr
from lnc.tools.pipeline.image import decode_picture

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
FLOAT_FILES = json.loads((GOLDEN / "decoded.json").read_text())
PORTABLE_FILES = json.loads((GOLDEN / "portable.json").read_text())
# The scalar kernels of ATen, oneDNN and MKL: float rounding unlike any vectorised machine's.
BASELINE_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


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


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _recode(name: str, crop: Image.Image, tmp_path: Path) -> tuple[str, Path]:
    """The golden file's crop encoded again by today's lnc with the file's model and quality."""
    source = tmp_path / "crop.png"
    crop.save(source)
    model, quality = name.split("-", 1)[1].rsplit("-q", 1)
    recoded = tmp_path / "new.lnc"
    assert main(["encode", str(source), "-o", str(recoded), "-m", model, "-q", quality.removesuffix(".lnc")]) == 0
    return model, recoded


@pytest.mark.parametrize("name", sorted(PORTABLE_FILES))
def test_portable_file_decodes_to_the_same_symbols_on_any_float_kernels(name, data_dir, tmp_path, capsys):
    record = PORTABLE_FILES[name]
    crop = _crop(data_dir, record["source"])
    native, baseline = tmp_path / "native.png", tmp_path / "baseline.png"
    assert main(["decode", str(GOLDEN / name), "-o", str(native)]) == 0
    # The writer's symbols: a single wrong scale index would desynchronise the rest of the stream.
    assert psnr(_rgb(native), np.asarray(crop.convert("RGB"))) == pytest.approx(record["psnr-rgb"], abs=0.01)
    cli = [sys.executable, "-c", "import sys; from lnc.tools.cli import main; sys.exit(main(sys.argv[1:]))"]
    done = subprocess.run([*cli, "decode", str(GOLDEN / name), "-o", str(baseline)], capture_output=True,
                          text=True, env={**os.environ, **BASELINE_KERNELS}, timeout=120)
    assert done.returncode == 0, done.stderr
    difference = np.abs(_rgb(native).astype(int) - _rgb(baseline))
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 1e-3 * difference.size

    model, recoded = _recode(name, crop, tmp_path)
    # Another machine's float analysis may move a few latents by one step: a few bytes at most.
    assert recoded.stat().st_size <= record["bytes"] * 1.01, (recoded.stat().st_size, record["bytes"])


@pytest.mark.parametrize("name", sorted(FLOAT_FILES))
def test_float_model_file_decodes_as_written_or_fails_cleanly(name, data_dir, tmp_path, capsys):
    record = FLOAT_FILES[name]
    crop = _crop(data_dir, record["source"])
    decoded = tmp_path / "decoded.png"
    code = main(["decode", str(GOLDEN / name), "-o", str(decoded)])
    model, recoded = _recode(name, crop, tmp_path)
    with open_reader(recoded) as reader:
        tiles = reader.count
    # Version 2 costs no more than version 1 but for the 4-byte checksum of each tile's symbols
    # (and a few bytes where this machine's float analysis moves a latent).
    assert recoded.stat().st_size <= record["bytes"] + 4 * tiles + 8, (recoded.stat().st_size, record["bytes"])
    if code != 0:
        # Version 1 has no symbol checksums: a desynchronised stream shows as running out of data.
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("lnc: error:") and "\n" not in err and not decoded.exists()
        return
    if hashlib.sha256(decoded.read_bytes()).hexdigest() == record["png_sha256"]:
        # The writer's float kernels: the version 2 layout decodes to the same samples.
        codec = load(model)
        old, new = (decode_picture(ChunkReader(io.BytesIO(p.read_bytes()), p.stat().st_size), codec)
                    for p in (GOLDEN / name, recoded))
        assert np.array_equal(old.rgb, new.rgb)
        assert (old.alpha is None and new.alpha is None) or np.array_equal(old.alpha, new.alpha)
        return
    # Other float kernels: a few scale indexes differ from the writer's, the picture stays the codec's.
    fresh = tmp_path / "fresh.png"
    assert main(["decode", str(recoded), "-o", str(fresh)]) == 0
    target = np.asarray(crop.convert("RGB"))
    assert psnr(_rgb(decoded), target) >= psnr(_rgb(fresh), target) - 1.0
