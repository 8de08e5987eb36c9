"""The ``.lnc`` container: one file layout for every codec (image, video, audio, raw indices).

Version 2 (written): a small header (codec, weights hash, rate parameter, original geometry), the
stream layout the codec declared (stream names, chunk span, items per chunk), then the chunks (a
tile, a few seconds of audio, a group of frames), each with its stream lengths, payloads and a
chained CRC32, and a trailer of named extra sections (e.g. an image's alpha). Files are written and
read chunk by chunk (:class:`ChunkWriter`, :class:`ChunkReader`), so neither side holds a long
file whole. Version 1 (read only): the header, one table of named sections and one CRC32. The
byte layout, limits and error semantics are specified in ``docs/container.md``.

The reader treats its input as hostile: every count, length and dimension is checked against the
limits below before anything is sliced or allocated, and every failure is a
:class:`~lnc.entropy.errors.BitstreamError`. The encoding is canonical (minimal varints, defaults
omitted), so any file :func:`read` accepts is exactly what :func:`write` makes of its result.
"""
from __future__ import annotations

import enum
import math
import os
import re
import secrets
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from lnc.entropy.errors import BitstreamError, LncError

MAGIC = b"\x89LNC"
VERSION = 1
"""The single-table layout this module writes; lnc writes version 2 (:mod:`lnc.entropy.chunked`)."""
READABLE_VERSIONS = (1, 2)

MAX_FILE_BYTES = 1 << 31
MAX_SECTIONS = 4096
MAX_CODEC_LEN = 64
MAX_SECTION_NAME_LEN = 32
MAX_DIM = 65536  # height, width, channels
MAX_SAMPLES = 1 << 31  # height * width * channels * frames (zero dimensions count as 1)
MAX_BIT_DEPTH = 32
MAX_FPS = 1000.0
MAX_SAMPLE_RATE = 1_000_000
WEIGHTS_HASH_LEN = 8

_VARINT_MAX_BYTES = 5  # 35 bits: every varint field is bounded far below 2**35
# Most bytes the header parser reads (all six varint fields at their longest, plus fps), so
# peek_header() needs no more than this prefix of a file.
PEEK_BYTES = len(MAGIC) + 3 + 4 + WEIGHTS_HASH_LEN + 1 + MAX_CODEC_LEN + 6 * _VARINT_MAX_BYTES + 8
_NAME_RE = re.compile(rb"[\x21-\x7e]+")  # printable ASCII, no spaces


class Modality(enum.IntEnum):
    """What the geometry fields describe; stored as one byte."""

    IMAGE = 0
    VIDEO = 1
    AUDIO = 2
    OTHER = 3


@dataclass
class Header:
    """Everything a decoder needs besides the payload.

    ``weights_hash`` is the first 8 bytes of SHA-256 of the weights the stream was coded with.
    ``quality`` is stored as float32; :func:`read` returns the shortest decimal that rounds to
    the stored float32, so any value with at most 6 significant digits round-trips exactly.
    For audio, ``frames`` counts sample frames (samples per channel).
    """

    modality: Modality
    codec: str
    weights_hash: bytes
    quality: float
    height: int = 0
    width: int = 0
    channels: int = 0
    bit_depth: int = 8
    frames: int = 1
    fps: float = 0.0
    sample_rate: int = 0


@dataclass
class Container:
    """A header and its named sections, in file order."""

    header: Header
    sections: list[tuple[str, bytes]] = field(default_factory=list)

    def section(self, name: str) -> bytes:
        """The payload of section ``name``; a file lacking it is a corrupt stream."""
        for key, payload in self.sections:
            if key == name:
                return payload
        have = ", ".join(repr(key) for key, _ in self.sections) or "none"
        raise BitstreamError(f"no section {name!r} in .lnc file (sections: {have})")


# Optional geometry fields in file order; bit i of the flags byte says field i is stored.
# Each is (name, default, kind) with kind "u" (varint) or "f" (float64).
_GEOMETRY = (
    ("height", 0, "u"),
    ("width", 0, "u"),
    ("channels", 0, "u"),
    ("bit_depth", 8, "u"),
    ("frames", 1, "u"),
    ("fps", 0.0, "f"),
    ("sample_rate", 0, "u"),
)
_KNOWN_FLAGS = (1 << len(_GEOMETRY)) - 1


def _header_problem(h: Header) -> str | None:
    """The first way ``h`` breaks the format's limits, or None; shared by writer and reader."""
    try:
        modality = Modality(h.modality)
    except ValueError:
        return f"unknown modality {h.modality!r}"
    if not (isinstance(h.codec, str) and h.codec.isascii() and _NAME_RE.fullmatch(h.codec.encode())):
        return f"codec name must be printable ASCII without spaces, got {h.codec!r}"
    if len(h.codec) > MAX_CODEC_LEN:
        return f"codec name is {len(h.codec)} bytes, limit {MAX_CODEC_LEN}"
    if not isinstance(h.weights_hash, bytes) or len(h.weights_hash) != WEIGHTS_HASH_LEN:
        return f"weights hash must be {WEIGHTS_HASH_LEN} bytes, got {h.weights_hash!r}"
    if not isinstance(h.quality, (int, float)) or not math.isfinite(h.quality):
        return f"quality must be a finite number, got {h.quality!r}"
    try:
        _f32(h.quality)
    except OverflowError:
        return f"quality {h.quality} does not fit a float32"
    for name, _, kind in _GEOMETRY:
        value = getattr(h, name)
        if kind == "u" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            return f"{name} must be a non-negative int, got {value!r}"
    for name in ("height", "width", "channels"):
        if getattr(h, name) > MAX_DIM:
            return f"{name} {getattr(h, name)} exceeds {MAX_DIM}"
    if not 1 <= h.bit_depth <= MAX_BIT_DEPTH:
        return f"bit depth {h.bit_depth} outside 1..{MAX_BIT_DEPTH}"
    if not 1 <= h.frames <= MAX_SAMPLES:
        return f"frames {h.frames} outside 1..{MAX_SAMPLES}"
    samples = max(h.height, 1) * max(h.width, 1) * max(h.channels, 1) * h.frames
    if samples > MAX_SAMPLES:
        return f"{samples} samples (height*width*channels*frames) exceed {MAX_SAMPLES}"
    if not isinstance(h.fps, (int, float)) or not 0.0 <= h.fps <= MAX_FPS:
        return f"fps {h.fps!r} outside 0..{MAX_FPS:g}"
    if h.sample_rate > MAX_SAMPLE_RATE:
        return f"sample rate {h.sample_rate} exceeds {MAX_SAMPLE_RATE}"
    if modality in (Modality.IMAGE, Modality.VIDEO) and 0 in (h.height, h.width, h.channels):
        return f"{modality.name.lower()} needs height, width and channels >= 1"
    if modality is Modality.AUDIO and 0 in (h.channels, h.sample_rate):
        return "audio needs channels and sample_rate >= 1"
    return None


def _section_problem(name: object, payload: object) -> str | None:
    if not isinstance(name, str) or not name.isascii() or not _NAME_RE.fullmatch(name.encode()):
        return f"section name must be printable ASCII without spaces, got {name!r}"
    if len(name) > MAX_SECTION_NAME_LEN:
        return f"section name {name!r} is {len(name)} bytes, limit {MAX_SECTION_NAME_LEN}"
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return f"section {name!r} payload must be bytes, got {type(payload).__name__}"
    return None


def _varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, low first, high bit set on all but the last byte."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _f32(x: float) -> bytes:
    return struct.pack("<f", x)


def _header_bytes(h: Header, version: int) -> bytes:
    """The header fields from the magic to the last geometry field."""
    flags = 0
    geometry = bytearray()
    for bit, (name, default, kind) in enumerate(_GEOMETRY):
        value = getattr(h, name)
        if value != default:
            flags |= 1 << bit
            geometry += _varint(value) if kind == "u" else struct.pack("<d", value)
    codec = h.codec.encode()
    out = bytearray(MAGIC)
    out += bytes((version, Modality(h.modality), flags))
    out += _f32(h.quality) + h.weights_hash + bytes((len(codec),)) + codec + geometry
    return bytes(out)


def write(container: Container) -> bytes:
    """Serialise ``container`` as a version-1 file (one section table, one CRC), the layout of
    files written before chunked streams; raises ValueError if it breaks the format's limits."""
    h = container.header
    problem = _header_problem(h)
    if problem:
        raise ValueError(problem)
    sections = container.sections
    if len(sections) > MAX_SECTIONS:
        raise ValueError(f"{len(sections)} sections, limit {MAX_SECTIONS}")
    names = set()
    for name, payload in sections:
        problem = _section_problem(name, payload)
        if problem:
            raise ValueError(problem)
        if name in names:
            raise ValueError(f"duplicate section name {name!r}")
        names.add(name)

    out = bytearray(_header_bytes(h, version=1))
    out += _varint(len(sections))
    for name, payload in sections:
        out += bytes((len(name),)) + name.encode() + _varint(len(payload))
    for _, payload in sections:
        out += payload
    if len(out) + 4 > MAX_FILE_BYTES:
        raise ValueError(f".lnc file would be {len(out) + 4} bytes, limit {MAX_FILE_BYTES}")
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class _Cursor:
    """Bounds-checked reading from a byte buffer; every shortfall is a BitstreamError."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n > self.left():
            unit = "byte" if n == 1 else "bytes"
            raise BitstreamError(f"truncated .lnc file: {what} needs {n} {unit}, {self.left()} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = 0
        for i in range(_VARINT_MAX_BYTES):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    raise BitstreamError(f"corrupted .lnc file: {what} has a non-minimal varint")
                return value
        raise BitstreamError(f"corrupted .lnc file: {what} varint longer than {_VARINT_MAX_BYTES} bytes")

    def name(self, limit: int, what: str) -> str:
        n = self.u8(f"{what} length")
        if not 1 <= n <= limit:
            raise BitstreamError(f"corrupted .lnc file: {what} length {n} outside 1..{limit}")
        raw = bytes(self.take(n, what))
        if not _NAME_RE.fullmatch(raw):
            raise BitstreamError(f"corrupted .lnc file: {what} {raw!r} is not printable ASCII")
        return raw.decode()


def _shortest_f32(x: float) -> float:
    """The shortest decimal that rounds to the same float32 as ``x`` (at most 9 digits)."""
    stored = _f32(x)
    for digits in range(1, 9):
        candidate = float(f"{x:.{digits}g}")
        try:
            if _f32(candidate) == stored:
                return candidate
        except OverflowError:  # rounded up past the largest float32
            continue
    return float(f"{x:.9g}")  # 9 significant digits identify every float32


def _read_header(cur: _Cursor) -> tuple[Header, int]:
    magic = bytes(cur.data[: len(MAGIC)])
    if not magic:
        raise BitstreamError("empty file, not an .lnc file")
    if magic != MAGIC[: len(magic)]:
        raise BitstreamError(f"not an .lnc file: starts with {magic!r}, expected {MAGIC!r}")
    cur.take(len(MAGIC), "magic")
    version = cur.u8("version")
    if version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise BitstreamError(f"unsupported .lnc version {version} (this lnc reads versions {readable})")
    modality_byte = cur.u8("modality")
    try:
        modality = Modality(modality_byte)
    except ValueError:
        raise BitstreamError(f"corrupted .lnc file: unknown modality {modality_byte}") from None
    flags = cur.u8("geometry flags")
    if flags & ~_KNOWN_FLAGS:
        raise BitstreamError(f"corrupted .lnc file: unknown geometry flags 0x{flags:02x}")
    (quality,) = struct.unpack("<f", cur.take(4, "quality"))
    weights_hash = bytes(cur.take(WEIGHTS_HASH_LEN, "weights hash"))
    codec = cur.name(MAX_CODEC_LEN, "codec name")
    values: dict[str, int | float] = {}
    for bit, (name, default, kind) in enumerate(_GEOMETRY):
        if flags >> bit & 1:
            if kind == "u":
                value = cur.varint(name)
            else:
                (value,) = struct.unpack("<d", cur.take(8, name))
            if value == default:
                raise BitstreamError(f"corrupted .lnc file: {name} stored with its default value")
            values[name] = value
    header = Header(modality, codec, weights_hash, _shortest_f32(quality), **values)
    problem = _header_problem(header)
    if problem:
        raise BitstreamError(f"implausible .lnc header: {problem}")
    return header, version


def peek_header(data: bytes) -> Header:
    """Parse and check only the header; ``data`` may be just the first PEEK_BYTES of a file.

    The CRC is not verified (that needs the whole file): use it to pick a codec, then :func:`read`.
    """
    return _read_header(_Cursor(memoryview(data)))[0]


def read(data: bytes) -> Container:
    """Parse and fully check a version-1 ``.lnc`` file; any defect raises BitstreamError."""
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f".lnc file is {len(data)} bytes, limit {MAX_FILE_BYTES}")
    view = memoryview(data)
    cur = _Cursor(view)
    header, version = _read_header(cur)
    if version != 1:
        raise BitstreamError(f"a version-{version} .lnc file is chunked: read it with ChunkReader")
    count = cur.varint("section count")
    if count > MAX_SECTIONS:
        raise BitstreamError(f"corrupted .lnc file: {count} sections, limit {MAX_SECTIONS}")
    table: dict[str, int] = {}
    for i in range(count):
        name = cur.name(MAX_SECTION_NAME_LEN, f"section {i} name")
        if name in table:
            raise BitstreamError(f"corrupted .lnc file: duplicate section name {name!r}")
        table[name] = cur.varint(f"section {name!r} length")
    sections = [(name, bytes(cur.take(size, f"section {name!r}"))) for name, size in table.items()]
    body_end = cur.pos
    (stored,) = struct.unpack("<I", cur.take(4, "CRC32"))
    if cur.left():
        raise BitstreamError(f"corrupted .lnc file: trailing garbage, {cur.left()} bytes after the CRC32")
    computed = zlib.crc32(view[:body_end])
    if stored != computed:
        raise BitstreamError(f"corrupted .lnc file: CRC32 is 0x{computed:08x}, file says 0x{stored:08x}")
    return Container(header, sections)


def read_file(path: str | os.PathLike[str]) -> Container:
    """Read and check the ``.lnc`` file at ``path``, refusing oversized files before reading."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise BitstreamError(f"{os.fspath(path)} is {size} bytes, limit {MAX_FILE_BYTES}")
        return read(f.read(MAX_FILE_BYTES + 1))


def output_target(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Where and how :func:`atomic_open` writes ``path``: ``(target, kind)``.

    ``kind`` is ``"file"`` for a new name or a regular file, replaced atomically at ``target``; a
    symlink (also a dangling one) is followed, so that the file it points to is written and the link
    stays a link. ``kind`` is ``"device"`` for a character device (``/dev/null``, a terminal) and
    ``"fifo"`` for a named pipe: those are written through in place at ``target == path``, never
    replaced. A directory or any other kind of file (block device, socket) is an :class:`LncError`.
    """
    import stat

    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return os.path.realpath(path), "file"  # a new file, or the missing target of a dangling link
    if stat.S_ISREG(st.st_mode):
        target = os.path.realpath(path)
        try:
            resolved = os.path.samestat(os.stat(target), st)
        except OSError:
            resolved = False
        if not resolved:  # e.g. a /proc/self/fd link to a deleted file
            raise LncError(f"cannot write {path}: cannot resolve the file it links to")
        return target, "file"
    if stat.S_ISCHR(st.st_mode):
        return path, "device"
    if stat.S_ISFIFO(st.st_mode):
        return path, "fifo"
    what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file, character device or FIFO"
    raise LncError(f"cannot write {path}: it is {what}")


def _open_through(path: str, kind: str) -> BinaryIO:
    """Open a character device or FIFO for writing in place. Opened non-blocking, so a FIFO that
    nobody reads is an error at once instead of a hang; then written to with blocking writes."""
    import errno

    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if kind == "fifo" and exc.errno == errno.ENXIO:
            raise LncError(f"cannot write {path}: it is a FIFO and nothing is reading it") from None
        raise
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb")


def _temporary(directory: str) -> tuple[int, str]:
    """A new hidden file in ``directory`` with a short name, so any legal target name works."""
    for _ in range(64):
        tmp = os.path.join(directory, f".lnc-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {directory}")


@contextmanager
def atomic_open(path: str | os.PathLike[str], force: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, so that it ends complete or absent, never partial.

    The bytes go to a temporary file ``.lnc-<8 hex>.tmp`` beside the target; when the block ends
    without an exception the file is fsynced and renamed over the target, otherwise removed. An
    existing ``path`` (also a special file or a dangling symlink) is kept (LncError) unless ``force``.
    A symlink is followed (its target is replaced, the link stays); a character device or a FIFO is
    written through in place, never replaced (what was written before a failure stays written; a FIFO
    nobody reads is an LncError); a directory or another special file is an LncError (see
    :func:`output_target`). Long outputs can be written piece by piece this way.
    """
    path = os.fspath(path)
    if not force and os.path.lexists(path):
        raise LncError(f"{path} exists; refusing to overwrite it without --force")
    target, kind = output_target(path)
    if kind != "file":
        with _open_through(target, kind) as f:
            yield f
            f.flush()
        return
    fd, tmp = _temporary(os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, force) as f:
        f.write(data)


def write_file(path: str | os.PathLike[str], container: Container, force: bool = False) -> int:
    """Serialise ``container`` and :func:`atomic_write` it to ``path``; return its size in bytes."""
    data = write(container)
    atomic_write(path, data, force)
    return len(data)
