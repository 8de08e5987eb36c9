"""The .lnc container: round trips, the documented byte layout, atomic writes, hostile input."""
from __future__ import annotations

import dataclasses
import math
import os
import random
import signal
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnc.entropy import container
from lnc.entropy.container import (
    MAGIC,
    PEEK_BYTES,
    Container,
    Header,
    Modality,
    peek_header,
    read,
    read_file,
    write,
    write_file,
)
from lnc.entropy.errors import BitstreamError, LncError
from lnc.tools.eval.datasets import data_root

FLT_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
HASH = bytes.fromhex("0123456789abcdef")


def image_header(**kw) -> Header:
    fields = dict(modality=Modality.IMAGE, codec="bmshj2018-hyperprior", weights_hash=HASH, quality=0.1,
                  height=512, width=768, channels=3)
    return Header(**{**fields, **kw})


HEADERS = {
    "image": image_header(),
    "image-max": image_header(height=65536, width=32768, channels=1, bit_depth=32, quality=FLT_MAX,
                              codec="x" * 64),
    "image-min": image_header(height=1, width=1, channels=1, bit_depth=1, quality=-FLT_MAX, codec="~"),
    "image-subnormal-q": image_header(quality=1e-45),
    "image-negzero-q": image_header(quality=-0.0),
    "video": Header(Modality.VIDEO, "dcvc", HASH, 3, height=240, width=416, channels=3, frames=64,
                    fps=30000 / 1001),
    "video-max-fps": Header(Modality.VIDEO, "v", HASH, 1.5, height=1, width=1, channels=1, frames=2**31,
                            fps=1000.0),
    "audio": Header(Modality.AUDIO, "encodec", HASH, 6.0, channels=2, bit_depth=16, frames=720000,
                    sample_rate=48000),
    "audio-max-rate": Header(Modality.AUDIO, "a", bytes(8), 0.0, channels=65536, frames=32768,
                             sample_rate=1_000_000),
    "other": Header(Modality.OTHER, "vq-indices", b"\xff" * 8, 123456.0),
}


@pytest.mark.parametrize("name", HEADERS)
@pytest.mark.parametrize("sections", [[], [("y", b"")], [("y", b"\x00" * 300), ("z", b"\x01\x02")]])
def test_round_trip(name: str, sections: list[tuple[str, bytes]]) -> None:
    c = Container(HEADERS[name], sections)
    data = write(c)
    back = read(data)
    assert back.sections == c.sections
    assert dataclasses.replace(back.header, quality=c.header.quality) == c.header
    assert struct.pack("<f", back.header.quality) == struct.pack("<f", c.header.quality)
    assert write(back) == data
    assert peek_header(data[:PEEK_BYTES]) == back.header


def test_quality_reads_back_as_shortest_decimal() -> None:
    for q in (0.1, 0.0483, 1e-3, 12.5, 333.333, 6.02e23):
        assert read(write(Container(image_header(quality=q)))).header.quality == q


def test_sections_keep_order_and_names_max_length() -> None:
    sections = [(f"s{i:03d}" + "_" * 28, bytes([i]) * i) for i in range(200)]
    c = read(write(Container(image_header(), sections)))
    assert c.sections == sections
    assert c.section("s117" + "_" * 28) == bytes([117]) * 117
    assert len(sections[0][0]) == container.MAX_SECTION_NAME_LEN


def test_section_lookup_missing_is_a_bitstream_error() -> None:
    c = read(write(Container(image_header(), [("y", b"abc"), ("z", b"")])))
    assert c.section("y") == b"abc" and c.section("z") == b""
    with pytest.raises(BitstreamError, match=r"no section 'h' in .lnc file \(sections: 'y', 'z'\)"):
        c.section("h")


def varint(n: int) -> bytes:
    """LEB128 written independently of the module, from docs/container.md."""
    out = []
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def with_crc(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def spec_parts(**override: bytes) -> dict[str, bytes]:
    """The fields of a valid image file, in file order, as docs/container.md lays them out."""
    parts = {
        "magic": b"\x89LNC",
        "version": b"\x01",
        "modality": b"\x00",
        "flags": bytes([0b0000111]),
        "quality": struct.pack("<f", 0.5),
        "hash": HASH,
        "codec": b"\x04mbt1",
        "geometry": varint(512) + varint(768) + varint(3),
        "count": varint(2),
        "table": b"\x01y" + varint(200) + b"\x01z" + varint(10),
        "payloads": bytes(range(200)) + b"z" * 10,
    }
    return {**parts, **override}


def test_layout_matches_the_spec() -> None:
    header = Header(Modality.IMAGE, "mbt1", HASH, 0.5, height=512, width=768, channels=3)
    c = Container(header, [("y", bytes(range(200))), ("z", b"z" * 10)])
    assert write(c) == with_crc(*spec_parts().values())
    video = Header(Modality.VIDEO, "v", HASH, 0.5, height=2, width=3, channels=1, bit_depth=10,
                   frames=300, fps=25.0, sample_rate=44100)
    expected = with_crc(
        MAGIC, b"\x01\x01", bytes([0b1111111]), struct.pack("<f", 0.5), HASH, b"\x01v",
        b"\x02\x03\x01\x0a" + varint(300) + struct.pack("<d", 25.0) + varint(44100), b"\x00",
    )
    assert write(Container(video)) == expected


def test_typical_image_overhead_is_small() -> None:
    y, z = b"\x00" * 5120, b"\x00" * 300
    data = write(Container(image_header(), [("y", y), ("z", z)]))
    overhead = len(data) - len(y) - len(z)
    assert overhead == 58  # docs/container.md derives the same figure field by field


def test_real_image_file_round_trip(tmp_path: Path) -> None:
    with Image.open(data_root() / "kodak" / "kodim23.png") as im:
        pixels = np.asarray(im.convert("RGB"))
    h, w, ch = pixels.shape
    payload = zlib.compress(pixels.tobytes(), 9)
    c = Container(image_header(codec="zlib", height=h, width=w, channels=ch), [("pixels", payload)])
    path = tmp_path / "kodim23.lnc"
    written = write_file(path, c)
    # 19 fixed + 5 codec name + 5 geometry + 1 count + 10 table + 4 CRC, per docs/container.md
    assert written == path.stat().st_size == len(payload) + 44
    back = read_file(path)
    assert back.header == c.header
    restored = np.frombuffer(zlib.decompress(back.section("pixels")), np.uint8).reshape(h, w, ch)
    assert np.array_equal(restored, pixels)


BAD_HEADERS = {
    "modality": dict(modality=7),
    "codec-empty": dict(codec=""),
    "codec-long": dict(codec="c" * 65),
    "codec-space": dict(codec="a b"),
    "codec-unicode": dict(codec="é"),
    "hash-short": dict(weights_hash=b"1234567"),
    "hash-str": dict(weights_hash="0123456789abcdef"),
    "quality-nan": dict(quality=math.nan),
    "quality-inf": dict(quality=-math.inf),
    "quality-f32-overflow": dict(quality=1e39),
    "height-big": dict(height=65537),
    "width-negative": dict(width=-1),
    "height-float": dict(height=512.0),
    "channels-bool": dict(channels=True),
    "samples": dict(height=65536, width=65536, channels=1),
    "bit-depth-0": dict(bit_depth=0),
    "bit-depth-33": dict(bit_depth=33),
    "frames-0": dict(frames=0),
    "fps-negative": dict(fps=-1.0),
    "fps-nan": dict(fps=math.nan),
    "fps-big": dict(fps=1000.5),
    "sample-rate-big": dict(sample_rate=1_000_001),
    "image-no-height": dict(height=0),
}


@pytest.mark.parametrize("name", BAD_HEADERS)
def test_writer_rejects_invalid_headers(name: str) -> None:
    with pytest.raises(ValueError):
        write(Container(image_header(**BAD_HEADERS[name])))


@pytest.mark.parametrize(
    "sections",
    [
        [("", b"")],
        [("n" * 33, b"")],
        [("a\tb", b"")],
        [("y", "text")],
        [("y", b""), ("y", b"")],
        [(f"s{i}", b"") for i in range(4097)],
    ],
)
def test_writer_rejects_invalid_sections(sections: list) -> None:
    with pytest.raises(ValueError):
        write(Container(image_header(), sections))


def test_writer_rejects_audio_without_sample_rate() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        write(Container(Header(Modality.AUDIO, "a", HASH, 1.0, channels=1)))


def test_write_file_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "out.lnc"
    first = Container(image_header(), [("y", b"first")])
    second = Container(image_header(), [("y", b"second")])
    write_file(path, first)
    with pytest.raises(LncError, match="exists"):
        write_file(path, second)
    assert read_file(path) == first
    write_file(path, second, force=True)
    assert read_file(path) == second
    assert sorted(os.listdir(tmp_path)) == ["out.lnc"]


def test_failing_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.lnc"
    with pytest.raises(ValueError):
        write_file(path, Container(image_header(height=0)))
    assert os.listdir(tmp_path) == []

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_file(path, Container(image_header(), [("y", b"\x00" * 1000)]))
    assert os.listdir(tmp_path) == []


def test_failed_forced_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.lnc"
    old = Container(image_header(), [("y", b"old")])
    write_file(path, old)

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(path, Container(image_header(), [("y", b"new")]), force=True)
    assert os.listdir(tmp_path) == ["out.lnc"]
    assert read_file(path) == old


def good_file() -> bytes:
    return with_crc(*spec_parts().values())


def mutated(**override: bytes) -> bytes:
    return with_crc(*spec_parts(**override).values())


# Files with a correct CRC whose structure is wrong: the size and range checks must catch them.
STRUCTURAL = {
    "magic": (mutated(magic=b"\x89PNG"), r"not an .lnc file: starts with b'\\x89PNG'"),
    "version": (mutated(version=b"\x03"), r"unsupported .lnc version 3 \(this lnc reads versions 1 and 2\)"),
    # Version 2 is chunked (lnc.entropy.chunked): the single-table reader refuses it by name.
    "version-2": (mutated(version=b"\x02"), r"a version-2 .lnc file is chunked: read it with ChunkReader"),
    "modality": (mutated(modality=b"\x04"), "unknown modality 4"),
    "flags": (mutated(flags=b"\x87"), "unknown geometry flags 0x87"),
    "codec-len-0": (mutated(codec=b"\x00"), r"codec name length 0 outside 1..64"),
    "codec-len-65": (mutated(codec=b"\x41" + b"c" * 65), r"codec name length 65 outside 1..64"),
    "codec-len-255": (mutated(codec=b"\xff"), r"codec name length 255 outside 1..64"),
    "codec-control": (mutated(codec=b"\x02a\n"), "codec name b'a\\\\n' is not printable ASCII"),
    "huge-image": (mutated(geometry=varint(10**6) + varint(10**6) + varint(3)),
                   "implausible .lnc header: height 1000000 exceeds 65536"),
    "samples": (mutated(geometry=varint(65536) + varint(65536) + varint(1)),
                r"4294967296 samples \(height\*width\*channels\*frames\) exceed 2147483648"),
    "channels": (mutated(geometry=varint(1) + varint(1) + varint(70000)), "channels 70000 exceeds 65536"),
    "frames": (mutated(flags=b"\x17", geometry=varint(1) + varint(1) + varint(1) + varint(2**31 + 1)),
               "frames 2147483649 outside 1..2147483648"),
    "bit-depth": (mutated(flags=b"\x0f", geometry=varint(1) + varint(1) + varint(1) + varint(99)),
                  r"bit depth 99 outside 1..32"),
    "fps-nan": (mutated(flags=b"\x27", geometry=varint(1) * 3 + struct.pack("<d", math.nan)), "fps nan"),
    "fps-huge": (mutated(flags=b"\x27", geometry=varint(1) * 3 + struct.pack("<d", 1e300)), "fps 1e\\+300"),
    "sample-rate": (mutated(flags=b"\x47", geometry=varint(1) * 3 + varint(10**9)),
                    "sample rate 1000000000 exceeds 1000000"),
    "default-stored": (mutated(flags=b"\x17", geometry=varint(1) * 4), "frames stored with its default"),
    "image-zero-height": (mutated(flags=b"\x06", geometry=varint(768) + varint(3)),
                          "image needs height, width and channels >= 1"),
    "varint-overlong": (mutated(geometry=b"\x80" * 5 + b"\x01"), "height varint longer than 5 bytes"),
    "varint-non-minimal": (mutated(geometry=b"\x80\x00" + varint(768) + varint(3)), "height has a non-minimal"),
    "count-4097": (mutated(count=varint(4097)), "4097 sections, limit 4096"),
    "count-2^34": (mutated(count=varint(2**34)), "17179869184 sections, limit 4096"),
    "count-high": (mutated(count=varint(3)), r"section 2 name length 0 outside 1..32"),
    "name-len-0": (mutated(table=b"\x00"), r"section 0 name length 0 outside 1..32"),
    "name-len-33": (mutated(table=b"\x21" + b"n" * 33), r"section 0 name length 33 outside 1..32"),
    "duplicate": (mutated(table=b"\x01y" + varint(200) + b"\x01y" + varint(10)), "duplicate section name 'y'"),
    "section-len-huge": (mutated(table=b"\x01y" + varint(2**34) + b"\x01z" + varint(10)),
                         r"section 'y' needs 17179869184 bytes, 214 left"),
    "section-len-short": (mutated(table=b"\x01y" + varint(199) + b"\x01z" + varint(10)),
                          "trailing garbage, 1 bytes after the CRC32"),
    "trailing-after-crc": (good_file() + b"\x00", "trailing garbage, 1 bytes after the CRC32"),
    "missing-crc": (b"".join(spec_parts().values()), r"truncated .lnc file: CRC32 needs 4 bytes, 0 left"),
    "truncated-section": (good_file()[:-100], r"truncated .lnc file: section 'y' needs 200 bytes, 114 left"),
    "empty": (b"", "empty file"),
    "bad-crc": (good_file()[:-1] + bytes([good_file()[-1] ^ 1]), "CRC32 is 0x"),
}


@pytest.mark.parametrize("name", STRUCTURAL)
def test_reader_rejects_structural_defects(name: str) -> None:
    data, message = STRUCTURAL[name]
    with pytest.raises(BitstreamError, match=message) as info:
        read(data)
    assert "\n" not in str(info.value)
    if name != "bad-crc":
        assert "CRC32 is" not in str(info.value)  # caught by a structure check, not by the CRC


def test_good_spec_file_reads() -> None:
    c = read(good_file())
    assert c.header.codec == "mbt1" and c.header.quality == 0.5
    assert [(n, len(p)) for n, p in c.sections] == [("y", 200), ("z", 10)]


def test_peek_header_works_on_a_prefix_and_checks_the_header() -> None:
    biggest = Header(Modality.VIDEO, "c" * 64, HASH, -1.25, height=65536, width=2, channels=3,
                     bit_depth=32, frames=5000, fps=999.5, sample_rate=1_000_000)
    data = write(Container(biggest, [("y", b"\x00" * 1000)]))
    assert peek_header(data[:PEEK_BYTES]) == biggest
    with pytest.raises(BitstreamError, match="height 1000000 exceeds"):
        peek_header(STRUCTURAL["huge-image"][0])
    with pytest.raises(BitstreamError, match="truncated"):
        peek_header(data[:40])


def test_read_file_rejects_oversized_files_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.lnc"
    with open(path, "wb") as f:
        f.truncate(container.MAX_FILE_BYTES + 1)  # sparse: takes no disk space
    tracemalloc.start()
    try:
        with pytest.raises(BitstreamError, match="2147483649 bytes, limit 2147483648"):
            read_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# ---------------------------------------------------------------------------------------------
# Fuzzing: every mutated file must raise BitstreamError within 1 s without a large allocation.


def prototypes() -> list[bytes]:
    """Small valid files of each modality: the seeds the fuzzer mutates."""
    rng = random.Random(0)
    files = []
    for name in ("image", "video", "audio", "other"):
        sections = [("y", rng.randbytes(24)), ("hyper", rng.randbytes(7)), ("e", b"")]
        files.append(write(Container(HEADERS[name], sections)))
    return files


def oversized(rng: random.Random) -> bytes:
    """A file with one count, length or dimension field out of range, and a correct CRC."""
    def dims(h: int, w: int, c: int) -> bytes:
        return varint(h) + varint(w) + varint(c)

    big = rng.randrange
    choice = rng.randrange(11)
    if choice == 0:
        return mutated(geometry=dims(big(65537, 2**35), big(1, 65537), big(1, 65537)))
    if choice == 1:
        return mutated(geometry=dims(big(46341, 65537), big(46341, 65537), big(1, 65537)))
    if choice == 2:
        return mutated(geometry=dims(big(1, 65537), big(1, 65537), big(65537, 2**35)))
    if choice == 3:
        return mutated(flags=b"\x17", geometry=dims(1, 1, 1) + varint(big(2**31 + 1, 2**35)))
    if choice == 4:
        return mutated(flags=b"\x47", geometry=dims(1, 1, 1) + varint(big(10**6 + 1, 2**35)))
    if choice == 5:
        fps = rng.choice([math.nan, math.inf, -math.inf, -rng.random() - 1e-9, 1000.0001 + rng.random() * 1e30])
        return mutated(flags=b"\x27", geometry=dims(1, 1, 1) + struct.pack("<d", fps))
    if choice == 6:
        return mutated(count=varint(big(4097, 2**35)))
    if choice == 7:
        table = b"\x01y" + varint(big(211, 2**35)) + b"\x01z" + varint(10)
        return mutated(table=table)
    if choice == 8:
        n = rng.choice([0, big(65, 256)])
        return mutated(codec=bytes([n]) + b"c" * n)
    if choice == 9:
        n = rng.choice([0, big(33, 256)])
        return mutated(table=bytes([n]) + b"n" * n + varint(200) + b"\x01z" + varint(10))
    return mutated(geometry=b"\xff" * big(5, 12) + b"\x01")


def fuzz_cases(n: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    seeds = prototypes()
    cases = [("truncated", f[:i]) for f in seeds for i in range(len(f))]
    kinds = ("bitflip", "bitflip", "random", "random-prefixed", "oversized", "oversized")
    while len(cases) < n:
        kind = rng.choice(kinds)
        if kind == "bitflip":
            data = bytearray(rng.choice(seeds))
            for bit in rng.sample(range(8 * len(data)), rng.randint(1, 8)):
                data[bit // 8] ^= 1 << bit % 8
            cases.append((kind, bytes(data)))
        elif kind == "random":
            cases.append((kind, rng.randbytes(rng.randrange(300))))
        elif kind == "random-prefixed":
            cases.append((kind, MAGIC + b"\x01" + bytes([rng.randrange(4)]) + rng.randbytes(rng.randrange(300))))
        else:
            cases.append((kind, oversized(rng)))
    return cases


class Hang(Exception):
    pass


def alarm(signum: int, frame: object) -> None:
    raise Hang


def run_fuzz(n: int, seed: int) -> tuple[float, int]:
    """Read n mutated files; return the slowest read (s) and the largest peak allocation (bytes)."""
    failures, slowest, peak_max = [], 0.0, 0
    previous = signal.signal(signal.SIGALRM, alarm)
    tracemalloc.start()
    try:
        for i, (kind, data) in enumerate(fuzz_cases(n, seed)):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            try:
                read(data)
                failures.append(f"case {i} ({kind}) was accepted: {data[:48].hex()}...")
            except BitstreamError as exc:
                if "\n" in str(exc) or not str(exc):
                    failures.append(f"case {i} ({kind}) gave a bad message {str(exc)!r}")
            except Hang:
                failures.append(f"case {i} ({kind}) took over 1 s: {data[:48].hex()}...")
            except Exception as exc:  # noqa: BLE001 - any other type is the failure we look for
                failures.append(f"case {i} ({kind}) raised {type(exc).__name__}: {exc}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            slowest = max(slowest, time.perf_counter() - start)
            try:
                peek_header(data)
            except BitstreamError:
                pass
            except Exception as exc:  # noqa: BLE001
                failures.append(f"case {i} ({kind}): peek_header raised {type(exc).__name__}: {exc}")
            peak_max = max(peak_max, tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGALRM, previous)
    assert not failures, f"{len(failures)} failures, first: " + "; ".join(failures[:5])
    return slowest, peak_max


def test_fuzz_cases_cover_every_truncation_and_kind() -> None:
    cases = fuzz_cases(1000, seed=1)
    kinds = {kind for kind, _ in cases}
    assert kinds == {"truncated", "bitflip", "random", "random-prefixed", "oversized"}
    assert sum(kind == "truncated" for kind, _ in cases) == sum(len(f) for f in prototypes())
    assert len(cases) == 1000


def test_fuzz_1000_files_all_raise_bitstream_error() -> None:
    slowest, peak = run_fuzz(1000, seed=1)
    print(f"1000 fuzzed files: slowest read {slowest * 1e3:.2f} ms, largest peak allocation {peak} B")
    assert peak < 64 * 1024


@pytest.mark.slow
def test_fuzz_10000_files_all_raise_bitstream_error() -> None:
    slowest, peak = run_fuzz(10_000, seed=2)
    print(f"10000 fuzzed files: slowest read {slowest * 1e3:.2f} ms, largest peak allocation {peak} B")
    assert peak < 64 * 1024


def test_oversized_fields_are_caught_by_size_checks_not_the_crc() -> None:
    rng = random.Random(3)
    for _ in range(300):
        data = oversized(rng)
        with pytest.raises(BitstreamError) as info:
            read(data)
        assert "CRC32 is" not in str(info.value), str(info.value)
