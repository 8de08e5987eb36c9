"""Version 2 of the .lnc container (lnc.entropy.chunked): round trips, the documented byte layout,
chunk-by-chunk writing and reading, hostile input, and reading the golden version-1 files."""
from __future__ import annotations

import io
import json
import math
import random
import signal
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest

from lnc.entropy.chunked import (
    LEGACY_TILE,
    MAX_CHUNK_SPAN,
    ChunkReader,
    ChunkWriter,
    Item,
    Layout,
    chunk_count,
    open_reader,
)
from lnc.entropy.container import MAGIC, Container, Header, Modality, atomic_open, peek_header, read, write
from lnc.entropy.errors import BitstreamError

HASH = bytes.fromhex("0123456789abcdef")
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"


def image_header(height: int, width: int, channels: int = 3, codec: str = "mbt2018-mean-vr") -> Header:
    return Header(Modality.IMAGE, codec, HASH, 0.1, height=height, width=width, channels=channels)


AUDIO = Header(Modality.AUDIO, "audio-codec", HASH, 6.0, channels=4, bit_depth=16, frames=3 * 4800 + 1000,
               sample_rate=48000)
AUDIO_LAYOUT = Layout(("codes", "side"), 4800, items=2, checksummed=True)
VIDEO = Header(Modality.VIDEO, "video-codec", HASH, 3.5, height=240, width=416, channels=3, frames=70,
               fps=30000 / 1001)
VIDEO_LAYOUT = Layout(("z", "y", "mv"), 16, checksummed=True)


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes((value,)))


def make_chunks(layout: Layout, sizes: list[int], seed: int = 0) -> list[list[Item]]:
    """One chunk per entry of ``sizes``; payload lengths vary around it by item and stream."""
    rng = random.Random(seed)
    return [[Item({name: rng.randbytes(max(0, size - 3 * j + s)) for s, name in enumerate(layout.streams)},
                  rng.getrandbits(32) if layout.checksummed else None)
             for j in range(layout.items)] for size in sizes]


def items(*payloads: dict[str, bytes]) -> list[Item]:
    """A chunk of unchecksummed items."""
    return [Item(p) for p in payloads]


def encode(header: Header, layout: Layout, chunks, extras=()) -> bytes:
    out = io.BytesIO()
    writer = ChunkWriter(out, header, layout, extras)
    for chunk in chunks:
        writer.write_chunk(chunk)
    size = writer.close()
    assert size == len(out.getvalue())
    return out.getvalue()


def consume(data: bytes, size: int | None = None):
    """Everything a decoder does with a file: open it, read every chunk, then the extras."""
    reader = ChunkReader(io.BytesIO(data), len(data) if size is None else size)
    chunks = list(reader.chunks())
    return reader, chunks, reader.extras()


def spec_bytes(header: Header, layout: Layout, chunks, extras=(), layout_byte: int | None = None,
               span: bytes | None = None, items: bytes | None = None) -> bytes:
    """A version-2 file built from docs/container.md alone (the overrides make broken ones)."""
    v1 = write(Container(header, []))  # header, section count 0 (1 byte), CRC (4 bytes)
    out = bytearray(v1[:4] + b"\x02" + v1[5:-5])
    flag = 0x40 if layout.items > 1 else 0
    summed = 0x80 if layout.checksummed else 0
    out.append((len(layout.streams) - 1) | len(extras) << 4 | flag | summed if layout_byte is None else layout_byte)
    for name in layout.streams:
        out += bytes((len(name),)) + name.encode()
    out += varint(layout.span) if span is None else span
    out += (bytes((layout.items,)) if flag else b"") if items is None else items
    for name, payload in extras:
        out += bytes((len(name),)) + name.encode() + varint(len(payload))
    for _, payload in extras:
        out += payload
    crc = zlib.crc32(out)
    for chunk in chunks:
        payloads = [item.streams[name] for item in chunk for name in layout.streams]
        sums = b"".join(struct.pack("<I", item.checksum) for item in chunk if layout.checksummed)
        body = b"".join(varint(len(p)) for p in payloads) + sums + b"".join(payloads)
        crc = zlib.crc32(body, crc)
        out += body + struct.pack("<I", crc)
    return bytes(out)


def image_case(alpha: bool):
    header = image_header(2500, 1100, channels=4 if alpha else 3)  # 3 x 2 tiles of 1024 px
    layout = Layout(("z", "y_anchor", "y_other"), 1024)
    extras = [("alpha", zlib.compress(bytes(range(256)) * 4))] if alpha else []
    return header, layout, make_chunks(layout, [900, 700, 500, 300, 40, 0], seed=1), extras


CASES = {
    "image": image_case(alpha=False),
    "image-alpha": image_case(alpha=True),
    # 4 chunks of 4800 sample frames, the last of 1000: shorter payloads.
    "audio": (AUDIO, AUDIO_LAYOUT, make_chunks(AUDIO_LAYOUT, [600, 600, 600, 125], seed=2), []),
    "video": (VIDEO, VIDEO_LAYOUT, make_chunks(VIDEO_LAYOUT, [3000, 200, 180, 210, 150], seed=3),
              [("params", b"\x00\x01"), ("x", b""), ("meta", b"m" * 200)]),
}


# ---------------------------------------------------------------- round trips and the layout


@pytest.mark.parametrize("name", CASES)
def test_round_trip(name: str) -> None:
    header, layout, chunks, extras = CASES[name]
    assert len(chunks) == chunk_count(header, layout)
    data = encode(header, layout, chunks, extras)
    reader, got, got_extras = consume(data)
    assert (reader.version, reader.header, reader.layout) == (2, header, layout)
    assert reader.count == len(chunks)
    assert got == chunks
    assert got_extras == dict(extras)
    with open_reader(data) as again:
        assert again.header == header and list(again.chunks()) == chunks and again.extras() == dict(extras)


@pytest.mark.parametrize("name", CASES)
def test_writer_output_is_the_documented_layout(name: str) -> None:
    header, layout, chunks, extras = CASES[name]
    assert encode(header, layout, chunks, extras) == spec_bytes(header, layout, chunks, extras)


def test_writer_writes_the_header_at_once_and_each_chunk_as_it_comes() -> None:
    header, layout, chunks, extras = CASES["audio"]
    out = io.BytesIO()
    writer = ChunkWriter(out, header, layout, extras)
    sizes = [out.tell()]
    assert peek_header(out.getvalue()) == header and out.getvalue()[:5] == MAGIC + b"\x02"
    for chunk in chunks:
        writer.write_chunk(chunk)
        sizes.append(out.tell())
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    assert writer.close() == sizes[-1] == len(out.getvalue())
    full = spec_bytes(header, layout, chunks, extras)
    assert out.getvalue() == full
    # Each step wrote exactly one chunk: its lengths, payloads and CRC.
    for k, chunk in enumerate(chunks):
        n = sum(len(varint(len(p))) + len(p) for item in chunk for p in item.streams.values()) + 4 + 4 * len(chunk)
        assert sizes[k + 1] - sizes[k] == n


@pytest.mark.parametrize(("header", "span", "expected"), [
    (image_header(1, 1), 1024, 1),
    (image_header(1024, 1024), 1024, 1),
    (image_header(1025, 1024), 1024, 2),
    (image_header(200, 1100), 1024, 2),
    (image_header(3000, 5000), 1024, 3 * 5),
    (image_header(7, 9), 2, 4 * 5),
    (image_header(65536, 32768, channels=1), MAX_CHUNK_SPAN, 1),
    (Header(Modality.AUDIO, "a", HASH, 1.0, channels=1, frames=1, sample_rate=8000), 44100, 1),
    (Header(Modality.AUDIO, "a", HASH, 1.0, channels=1, frames=44100, sample_rate=8000), 44100, 1),
    (Header(Modality.AUDIO, "a", HASH, 1.0, channels=1, frames=44101, sample_rate=8000), 44100, 2),
    (Header(Modality.AUDIO, "a", HASH, 1.0, channels=2, frames=10, sample_rate=8000), 3, 4),
    (VIDEO, 16, 5),
    (Header(Modality.OTHER, "o", HASH, 1.0), 1, 1),
])
def test_chunk_count_follows_the_geometry(header: Header, span: int, expected: int) -> None:
    assert chunk_count(header, Layout(("x",), span)) == expected
    if header.modality is Modality.IMAGE:
        assert expected == math.ceil(header.height / span) * math.ceil(header.width / span)
    else:
        assert expected == math.ceil(header.frames / span)


def test_v2_overhead_is_no_larger_than_version_1() -> None:
    """A single-tile image with streams (z, y) against the version-1 file with sections z0, y0."""
    for header in (image_header(512, 768), image_header(1024, 1024), image_header(1, 1, codec="c")):
        for z, y in ((0, 0), (1, 1), (127, 128), (128, 16383), (16384, 5000), (300_000, 2**21)):
            payloads = {"z": b"\x01" * z, "y": b"\x02" * y}
            v2 = encode(header, Layout(("z", "y"), LEGACY_TILE), [items(payloads)])
            v1 = write(Container(header, [("z0", payloads["z"]), ("y0", payloads["y"])]))
            assert len(v2) - z - y <= len(v1) - z - y, (header, z, y)


def test_documented_example_overhead() -> None:
    """docs/container.md: a 768x512 mbt2018-mean-vr file, streams z, y of 128..16383 bytes."""
    for z, y in ((128, 128), (300, 5000), (16383, 16383)):
        data = encode(image_header(512, 768), Layout(("z", "y"), 1024), [items({"z": bytes(z), "y": bytes(y)})])
        assert len(data) - z - y == 55


# ---------------------------------------------------------------- the writer refuses bad input


def test_writer_refuses_too_many_and_too_few_chunks() -> None:
    header, layout, chunks, _ = CASES["audio"]
    writer = ChunkWriter(io.BytesIO(), header, layout)
    for chunk in chunks:
        writer.write_chunk(chunk)
    with pytest.raises(ValueError, match="allows 4 chunks"):
        writer.write_chunk(chunks[0])
    assert writer.close() > 0
    writer = ChunkWriter(io.BytesIO(), header, layout)
    for chunk in chunks[:-1]:
        writer.write_chunk(chunk)
    with pytest.raises(ValueError, match="3 chunks written"):
        writer.close()


def test_writer_refuses_wrong_item_counts() -> None:
    header, layout, chunks, _ = CASES["audio"]
    writer = ChunkWriter(io.BytesIO(), header, layout)
    for bad in ([], chunks[0][:1], chunks[0] * 2):
        with pytest.raises(ValueError, match="holds 2 items"):
            writer.write_chunk(bad)
    writer.write_chunk(chunks[0])  # the refusals wrote nothing
    assert writer.written == 1


@pytest.mark.parametrize("extras", [
    [("a", b""), ("b", b""), ("c", b""), ("d", b"")],
    [("a", b""), ("a", b"1")],
    [("bad name", b"")],
    [("", b"")],
    [("n" * 33, b"")],
    [("alpha", "not bytes")],
])
def test_writer_refuses_bad_extras(extras) -> None:
    with pytest.raises(ValueError):
        ChunkWriter(io.BytesIO(), image_header(10, 10), Layout(("z",), 16), extras)


@pytest.mark.parametrize("layout", [
    Layout((), 16),
    Layout(tuple(f"s{i}" for i in range(17)), 16),
    Layout(("z", "z"), 16),
    Layout(("y x",), 16),
    Layout(("",), 16),
    Layout(("é",), 16),
    Layout(("n" * 33,), 16),
    Layout(("z",), 0),
    Layout(("z",), MAX_CHUNK_SPAN + 1),
    Layout(("z",), 16, items=0),
    Layout(("z",), 16, items=256),
])
def test_writer_refuses_bad_layouts(layout: Layout) -> None:
    out = io.BytesIO()
    with pytest.raises(ValueError):
        ChunkWriter(out, image_header(10, 10), layout)
    assert out.tell() == 0


def test_writer_limits_are_inclusive() -> None:
    header = Header(Modality.AUDIO, "a", HASH, 1.0, channels=1, frames=1, sample_rate=8000)
    layout = Layout(tuple("n" * 31 + f"{i:x}" for i in range(16)), MAX_CHUNK_SPAN, items=255)
    extras = [("e" * 32, b"1"), ("f", b""), ("g", b"3" * 300)]
    chunks = make_chunks(layout, [1])
    data = encode(header, layout, chunks, extras)
    _, got, got_extras = consume(data)
    assert got == chunks and got_extras == dict(extras)


def test_writer_refuses_items_with_other_streams() -> None:
    layout = Layout(("z", "y"), 16)
    for item in ({"z": b"1"}, {"z": b"1", "y": b"2", "w": b"lost"}):
        writer = ChunkWriter(io.BytesIO(), image_header(10, 10), layout)
        with pytest.raises(ValueError, match="streams"):
            writer.write_chunk(items(item))


def test_writer_refuses_checksums_that_do_not_fit_the_layout() -> None:
    both = {"z": b"1", "y": b"2"}
    for layout, item in ((Layout(("z", "y"), 16), Item(both, 7)), (Layout(("z", "y"), 16, checksummed=True), Item(both))):
        writer = ChunkWriter(io.BytesIO(), image_header(10, 10), layout)
        with pytest.raises(ValueError, match="checksum"):
            writer.write_chunk([item])


def test_checksums_are_covered_by_the_crc() -> None:
    header, layout, chunks, extras = CASES["video"]
    data = bytearray(encode(header, layout, chunks, extras))
    first_sum = len(spec_bytes(header, layout, [], extras)) + sum(len(varint(len(p))) for p in chunks[0][0].streams.values())
    assert struct.unpack_from("<I", data, first_sum)[0] == chunks[0][0].checksum
    data[first_sum] ^= 1
    with pytest.raises(BitstreamError, match="chunk 0 CRC32"):
        consume(bytes(data))


# ---------------------------------------------------------------- the reader and hostile files


def small_files() -> dict[str, bytes]:
    """Small valid files covering every part: header, layout, items byte, extras, chunks."""
    image = image_header(10, 20, channels=4, codec="c")
    audio = Header(Modality.AUDIO, "a", HASH, 2.0, channels=2, frames=9, sample_rate=8000)
    audio_layout = Layout(("q", "r"), 4, items=2)
    return {
        "image": encode(image, Layout(("z", "y"), 10), make_chunks(Layout(("z", "y"), 10), [3, 2], seed=4),
                        [("alpha", b"\x07\x08\x09"), ("m", b"\x01")]),
        "audio": encode(audio, audio_layout, make_chunks(audio_layout, [4, 3, 2], seed=5)),
    }


def three_chunk_file() -> bytes:
    header = Header(Modality.VIDEO, "v", HASH, 1.0, height=8, width=8, channels=3, frames=30, fps=25.0)
    layout = Layout(("z", "y"), 10, items=2)
    return encode(header, layout, make_chunks(layout, [20, 9, 5], seed=6), [("alpha", b"abc")])


def test_every_truncation_raises_bitstream_error() -> None:
    data = three_chunk_file()
    assert ChunkReader(io.BytesIO(data), len(data)).count == 3
    failures = []
    for i in range(len(data)):
        try:
            consume(data[:i])
            failures.append(f"{i}: accepted")
        except BitstreamError as exc:
            if not str(exc) or "\n" in str(exc):
                failures.append(f"{i}: message {str(exc)!r}")
        except Exception as exc:  # noqa: BLE001 - any other type is what this test looks for
            failures.append(f"{i}: {type(exc).__name__}: {exc}")
    assert not failures, failures[:5]


def test_a_source_shorter_than_its_declared_size_is_truncated() -> None:
    data = three_chunk_file()
    for cut in (10, len(data) // 2, len(data) - 1):
        with pytest.raises(BitstreamError, match="truncated"):
            consume(data[:cut], size=len(data))


@pytest.mark.parametrize("name", ["image", "audio"])
def test_every_single_byte_flip_is_detected(name: str) -> None:
    data = small_files()[name]
    failures = []
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[pos] ^= mask
            try:
                consume(bytes(mutated))
                failures.append(f"byte {pos} ^ 0x{mask:02x}: accepted")
            except BitstreamError:
                pass
            except Exception as exc:  # noqa: BLE001
                failures.append(f"byte {pos} ^ 0x{mask:02x}: {type(exc).__name__}: {exc}")
    assert not failures, failures[:5]


def test_corrupted_chunk_payload_is_caught_before_it_is_handed_on() -> None:
    data = bytearray(three_chunk_file())
    data[-6] ^= 0x10  # a payload byte of the last chunk
    reader = ChunkReader(io.BytesIO(bytes(data)), len(data))
    chunks = reader.chunks()
    next(chunks), next(chunks)
    with pytest.raises(BitstreamError, match="chunk 2 CRC32"):
        next(chunks)


def test_corrupted_extras_are_caught_by_the_first_chunks_crc() -> None:
    header, layout, chunks, extras = CASES["image-alpha"]
    data = bytearray(encode(header, layout, chunks, extras))
    data[data.index(extras[0][1]) + 5] ^= 0x01
    reader = ChunkReader(io.BytesIO(bytes(data)), len(data))
    with pytest.raises(BitstreamError, match="chunk 0 CRC32"):
        next(reader.chunks())


@pytest.mark.parametrize("garbage", [b"\x00", b"junk", b"\x00\x00\x00\x00" * 10])
def test_trailing_garbage_is_detected(garbage: bytes) -> None:
    for data in (*small_files().values(), three_chunk_file()):
        with pytest.raises(BitstreamError, match="trailing garbage"):
            consume(data + garbage)


class SpySource(io.BytesIO):
    """Records the size of every read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int] = []

    def read(self, n: int | None = -1) -> bytes:
        self.requests.append(-1 if n is None else n)
        return super().read(n)


@pytest.mark.parametrize("claimed", [6000, 10**6, 2**35 - 1])
def test_chunk_lengths_beyond_the_file_raise_before_reading(claimed: int) -> None:
    header = image_header(10, 10)
    layout = Layout(("z", "y"), 16)
    preamble = io.BytesIO()
    ChunkWriter(preamble, header, layout)
    data = preamble.getvalue() + varint(claimed) + varint(0) + bytes(5000) + b"\x00" * 4
    src = SpySource(data)
    reader = ChunkReader(src, len(data))
    with pytest.raises(BitstreamError, match=f"chunk 0 needs {claimed} bytes"):
        next(reader.chunks())
    assert all(0 <= n < 1024 for n in src.requests), src.requests


@pytest.mark.parametrize(("what", "overrides", "message"), [
    ("items stored as 1", {"layout_byte": 0x41, "items": b"\x01"}, "default value"),
    ("items stored as 0", {"layout_byte": 0x41, "items": b"\x00"}, "default value"),
    ("span 0", {"span": b"\x00"}, "chunk span 0"),
    ("span over 2**31", {"span": varint(2**31 + 1)}, "chunk span"),
    ("non-minimal span", {"span": b"\x90\x00"}, "non-minimal"),
    ("span varint of 6 bytes", {"span": b"\x80" * 5 + b"\x01"}, "longer than 5"),
])
def test_reader_rejects_bad_layouts(what: str, overrides: dict, message: str) -> None:
    layout = Layout(("z", "y"), 16)
    data = spec_bytes(image_header(10, 10), layout, make_chunks(layout, [5]), **overrides)
    with pytest.raises(BitstreamError, match=message):
        consume(data)


def test_reader_rejects_duplicate_names() -> None:
    header = image_header(10, 10)
    with pytest.raises(BitstreamError, match="duplicate stream"):
        consume(spec_bytes(header, Layout(("z", "z"), 16), [items({"z": b"1"})]))
    with pytest.raises(BitstreamError, match="duplicate extra"):
        consume(spec_bytes(header, Layout(("z",), 16), [items({"z": b"1"})], [("a", b"1"), ("a", b"2")]))


def test_reader_rejects_non_minimal_chunk_lengths() -> None:
    header, layout = image_header(10, 10), Layout(("z",), 16)
    good = spec_bytes(header, layout, [items({"z": b"\x05"})])
    prefix = good[: -(1 + 1 + 4)]
    body = b"\x81\x00" + b"\x05"
    data = prefix + body + struct.pack("<I", zlib.crc32(body, zlib.crc32(prefix)))
    with pytest.raises(BitstreamError, match="non-minimal"):
        consume(data)


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A changed copy of ``data``: flipped bits, overwritten, inserted, deleted or moved bytes."""
    while True:
        out = bytearray(data)
        kind = rng.randrange(7)
        pos = rng.randrange(len(out))
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            out[pos : pos + rng.randint(1, 6)] = rng.randbytes(rng.randint(1, 6))
        elif kind == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 20))
        elif kind == 3:
            del out[pos : pos + rng.randint(1, 20)]
        elif kind == 4:
            out[pos] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
        elif kind == 5:
            end = min(len(out), pos + rng.randint(1, 30))
            out[rng.randrange(len(out)) : rng.randrange(len(out))] = out[pos:end]
        else:
            out += rng.randbytes(rng.randint(1, 10))
        if bytes(out) != data:
            return bytes(out)


def test_fuzz_300_mutations_raise_only_bitstream_error() -> None:
    rng = random.Random(20240)
    seeds = [*small_files().values(), three_chunk_file(),
             *(encode(*CASES[name]) for name in ("image-alpha", "audio", "video"))]
    failures = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(300):
            data = mutate(rng, seeds[i % len(seeds)])
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            try:
                consume(data)
                failures.append(f"case {i} accepted: {data[:40].hex()}")
            except BitstreamError as exc:
                if not str(exc) or "\n" in str(exc):
                    failures.append(f"case {i}: message {str(exc)!r}")
            except Hang:
                failures.append(f"case {i} took over 1 s")
            except Exception as exc:  # noqa: BLE001
                failures.append(f"case {i}: {type(exc).__name__}: {exc}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not failures, failures[:5]


def test_long_file_is_written_and_read_with_one_chunk_in_memory(tmp_path: Path) -> None:
    header = Header(Modality.AUDIO, "a", HASH, 1.0, channels=2, frames=200 * 1000 - 10, sample_rate=8000)
    layout = Layout(("codes", "side"), 1000, items=2)
    chunk_bytes = 2 * (6000 + 2000)

    def chunk(k: int) -> list[Item]:
        rng = random.Random(k)
        return items(*({"codes": rng.randbytes(6000), "side": rng.randbytes(2000)} for _ in range(2)))

    path = tmp_path / "long.lnc"
    tracemalloc.start()
    try:
        with atomic_open(path) as f:
            writer = ChunkWriter(f, header, layout)
            for k in range(200):
                writer.write_chunk(chunk(k))
            size = writer.close()
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with open_reader(path) as reader:
            assert reader.count == 200
            n = 0
            for k, got in enumerate(reader.chunks()):
                assert got == chunk(k)
                n += 1
            assert n == 200 and reader.extras() == {}
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size == path.stat().st_size > 200 * chunk_bytes
    assert write_peak < 8 * chunk_bytes and read_peak < 8 * chunk_bytes, (write_peak, read_peak, size)


def test_extras_after_taking_exactly_every_chunk() -> None:
    data = three_chunk_file()
    reader = ChunkReader(io.BytesIO(data), len(data))
    chunks = reader.chunks()
    for _ in range(reader.count):
        next(chunks)
    assert reader.extras() == {"alpha": b"abc"}


# ---------------------------------------------------------------- version-1 files


GOLDEN_FILES = sorted(GOLDEN / name for name in json.loads((GOLDEN / "decoded.json").read_text()))
"""The version-1 golden files (``portable.json`` names the version-2 ones)."""


def test_golden_files_are_there() -> None:
    assert [p.name[0] for p in GOLDEN_FILES] == list("abcdef") and all(p.is_file() for p in GOLDEN_FILES)


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name[0])
def test_golden_version_1_files_read_through_chunk_reader(path: Path) -> None:
    sections = dict(read(path.read_bytes()).sections)
    with open_reader(path) as reader:
        assert reader.version == 1
        assert reader.layout.span == LEGACY_TILE and reader.layout.items == 1
        expected_streams = {"z", "y"} if "mbt2018" in path.name else {"z", "y_anchor", "y_other"}
        assert set(reader.layout.streams) == expected_streams
        assert reader.count == (2 if path.name.startswith("c-") else 1)
        if path.name.startswith("c-"):
            assert (reader.header.width, reader.header.height) == (1100, 200)  # two tiles side by side
        chunks = list(reader.chunks())
        assert len(chunks) == reader.count
        for k, got in enumerate(chunks):
            assert len(got) == 1 and set(got[0].streams) == expected_streams and got[0].checksum is None
            assert got[0].streams == {name: sections[f"{name}{k}"] for name in expected_streams}
        extras = reader.extras()
        assert set(extras) == ({"alpha"} if path.name[0] in "de" else set())
        if extras:
            assert extras["alpha"] == sections["alpha"] and zlib.decompress(extras["alpha"])


def test_corrupted_golden_file_raises_bitstream_error() -> None:
    data = bytearray(GOLDEN_FILES[0].read_bytes())
    data[len(data) // 2] ^= 0x01
    with pytest.raises(BitstreamError, match="CRC32"):
        consume(bytes(data))
    with pytest.raises(BitstreamError):
        consume(bytes(data[:-1]))


@pytest.mark.parametrize(
    "modality, sections, message",
    [
        (Modality.IMAGE, [("z0", b"a"), ("z00", b"b"), ("y0", b"c")], "names its tile twice"),
        (Modality.IMAGE, [("z0", b"a"), ("y1", b"c")], "the same streams"),
        (Modality.IMAGE, [("alpha", b"a")], "the same streams"),
        (Modality.AUDIO, [("y0", b"a")], "images only"),
    ],
)
def test_malformed_version_1_files_are_bitstream_errors(modality, sections, message) -> None:
    geometry = {"channels": 1, "sample_rate": 16000, "frames": 100} if modality is Modality.AUDIO else \
        {"height": 64, "width": 64, "channels": 3}
    data = write(Container(Header(modality, "mbt2018-mean-vr", b"\0" * 8, 4.0, **geometry), sections))
    with pytest.raises(BitstreamError, match=message):
        ChunkReader(io.BytesIO(data), len(data))
