"""``lnc info`` through the real CLI: good files print their header, bad ones one error line."""
from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnc.entropy.container import Container, Header, Modality, write_file
from lnc.tools.cli import main
from lnc.tools.datasets import data_root

HASH = bytes.fromhex("00112233445566aa")


@pytest.fixture(scope="module")
def kodak_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Container]:
    """kodim04 (a portrait photo), its pixels zlib-coded into a real .lnc file."""
    with Image.open(data_root() / "kodak" / "kodim04.png") as im:
        pixels = np.asarray(im.convert("RGB"))
    h, w, ch = pixels.shape
    header = Header(Modality.IMAGE, "zlib-9", HASH, 9.0, height=h, width=w, channels=ch)
    rows = zlib.compress(pixels[: h // 2].tobytes(), 9), zlib.compress(pixels[h // 2 :].tobytes(), 9)
    c = Container(header, [("top", rows[0]), ("bottom", rows[1])])
    path = tmp_path_factory.mktemp("info") / "kodim04.lnc"
    write_file(path, c)
    return path, c


def test_text_output_reports_header_sections_and_bpp(kodak_file, capsys) -> None:
    path, c = kodak_file
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())
    size = path.stat().st_size
    assert (rows["modality"], rows["codec"], rows["weights hash"]) == ("image", "zlib-9", "00112233445566aa")
    assert (rows["height"], rows["width"], rows["channels"], rows["bit depth"]) == ("768", "512", "3", "8")
    assert rows["section top"] == f"{len(c.section('top'))} B"
    assert rows["section bottom"] == f"{len(c.section('bottom'))} B"
    assert rows["total"] == f"{size} B"
    assert rows["bits per pixel"] == f"{8 * size / (768 * 512):.4f}"
    assert "frames" not in rows and "sample rate" not in rows
    value_columns = {re.match(r".*?\S\s{2,}", line).end() for line in out.splitlines()}
    assert len(value_columns) == 1  # values aligned in one column


def test_json_output_parses_and_counts_every_byte(kodak_file, capsys) -> None:
    path, c = kodak_file
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    size = path.stat().st_size
    payload = sum(len(p) for _, p in c.sections)
    assert info["total_bytes"] == size
    assert info["overhead_bytes"] == size - payload
    assert info["bpp"] == 8 * size / (768 * 512)
    assert info["sections"] == [{"name": n, "bytes": len(p)} for n, p in c.sections]
    assert (info["height"], info["width"], info["quality"], info["weights_hash"]) == (768, 512, 9.0, HASH.hex())
    print(f"kodim04 zlib-9 .lnc: {size} B, {info['bpp']:.4f} bpp, {info['overhead_bytes']} B overhead")


def test_rates_for_audio_and_video(tmp_path: Path, capsys) -> None:
    audio = Header(Modality.AUDIO, "pcm", HASH, 1.0, channels=2, bit_depth=16, frames=44100 * 11,
                   sample_rate=44100)
    video = Header(Modality.VIDEO, "v", HASH, 1.0, height=240, width=416, channels=3, frames=64,
                   fps=30000 / 1001)
    for name, header, section in (("a", audio, b"\x01" * 8000), ("v", video, b"\x02" * 20000)):
        path = tmp_path / f"{name}.lnc"
        write_file(path, Container(header, [("x", section)]))
        assert main(["info", "--json", str(path)]) == 0
        info = json.loads(capsys.readouterr().out)
        bits = 8 * path.stat().st_size
        if name == "a":
            assert info["kbps"] == pytest.approx(bits / 11 / 1000, rel=1e-12) and "bpp" not in info
        else:
            assert info["bpp"] == bits / (240 * 416 * 64)
            assert info["kbps"] == pytest.approx(bits / (64 * 1001 / 30000) / 1000, rel=1e-12)


def test_stdin(kodak_file, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = kodak_file
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert main(["info", "--json", "-"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file"] == "<stdin>" and info["total_bytes"] == path.stat().st_size


def test_truncated_file_is_one_error_line_and_exit_2(kodak_file, tmp_path: Path) -> None:
    path, c = kodak_file
    cut = tmp_path / "cut.lnc"
    cut.write_bytes(path.read_bytes()[:1000])
    result = subprocess.run([sys.executable, "-m", "lnc.tools.cli", "info", str(cut)], capture_output=True)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    top = len(c.section("top"))
    payload_start = path.stat().st_size - 4 - sum(len(p) for _, p in c.sections)
    assert lines == [f"lnc: error: truncated .lnc file: section 'top' needs {top} bytes, {1000 - payload_start} left"]


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_one_error_line_and_exit_2(seed: int, tmp_path: Path, capsys) -> None:
    noise = random.Random(seed).randbytes(4096)
    for data, message in ((noise, "not an .lnc file: starts with b'"), (b"\x89LNC\x01\x00" + noise, "")):
        path = tmp_path / "noise.lnc"
        path.write_bytes(data)
        assert main(["info", str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"lnc: error: {message}"), lines


def test_corrupted_byte_is_reported_by_crc(kodak_file, tmp_path: Path, capsys) -> None:
    path, _ = kodak_file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad = tmp_path / "bad.lnc"
    bad.write_bytes(bytes(data))
    assert main(["info", str(bad)]) == 2
    assert re.fullmatch(r"lnc: error: corrupted .lnc file: CRC32 is 0x[0-9a-f]{8}, file says 0x[0-9a-f]{8}\n",
                        capsys.readouterr().err)

