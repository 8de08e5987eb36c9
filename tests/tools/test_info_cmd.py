"""``lnc info`` through the real CLI: good files print their header, bad ones one error line."""
from __future__ import annotations

import io
import json
import random
import re
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnc.entropy import container as lncfile
from lnc.entropy.chunked import ChunkWriter, Item, Layout
from lnc.entropy.container import Header, Modality
from lnc.tools.cli import main
from lnc.tools.eval.datasets import data_root

HASH = bytes.fromhex("00112233445566aa")
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
SPAN = 512
"""Tile side of the test file: kodim04 (768×512) is two tiles, 512×512 and 256×512."""


def _varint_len(n: int) -> int:
    """Bytes of ``n`` as an LEB128 varint."""
    return max(1, -(-n.bit_length() // 7))


@dataclass
class Written:
    """A version-2 file and what went into it."""

    path: Path
    chunks: list[dict[str, bytes]]
    extras: list[tuple[str, bytes]]

    @property
    def payload(self) -> int:
        return sum(len(p) for chunk in self.chunks for p in chunk.values()) + sum(len(p) for _, p in self.extras)

    def chunk_bytes(self, k: int) -> int:
        """Bytes of chunk ``k`` in the file: a varint length per stream, the payloads, a CRC32."""
        lengths = [len(p) for p in self.chunks[k].values()]
        return sum(_varint_len(n) for n in lengths) + sum(lengths) + 4

    @property
    def first_chunk(self) -> int:
        """Offset of chunk 0: everything before it is the preamble (header, layout, extras)."""
        return self.path.stat().st_size - sum(self.chunk_bytes(k) for k in range(len(self.chunks)))


@pytest.fixture(scope="module")
def kodak_file(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """kodim04 (a portrait photo) with a left-to-right alpha ramp, written as a real version-2 .lnc
    file: one chunk per 512-px tile, holding each colour plane of the tile zlib-coded (streams
    r, g, b), and the alpha zlib-coded in an extra section."""
    with Image.open(data_root() / "kodak" / "kodim04.png") as im:
        pixels = np.asarray(im.convert("RGB"))
    h, w, _ = pixels.shape
    alpha = np.tile(np.arange(w, dtype=np.uint8), (h, 1))
    header = Header(Modality.IMAGE, "zlib-9", HASH, 9.0, height=h, width=w, channels=4)
    chunks = [
        {name: zlib.compress(np.ascontiguousarray(pixels[top : top + SPAN, left : left + SPAN, c]).tobytes(), 9)
         for c, name in enumerate("rgb")}
        for top in range(0, h, SPAN) for left in range(0, w, SPAN)
    ]  # fmt: skip
    extras = [("alpha", zlib.compress(alpha.tobytes(), 9))]
    path = tmp_path_factory.mktemp("info") / "kodim04.lnc"
    with open(path, "wb") as f:
        writer = ChunkWriter(f, header, Layout(("r", "g", "b"), SPAN), extras)
        for chunk in chunks:
            writer.write_chunk([Item(chunk)])
        assert writer.close() == path.stat().st_size
    return Written(path, chunks, extras)


def _rows(out: str) -> dict[str, str]:
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines())


def test_text_output_reports_header_chunks_and_bpp(kodak_file, capsys) -> None:
    f = kodak_file
    assert main(["info", str(f.path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    size = f.path.stat().st_size
    assert (rows["version"], rows["modality"], rows["codec"]) == ("2", "image", "zlib-9")
    assert rows["weights hash"] == "00112233445566aa"
    assert (rows["height"], rows["width"], rows["channels"], rows["bit depth"]) == ("768", "512", "4", "8")
    assert rows["streams"] == "r, g, b; 2 chunks of 512 px tiles"
    for k, chunk in enumerate(f.chunks):
        assert rows[f"chunk {k}"] == ", ".join(f"{name} {len(p)} B" for name, p in chunk.items())
    assert "chunk 2" not in rows
    assert rows["extra alpha"] == f"{len(f.extras[0][1])} B"
    assert rows["overhead"] == f"{size - f.payload} B"
    assert rows["total"] == f"{size} B"
    assert rows["bits per pixel"] == f"{8 * size / (768 * 512):.4f}"
    assert "frames" not in rows and "sample rate" not in rows
    value_columns = {re.match(r".*?\S\s{2,}", line).end() for line in out.splitlines()}
    assert len(value_columns) == 1  # values aligned in one column


def test_json_output_parses_and_counts_every_byte(kodak_file, capsys) -> None:
    f = kodak_file
    assert main(["info", "--json", str(f.path)]) == 0
    info = json.loads(capsys.readouterr().out)
    size = f.path.stat().st_size
    assert info["version"] == 2
    assert info["total_bytes"] == size
    assert info["overhead_bytes"] == size - f.payload
    # The overhead as docs/container.md counts it: 19 fixed header bytes, 1 + 6 for "zlib-9", height
    # 768, width 512 (2 bytes each) and channels 4 (1); the layout byte, 3 × (1 + 1) for r, g, b, 2 for
    # the span 512; 1 + 5 + a varint for the extra "alpha"; per chunk a varint per length and a CRC32.
    header, layout = 19 + 1 + 6 + 2 + 2 + 1, 1 + 3 * 2 + 2
    extras = 1 + 5 + _varint_len(len(f.extras[0][1]))
    chunks = sum(_varint_len(len(p)) for chunk in f.chunks for p in chunk.values()) + 4 * len(f.chunks)
    assert info["overhead_bytes"] == header + layout + extras + chunks
    assert info["bpp"] == 8 * size / (768 * 512)
    assert (info["streams"], info["chunk_span"], info["items_per_chunk"]) == (["r", "g", "b"], SPAN, 1)
    assert info["chunks"] == [[{"name": n, "bytes": len(p)} for n, p in chunk.items()] for chunk in f.chunks]
    assert info["extras"] == [{"name": n, "bytes": len(p)} for n, p in f.extras]
    assert (info["height"], info["width"], info["quality"], info["weights_hash"]) == (768, 512, 9.0, HASH.hex())
    print(f"kodim04 zlib-9 .lnc: {size} B, {info['bpp']:.4f} bpp, {info['overhead_bytes']} B overhead")


@pytest.mark.parametrize("name", ["c-he2021-checkerboard-vr-q1.lnc", "d-he2021-checkerboard-vr-q4.lnc"])
def test_version_1_files_are_shown_by_tile(name: str, capsys) -> None:
    """Golden files of the last version-1 lnc: their ``<stream><tile>`` sections appear as chunks,
    every other section as an extra; the byte counts are those of the version-1 reader."""
    path = GOLDEN / name
    data = path.read_bytes()
    sections = lncfile.read(data).sections
    assert main(["info", "--json", str(path)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == 1 and info["codec"] == "he2021-checkerboard-vr"
    assert info["total_bytes"] == len(data) == json.loads((GOLDEN / "decoded.json").read_text())[name]["bytes"]
    assert sorted(info["streams"]) == ["y_anchor", "y_other", "z"] and info["chunk_span"] == 1024
    tiles = -(-info["height"] // 1024) * -(-info["width"] // 1024)
    assert len(info["chunks"]) == tiles
    for k, chunk in enumerate(info["chunks"]):
        assert sorted(chunk, key=lambda s: s["name"]) == sorted(
            ({"name": n[: -len(str(k))], "bytes": len(p)} for n, p in sections if n.endswith(str(k)) and n != "alpha"),
            key=lambda s: s["name"],
        )  # fmt: skip
    assert info["extras"] == [{"name": n, "bytes": len(p)} for n, p in sections if n == "alpha"]
    assert (info["channels"] == 4) == bool(info["extras"])
    # Version 1: header, one section table, one CRC32.
    assert info["overhead_bytes"] == len(data) - sum(len(p) for _, p in sections)
    assert main(["info", str(path)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["version"] == "1" and f"chunk {tiles - 1}" in rows and f"chunk {tiles}" not in rows


def _write(path: Path, header: Header, span: int, payloads: list[bytes]) -> None:
    with open(path, "wb") as f:
        writer = ChunkWriter(f, header, Layout(("x",), span))
        for payload in payloads:
            writer.write_chunk([Item({"x": payload})])
        writer.close()


def test_rates_for_audio_and_video(tmp_path: Path, capsys) -> None:
    audio = Header(Modality.AUDIO, "pcm", HASH, 1.0, channels=2, bit_depth=16, frames=44100 * 11,
                   sample_rate=44100)
    video = Header(Modality.VIDEO, "v", HASH, 1.0, height=240, width=416, channels=3, frames=64,
                   fps=30000 / 1001)
    # Audio in 11 one-second chunks, video in 4 groups of 16 frames.
    for name, header, span, payloads in (("a", audio, 44100, [b"\x01" * 800] * 11),
                                         ("v", video, 16, [b"\x02" * 5000] * 4)):
        path = tmp_path / f"{name}.lnc"
        _write(path, header, span, payloads)
        assert main(["info", "--json", str(path)]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["chunk_span"] == span
        assert info["chunks"] == [[{"name": "x", "bytes": len(p)}] for p in payloads]
        bits = 8 * path.stat().st_size
        if name == "a":
            assert info["kbps"] == pytest.approx(bits / 11 / 1000, rel=1e-12) and "bpp" not in info
        else:
            assert info["bpp"] == bits / (240 * 416 * 64)
            assert info["kbps"] == pytest.approx(bits / (64 * 1001 / 30000) / 1000, rel=1e-12)


def test_stdin(kodak_file, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    path = kodak_file.path
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert main(["info", "--json", "-"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file"] == "<stdin>" and info["total_bytes"] == path.stat().st_size
    assert info["overhead_bytes"] == path.stat().st_size - kodak_file.payload


def test_truncated_file_is_one_error_line_and_exit_2(kodak_file, tmp_path: Path) -> None:
    f = kodak_file
    cut = tmp_path / "cut.lnc"
    # 1000 bytes into the payloads of the first chunk, after its three lengths.
    lengths = [len(p) for p in f.chunks[0].values()]
    payload_start = f.first_chunk + f.chunk_bytes(0) - sum(lengths) - 4
    cut.write_bytes(f.path.read_bytes()[: payload_start + 1000])
    result = subprocess.run([sys.executable, "-m", "lnc.tools.cli", "info", str(cut)], capture_output=True)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert lines == [f"lnc: error: truncated .lnc file: chunk 0 needs {sum(lengths)} bytes, 1000 left"]


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


@pytest.mark.parametrize("where", [0.3, 0.9])
def test_corrupted_byte_is_reported_by_the_crc_of_its_chunk(kodak_file, tmp_path: Path, capsys, where) -> None:
    f = kodak_file
    data = bytearray(f.path.read_bytes())
    offset = int(len(data) * where)
    data[offset] ^= 0x10
    bad = tmp_path / "bad.lnc"
    bad.write_bytes(bytes(data))
    chunk = 0 if offset < f.first_chunk + f.chunk_bytes(0) else 1
    assert offset > f.first_chunk and chunk == (0 if where < 0.5 else 1)  # chunk 0 is the larger tile
    assert main(["info", str(bad)]) == 2
    assert re.fullmatch(
        rf"lnc: error: corrupted .lnc file: chunk {chunk} CRC32 is 0x[0-9a-f]{{8}}, file says 0x[0-9a-f]{{8}}\n",
        capsys.readouterr().err,
    )



def test_flags_a_layout_the_named_model_cannot_decode(tmp_path: Path, capsys) -> None:
    """A real file of the default model, its CRCs intact: as written, and with a stream renamed."""
    from lnc.codecs import load
    from lnc.entropy.chunked import open_reader
    from lnc.tools.pipeline.image import encode_array

    with Image.open(data_root() / "kodak" / "kodim23.png") as im:
        data = encode_array(np.asarray(im.convert("RGB"))[:64, :64], load(), 2.0)
    good, renamed = tmp_path / "good.lnc", tmp_path / "renamed.lnc"
    good.write_bytes(data)
    with open_reader(data) as reader, open(renamed, "wb") as f:
        streams = tuple("q" if s == "y" else s for s in reader.layout.streams)
        writer = ChunkWriter(f, reader.header, Layout(streams, reader.layout.span, checksummed=True))
        for items in reader.chunks():
            writer.write_chunk([Item({"q" if k == "y" else k: v for k, v in i.streams.items()}, i.checksum)
                                for i in items])
        writer.close()
    assert main(["info", str(good)]) == 0
    assert _rows(capsys.readouterr().out)["decoder"] == f"the shipped {load().name}"
    assert main(["info", str(renamed), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["decodable"] is False and info["problem"].startswith("streams z, q do not fit")
    assert main(["decode", str(renamed), "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.startswith("lnc: error: streams z, q do not fit")
