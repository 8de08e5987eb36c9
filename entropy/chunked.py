"""Version 2 of the ``.lnc`` container: declared streams, written and read chunk by chunk.

After the header of :mod:`lnc.entropy.container` comes the layout the codec declared (its stream
names, the chunk span, batch items per chunk) and up to three named extra sections (e.g. an image's
alpha), then the chunks in order (image tiles in row-major order, a few seconds of audio, a group of
frames). Each chunk holds one length per item and stream, optionally a checksum per item of the
symbols and table indexes its streams code (so a decoder whose probability model drifted from the
encoder's stops with an error instead of producing wrong samples), the payloads, and a CRC32 chained
from the one before (the first covers everything before it too), so a reader checks every chunk before
decoding it and holds only one at a time; so does a writer. How many chunks a file has follows from
its geometry and the chunk span (:func:`chunk_count`), so no index is needed, and the layout costs
no more bytes than version 1's section table. Layout and limits: ``docs/container.md``.

Version-1 files (one section table of names like ``y_anchor0``, one CRC) are read too:
:class:`ChunkReader` presents them in the same form, their sections grouped into chunks by the tile
number at the end of each name.
"""
from __future__ import annotations

import io
import math
import os
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from lnc.entropy import container as v1
from lnc.entropy.container import (
    MAX_FILE_BYTES,
    MAX_SECTION_NAME_LEN,
    PEEK_BYTES,
    BitstreamError,
    Header,
    Modality,
    _Cursor,
    _header_bytes,
    _header_problem,
    _read_header,
    _section_problem,
    _varint,
)

VERSION = 2
MAX_STREAMS = 16
MAX_EXTRAS = 3
MAX_ITEMS = 255
MAX_CHUNK_SPAN = 1 << 31
LEGACY_TILE = 1024
"""The tile side of version-1 image files."""
# The layout byte: stream count - 1 in bits 0-3, extra sections in bits 4-5, bit 6 "items follow",
# bit 7 "each item carries a checksum of its symbols".
_ITEMS_FLAG = 0x40
_CHECKSUM_FLAG = 0x80
# Most bytes before the first chunk but the extras' payloads: header, layout byte, names, span,
# items, extras table.
_MAX_PREAMBLE = (PEEK_BYTES + 1 + MAX_STREAMS * (1 + MAX_SECTION_NAME_LEN) + 5 + 1
                 + MAX_EXTRAS * (1 + MAX_SECTION_NAME_LEN + 5))
_LEGACY_NAME = re.compile(r"(.*?)(\d+)")


@dataclass(frozen=True)
class Layout:
    """What a file's chunks hold: ``items`` batch items (e.g. audio channels coded apart), each
    with one string per stream of ``streams``; ``span`` is the chunk's extent: tile side in pixels
    (images), frames (video) or sample frames (audio)."""

    streams: tuple[str, ...]
    span: int
    items: int = 1
    checksummed: bool = False
    """Whether every item carries the 32-bit checksum of :attr:`Item.checksum`."""


@dataclass(frozen=True)
class Item:
    """One batch item of a chunk: a string per stream and, in a checksummed layout, the checksum
    of the symbols and table indexes its decoder must read (``RangeDecoder.checksum`` of each
    stream, combined by ``lnc.codecs.base.Compressed``)."""

    streams: dict[str, bytes]
    checksum: int | None = None


def _layout_problem(layout: Layout) -> str | None:
    if not 1 <= len(layout.streams) <= MAX_STREAMS:
        return f"{len(layout.streams)} streams, allowed 1..{MAX_STREAMS}"
    for name in layout.streams:
        problem = _section_problem(name, b"")
        if problem:
            return problem.replace("section", "stream")
    if len(set(layout.streams)) != len(layout.streams):
        return f"duplicate stream names in {layout.streams}"
    if not 1 <= layout.span <= MAX_CHUNK_SPAN:
        return f"chunk span {layout.span} outside 1..{MAX_CHUNK_SPAN}"
    if not 1 <= layout.items <= MAX_ITEMS:
        return f"{layout.items} items per chunk, allowed 1..{MAX_ITEMS}"
    return None


def chunk_count(header: Header, layout: Layout) -> int:
    """Chunks in a file: image tiles of ``span``² in row-major order, else ``frames / span``."""
    if header.modality is Modality.IMAGE:
        return math.ceil(header.height / layout.span) * math.ceil(header.width / layout.span)
    return math.ceil(header.frames / layout.span)


def _extras_problem(extras: Sequence[tuple[str, bytes]]) -> str | None:
    if len(extras) > MAX_EXTRAS or len({name for name, _ in extras}) != len(extras):
        return f"at most {MAX_EXTRAS} extra sections with unique names, got {[n for n, _ in extras]}"
    return next((p for name, payload in extras if (p := _section_problem(name, payload))), None)


def _preamble(header: Header, layout: Layout, extras: Sequence[tuple[str, bytes]]) -> bytes:
    """Header, layout and extra sections: everything before the first chunk."""
    items = layout.items > 1
    out = bytearray(_header_bytes(header, VERSION))
    out.append(len(layout.streams) - 1 | len(extras) << 4 | (_ITEMS_FLAG if items else 0)
               | (_CHECKSUM_FLAG if layout.checksummed else 0))
    for name in layout.streams:
        out += bytes((len(name),)) + name.encode()
    out += _varint(layout.span) + (bytes((layout.items,)) if items else b"")
    for name, payload in extras:
        out += bytes((len(name),)) + name.encode() + _varint(len(payload))
    for _, payload in extras:
        out += payload
    return bytes(out)


class ChunkWriter:
    """Writes a version-2 file to ``out`` chunk by chunk: the preamble at once, then each chunk as
    it comes; :meth:`close` checks that the geometry's chunks were all written."""

    def __init__(
        self, out: BinaryIO, header: Header, layout: Layout, extras: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        problem = _header_problem(header) or _layout_problem(layout) or _extras_problem(extras)
        if problem:
            raise ValueError(problem)
        self.out = out
        self.layout = layout
        self.expected = chunk_count(header, layout)
        self.written = 0
        preamble = _preamble(header, layout, extras)
        self.crc = zlib.crc32(preamble)
        self.size = 0
        self._emit(preamble)

    def _emit(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_FILE_BYTES:
            raise ValueError(f".lnc file would exceed {MAX_FILE_BYTES} bytes")
        self.out.write(data)

    def write_chunk(self, items: Sequence[Item]) -> None:
        """One chunk: for each of the layout's items, its string of every stream (and its checksum
        in a checksummed layout)."""
        if len(items) != self.layout.items:
            raise ValueError(f"a chunk holds {self.layout.items} items, got {len(items)}")
        if self.written >= self.expected:
            raise ValueError(f"the geometry allows {self.expected} chunks")
        for item in items:
            streams = item.streams
            if set(streams) != set(self.layout.streams) or not all(isinstance(p, bytes) for p in streams.values()):
                raise ValueError(f"each item holds bytes of the streams {self.layout.streams}, got {sorted(streams)}")
            if self.layout.checksummed != (item.checksum is not None):
                raise ValueError("items carry a checksum exactly when the layout is checksummed")
        payloads = [item.streams[name] for item in items for name in self.layout.streams]
        sums = b"".join(struct.pack("<I", item.checksum) for item in items if item.checksum is not None)
        body = b"".join(_varint(len(p)) for p in payloads) + sums + b"".join(payloads)
        self.crc = zlib.crc32(body, self.crc)
        self._emit(body + struct.pack("<I", self.crc))
        self.written += 1

    def close(self) -> int:
        """Check that every chunk was written; returns the file's size in bytes."""
        if self.written != self.expected:
            raise ValueError(f"{self.written} chunks written, the geometry needs {self.expected}")
        return self.size


class _Source:
    """Bounds-checked sequential reads from a stream of known size; the CRC chain of what is read."""

    def __init__(self, src: BinaryIO, size: int, head: bytes) -> None:
        self.src = src
        self.left = size
        self.buffer = memoryview(head)

    def take(self, n: int, what: str) -> bytes:
        if n > self.left:
            raise BitstreamError(f"truncated .lnc file: {what} needs {n} bytes, {self.left} left")
        self.left -= n
        out = bytes(self.buffer[:n])
        self.buffer = self.buffer[len(out):]
        if len(out) < n:
            out += self.src.read(n - len(out))
            if len(out) < n:
                raise BitstreamError(f"truncated .lnc file: {what} ended early")
        return out



class ChunkReader:
    """Reads a ``.lnc`` file from ``src`` (``size`` bytes long) chunk by chunk, checking every
    field, length and CRC before handing anything on. Version-1 files are read whole (they were
    written whole) and presented the same way."""

    def __init__(self, src: BinaryIO, size: int) -> None:
        if size > MAX_FILE_BYTES:
            raise BitstreamError(f".lnc file is {size} bytes, limit {MAX_FILE_BYTES}")
        head = src.read(min(size, _MAX_PREAMBLE))
        cur = _Cursor(memoryview(head))
        self.header, self.version = _read_header(cur)
        self._extras: dict[str, bytes] | None = None
        if self.version == 1:
            self._legacy(v1.read(head + src.read(size - len(head))))
            return
        flags = cur.u8("layout flags")
        streams = tuple(cur.name(MAX_SECTION_NAME_LEN, f"stream {i} name") for i in range((flags & 0x0F) + 1))
        span = cur.varint("chunk span")
        items = cur.u8("items per chunk") if flags & _ITEMS_FLAG else 1
        if flags & _ITEMS_FLAG and items < 2:
            raise BitstreamError("corrupted .lnc file: items per chunk stored with its default value")
        self.layout = Layout(streams, span, items, bool(flags & _CHECKSUM_FLAG))
        problem = _layout_problem(self.layout)
        if problem:
            raise BitstreamError(f"implausible .lnc layout: {problem}")
        table: dict[str, int] = {}
        for i in range(flags >> 4 & 0x03):
            name = cur.name(MAX_SECTION_NAME_LEN, f"extra section {i} name")
            if name in table:
                raise BitstreamError(f"corrupted .lnc file: duplicate extra section {name!r}")
            table[name] = cur.varint(f"extra section {name!r} length")
        self.count = chunk_count(self.header, self.layout)
        self._crc = zlib.crc32(head[: cur.pos])
        self._source = _Source(src, size - cur.pos, head[cur.pos:])
        if sum(table.values()) > self._source.left:
            raise BitstreamError("truncated .lnc file: extra sections longer than the file")
        self._pending = {name: self._source.take(n, f"extra section {name!r}") for name, n in table.items()}
        self._crc = zlib.crc32(b"".join(self._pending.values()), self._crc)
        self._read = 0

    def _legacy(self, container: v1.Container) -> None:
        """Group a version-1 file's ``<stream><tile>`` sections into chunks, the rest into extras."""
        if self.header.modality is not Modality.IMAGE:
            raise BitstreamError(f"a version-1 .lnc file of {self.header.modality.name.lower()}: lnc wrote "
                                 "version 1 for images only")
        chunks: dict[int, dict[str, bytes]] = {}
        extras: dict[str, bytes] = {}
        for name, payload in container.sections:
            match = _LEGACY_NAME.fullmatch(name)
            if match and match[1]:
                tile = chunks.setdefault(int(match[2]), {})
                if match[1] in tile or match[2] != str(int(match[2])):
                    raise BitstreamError(f"corrupted version-1 .lnc file: section {name!r} names its tile twice")
                tile[match[1]] = payload
            else:
                extras[name] = payload
        streams = tuple(chunks.get(0, {}))
        self.layout = Layout(streams, LEGACY_TILE)
        self.count = chunk_count(self.header, self.layout)
        if not streams or sorted(chunks) != list(range(self.count)) or any(set(c) != set(streams) for c in chunks.values()):
            have = ", ".join(name for name, _ in container.sections) or "none"
            raise BitstreamError(f"version-1 .lnc file without the same streams for each of its {self.count} "
                                 f"tiles (sections: {have})")
        self._legacy_chunks = [[Item(chunks[k])] for k in range(self.count)]
        self._extras = extras

    def chunks(self) -> Iterator[list[Item]]:
        """Each chunk, in order, as its items."""
        if self.version == 1:
            yield from self._legacy_chunks
            return
        n_payloads = self.layout.items * len(self.layout.streams)
        for k in range(self.count):
            what = f"chunk {k}"
            lengths = []
            raw = bytearray()
            for _ in range(n_payloads):
                length, encoded = self._varint(what)
                lengths.append(length)
                raw += encoded
            sums = self._source.take(4 * self.layout.items, f"{what} checksums") if self.layout.checksummed else b""
            if sum(lengths) > self._source.left:
                raise BitstreamError(f"truncated .lnc file: {what} needs {sum(lengths)} bytes, "
                                     f"{self._source.left} left")
            payloads = [self._source.take(n, what) for n in lengths]
            self._check_crc(bytes(raw) + sums + b"".join(payloads), what)
            self._read += 1
            n = len(self.layout.streams)
            checksums = struct.unpack(f"<{self.layout.items}I", sums) if sums else (None,) * self.layout.items
            yield [Item(dict(zip(self.layout.streams, payloads[k * n:(k + 1) * n])), checksums[k])
                   for k in range(self.layout.items)]

    def _varint(self, what: str) -> tuple[int, bytes]:
        encoded = bytearray()
        value = 0
        for i in range(5):
            byte = self._source.take(1, f"{what} length")[0]
            encoded.append(byte)
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    raise BitstreamError(f"corrupted .lnc file: {what} has a non-minimal varint")
                return value, bytes(encoded)
        raise BitstreamError(f"corrupted .lnc file: {what} varint longer than 5 bytes")

    def _check_crc(self, body: bytes, what: str) -> None:
        self._crc = zlib.crc32(body, self._crc)
        (stored,) = struct.unpack("<I", self._source.take(4, f"{what} CRC32"))
        if stored != self._crc:
            raise BitstreamError(f"corrupted .lnc file: {what} CRC32 is 0x{self._crc:08x}, file says 0x{stored:08x}")

    def extras(self) -> dict[str, bytes]:
        """The extra sections; call after every chunk was read (the last chunk's CRC covers them).
        Checks that the file ends there."""
        if self._extras is not None:
            return self._extras
        if self._read != self.count:
            raise RuntimeError("read every chunk before the extras")
        if self._source.left:
            raise BitstreamError(f"corrupted .lnc file: trailing garbage, {self._source.left} bytes after the last chunk")
        self._extras = self._pending
        return self._extras


@contextmanager
def open_reader(source: str | os.PathLike[str] | bytes) -> Iterator[ChunkReader]:
    """A :class:`ChunkReader` over a ``.lnc`` file's path or bytes; the size is checked before
    anything is read."""
    if isinstance(source, bytes):
        yield ChunkReader(io.BytesIO(source), len(source))
        return
    with open(source, "rb") as f:
        yield ChunkReader(f, os.fstat(f.fileno()).st_size)
