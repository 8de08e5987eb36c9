"""Image inputs that lnc must refuse or keep as they are, each with one error line naming the file."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lnc.tools.cli import main


def _png16(path, samples: np.ndarray, colour_type: int) -> None:
    """A 16-bit PNG written chunk by chunk (Pillow cannot write 16-bit RGB)."""
    height, width = samples.shape[:2]
    raw = b"".join(b"\0" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def crop(kodim) -> np.ndarray:
    return np.ascontiguousarray(kodim(7)[:64, :96])


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lnc: error: "), err
    return err


@pytest.mark.parametrize("colour_type, channels", [(2, 3), (6, 4)])
def test_16_bit_png_is_refused_not_reduced(tmp_path, capsys, crop, colour_type, channels):
    source = tmp_path / "deep.png"
    samples = np.concatenate([crop, crop[..., :1]], axis=2)[..., :channels].astype(np.uint16) * 257
    _png16(source, samples, colour_type)
    assert main(["encode", str(source), "-o", str(tmp_path / "x.lnc")]) == 2
    assert "deep.png has more than 8 bits per channel" in _error(capsys)
    assert not (tmp_path / "x.lnc").exists()


def test_grayscale_with_alpha_comes_back_as_grayscale_with_alpha(tmp_path, crop):
    gray = Image.fromarray(crop).convert("L")
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1)))
    gray.putalpha(ramp)
    gray.save(tmp_path / "la.png")
    assert main(["encode", str(tmp_path / "la.png"), "-o", str(tmp_path / "la.lnc")]) == 0
    assert main(["decode", str(tmp_path / "la.lnc"), "-o", str(tmp_path / "back.png")]) == 0
    with Image.open(tmp_path / "back.png") as back:
        assert back.mode == "LA"
        assert np.array_equal(np.asarray(back.getchannel("A")), np.asarray(ramp))  # alpha is lossless
        error = np.asarray(back.getchannel("L"), dtype=float) - np.asarray(gray.getchannel("L"), dtype=float)
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 25


def test_animated_images_are_refused(tmp_path, capsys, crop):
    frames = [Image.fromarray(crop), Image.fromarray(255 - crop)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert main(["encode", str(tmp_path / "anim.gif"), "-o", str(tmp_path / "x.lnc")]) == 2
    assert "anim.gif is animated (2 frames)" in _error(capsys)


def test_unreadable_image_names_the_file_not_an_object(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are not pixels")
    assert main(["encode", str(bad), "-o", str(tmp_path / "x.lnc")]) == 2
    err = _error(capsys)
    assert str(bad) in err and "object at 0x" not in err
    monkeypatch.setattr("sys.stdin", type("In", (), {"buffer": __import__("io").BytesIO(b"junk")})())
    assert main(["encode", "-", "-o", str(tmp_path / "y.lnc")]) == 2
    assert "cannot read image stdin" in _error(capsys)


@pytest.mark.parametrize("quality", ["nan", "inf", "1e39", "-1", "9"])
def test_absurd_qualities_are_one_line(tmp_path, capsys, crop, quality):
    Image.fromarray(crop).save(tmp_path / "c.png")
    assert main(["encode", str(tmp_path / "c.png"), "-o", str(tmp_path / "x.lnc"), "-q", quality]) == 2
    assert "quality must" in _error(capsys)
    assert main(["eval", "--dataset", str(tmp_path), "-q", quality]) == 2
    assert "quality must" in _error(capsys)


def test_the_pixel_limit_is_lncs_and_fires_from_the_header(tmp_path, capsys):
    from lnc.tools.io.image import MAX_PIXELS

    side = int(MAX_PIXELS**0.5) + 1  # one row more than the limit allows; no pixel data behind it
    _png16(tmp_path / "huge.png", np.zeros((1, 1, 3), np.uint16), 2)
    data = bytearray((tmp_path / "huge.png").read_bytes())
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "huge.png").write_bytes(bytes(data))
    assert main(["encode", str(tmp_path / "huge.png"), "-o", str(tmp_path / "x.lnc")]) == 2
    assert f"huge.png exceeds the limit of {MAX_PIXELS} pixels" in _error(capsys)
