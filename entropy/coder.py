"""Entropy coding of integer symbols with indexed CDF tables, shaped like ``compressai.ans``.

The semantics are CompressAI's (Bégaint et al., 2020, arXiv:2011.03029): table ``i`` of
``cdfs`` has ``cdf_lengths[i]`` valid entries and codes the values ``0 .. cdf_lengths[i] - 3``;
its last symbol is an escape followed by a bypass code, so any int32 symbol round-trips. The
coder is a range coder (format: ``docs/range_coder.md``) in the C++ extension
``lnc.entropy._range_coder``; this module only checks and converts its inputs. Arrays may be
numpy arrays, torch tensors or sequences; the GIL is released while coding.

Besides the one-shot calls, :class:`RangeEncoder` and :class:`RangeDecoder` code one stream over
several calls, each with its own tables (like CompressAI's ``BufferedRansEncoder`` /
``RansDecoder``): passes that condition on earlier ones share one flush. Both keep a checksum of
the symbols and table indexes they coded, so a decoder can tell when it read a stream with other
tables than the encoder wrote it with (a desynchronised probability model) or read other symbols.
"""
from __future__ import annotations

import struct
import sys
import zlib
from typing import Any, Sequence

import numpy as np

from lnc.entropy import _range_coder

__all__ = [
    "MAX_PRECISION",
    "RangeDecoder",
    "RangeEncoder",
    "decode_from",
    "decode_streams",
    "decode_with_indexes",
    "encode_into",
    "encode_streams",
    "encode_with_indexes",
    "hardware_threads",
    "pmf_to_quantized_cdf",
]

MAX_PRECISION: int = _range_coder.MAX_PRECISION

_INT32 = np.iinfo(np.int32)


def _to_numpy(x: Any, name: str) -> np.ndarray:
    torch = sys.modules.get("torch")  # a tensor implies torch is already imported
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().contiguous().numpy()
    try:
        return np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name}: {exc}") from None


def _int32(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    """``x`` as a C-contiguous int32 array; other integer dtypes must fit in int32."""
    a = _to_numpy(x, name)
    if a.size == 0 and a.dtype.kind == "f":  # np.asarray([]) is float64
        a = a.astype(np.int32)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype != np.int32:
        if a.size and (a.min() < _INT32.min or a.max() > _INT32.max):
            raise ValueError(f"{name} has values outside the int32 range")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)


def _tables(cdfs: Any, cdf_lengths: Any, offsets: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        _int32(cdfs, "cdfs", 2),
        _int32(cdf_lengths, "cdf_lengths", 1),
        _int32(offsets, "offsets", 1),
    )


def _precision(precision: int) -> int:
    if isinstance(precision, bool) or not isinstance(precision, (int, np.integer)):
        raise ValueError(f"precision must be an int, got {precision!r}")
    return int(precision)


def hardware_threads() -> int:
    """Threads the hardware runs at once: the default cap of ``threads`` in the stream calls."""
    return _range_coder.hardware_threads()


def _threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
    return int(threads)


def _symbols_and_indexes(symbols: Any, indexes: Any) -> tuple[np.ndarray, np.ndarray]:
    s, i = _int32(symbols, "symbols"), _int32(indexes, "indexes")
    if s.shape != i.shape:
        raise ValueError(f"symbols {s.shape} and indexes {i.shape} differ in shape")
    return s.reshape(-1), i.reshape(-1)


def _pairs(streams: Sequence[tuple[Any, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for n, stream in enumerate(streams):
        if len(stream) != 2:
            raise ValueError(f"streams[{n}] must be a (symbols, indexes) pair")
        pairs.append(_symbols_and_indexes(*stream))
    return pairs


def _data(data: Any) -> np.ndarray:
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:  # not bytes-like
        raise ValueError(f"data must be bytes-like, got {type(data).__name__}") from exc


def encode_with_indexes(
    symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any, precision: int = 16
) -> bytes:
    """Code ``symbols[k]`` with table ``indexes[k]`` (same shapes, read in C order) into bytes."""
    s, i = _symbols_and_indexes(symbols, indexes)
    return _range_coder.encode(s, i, *_tables(cdfs, cdf_lengths, offsets), _precision(precision))


def decode_with_indexes(
    data: bytes, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any, precision: int = 16
) -> np.ndarray:
    """Inverse of :func:`encode_with_indexes`: int32 symbols shaped like ``indexes``.

    Raises ``BitstreamError`` when ``data`` is evidently truncated, too long or corrupted.
    """
    i = _int32(indexes, "indexes")
    out = _range_coder.decode(
        _data(data), i.reshape(-1), *_tables(cdfs, cdf_lengths, offsets), _precision(precision)
    )
    return out.reshape(i.shape)


def encode_streams(
    streams: Sequence[tuple[Any, Any]],
    cdfs: Any,
    cdf_lengths: Any,
    offsets: Any,
    precision: int = 16,
    threads: int | None = None,
) -> list[bytes]:
    """Code independent ``(symbols, indexes)`` streams in parallel, one byte string each.

    Equal to ``[encode_with_indexes(s, i, ...) for s, i in streams]``; ``threads`` defaults
    to ``min(len(streams), hardware threads)``.
    """
    return _range_coder.encode_streams(
        _pairs(streams), *_tables(cdfs, cdf_lengths, offsets), _precision(precision), _threads(threads)
    )


def decode_streams(
    datas: Sequence[bytes],
    indexes_list: Sequence[Any],
    cdfs: Any,
    cdf_lengths: Any,
    offsets: Any,
    precision: int = 16,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Decode independent streams in parallel; inverse of :func:`encode_streams`."""
    sources = [_data(d) for d in datas]
    return _decode_each(_range_coder.decode_streams, sources, "streams", indexes_list,
                        cdfs, cdf_lengths, offsets, precision, threads)


def _decode_each(
    run: Any, sources: list[Any], what: str, indexes_list: Sequence[Any],
    cdfs: Any, cdf_lengths: Any, offsets: Any, precision: int, threads: int | None,
) -> list[np.ndarray]:
    """Checks and conversions shared by the parallel decoders: one source (bytes or decoder
    object) per index array, each result shaped like its indexes."""
    if len(sources) != len(indexes_list):
        raise ValueError(f"got {len(sources)} {what} but {len(indexes_list)} index arrays")
    idx = [_int32(x, f"indexes_list[{n}]") for n, x in enumerate(indexes_list)]
    outs = run(sources, [x.reshape(-1) for x in idx], *_tables(cdfs, cdf_lengths, offsets),
               _precision(precision), _threads(threads))
    return [o.reshape(x.shape) for o, x in zip(outs, idx)]


class _Checksummed:
    """The running checksum of every symbol and table index an encoder or decoder coded."""

    __slots__ = ("_impl", "_sums")

    def __init__(self) -> None:
        self._sums = (0, 0)

    def _digest(self, symbols: np.ndarray, indexes: np.ndarray) -> None:
        self._sums = (zlib.crc32(symbols, self._sums[0]), zlib.crc32(indexes, self._sums[1]))

    @property
    def checksum(self) -> int:
        """CRC-32 of the symbols and of the indexes coded so far (int32, C order); it depends on
        the values alone, not on how they were split into calls."""
        return zlib.crc32(struct.pack("<II", *self._sums))


class RangeEncoder(_Checksummed):
    """One range-coded stream built by several :meth:`encode_with_indexes` calls, then :meth:`flush`.

    Each call may bring its own tables, so passes that condition on earlier ones (checkerboard
    halves, slices, the frames of a GOP) go into one stream and pay for one flush, not one per
    pass. One call then ``flush()`` gives exactly the bytes of :func:`encode_with_indexes`; calls
    with the same tables give those of one call on their concatenation. A call that raises
    leaves the stream as it was. Safe to share between threads (a second concurrent call on the
    same object raises ``RuntimeError``).
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        self._impl = _range_coder.StreamEncoder()

    def encode_with_indexes(
        self, symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any, precision: int = 16
    ) -> None:
        """Append ``symbols[k]`` coded with table ``indexes[k]`` (same shapes, read in C order)."""
        s, i = _symbols_and_indexes(symbols, indexes)
        self._impl.encode(s, i, *_tables(cdfs, cdf_lengths, offsets), _precision(precision))
        self._digest(s, i)

    def flush(self) -> bytes:
        """End the stream and return its bytes; the encoder takes no further calls (``ValueError``)."""
        return self._impl.flush()


class RangeDecoder(_Checksummed):
    """Reads a stream of :class:`RangeEncoder` back, one :meth:`decode_with_indexes` per encoder call.

    The calls must repeat the encoder's: same order, same indexes and tables per call (any split
    into calls with the same tables works too, as coding does not depend on it). It keeps a
    reference to ``data``. Malformed data raises ``BitstreamError`` from the call that meets it
    (the decoder then stays as before that call) or from :meth:`finish`. Its :attr:`checksum`
    equals the encoder's when it read the same symbols with the same indexes.
    """

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._impl = _range_coder.StreamDecoder(_data(data))

    def decode_with_indexes(
        self, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any, precision: int = 16
    ) -> np.ndarray:
        """The next ``indexes.size`` symbols as int32, shaped like ``indexes``."""
        i = _int32(indexes, "indexes")
        out = self._impl.decode(i.reshape(-1), *_tables(cdfs, cdf_lengths, offsets), _precision(precision))
        self._digest(out, i)
        return out.reshape(i.shape)

    def finish(self) -> None:
        """End decoding; ``BitstreamError`` if bytes are left unread, as at the end of
        :func:`decode_with_indexes`. The decoder takes no further calls (``ValueError``)."""
        self._impl.finish()


def _impls(objects: Sequence[Any], kind: type, name: str) -> list[Any]:
    for n, obj in enumerate(objects):
        if not isinstance(obj, kind):
            raise ValueError(f"{name}[{n}] must be a {kind.__name__}, got {type(obj).__name__}")
    return [obj._impl for obj in objects]


def encode_into(
    encoders: Sequence[RangeEncoder],
    streams: Sequence[tuple[Any, Any]],
    cdfs: Any,
    cdf_lengths: Any,
    offsets: Any,
    precision: int = 16,
    threads: int | None = None,
) -> None:
    """Append ``streams[n] = (symbols, indexes)`` to ``encoders[n]`` for every n, in parallel.

    For independent streams (batch items, tiles) that each span several passes. Equal to
    ``encoders[n].encode_with_indexes(*streams[n], ...)`` for each n; all or nothing: if one
    stream fails, no encoder keeps any of this call. ``threads`` as in :func:`encode_streams`.
    """
    impls = _impls(encoders, RangeEncoder, "encoders")
    if len(impls) != len(streams):
        raise ValueError(f"got {len(impls)} encoders but {len(streams)} streams")
    pairs = _pairs(streams)
    _range_coder.encode_into(
        impls, pairs, *_tables(cdfs, cdf_lengths, offsets), _precision(precision), _threads(threads)
    )
    for encoder, (s, i) in zip(encoders, pairs):
        encoder._digest(s, i)


def decode_from(
    decoders: Sequence[RangeDecoder],
    indexes_list: Sequence[Any],
    cdfs: Any,
    cdf_lengths: Any,
    offsets: Any,
    precision: int = 16,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Decode ``indexes_list[n]`` from ``decoders[n]`` for every n in parallel; inverse of
    :func:`encode_into`, all or nothing like it."""
    impls = _impls(decoders, RangeDecoder, "decoders")
    idx = [_int32(x, f"indexes_list[{n}]") for n, x in enumerate(indexes_list)]
    outs = _decode_each(_range_coder.decode_from, impls, "decoders", idx, cdfs, cdf_lengths, offsets, precision, threads)
    for decoder, out, indexes in zip(decoders, outs, idx):
        decoder._digest(out, indexes)
    return outs


def pmf_to_quantized_cdf(pmf: Any, precision: int = 16, portable: bool = False) -> np.ndarray:
    """Quantise each row of ``pmf`` (N, L) to an int32 CDF (N, L + 1) summing to ``1 << precision``.

    Every symbol keeps a frequency >= 1 and the frequencies minimise the cross-entropy
    ``-sum p log q`` of the row's normalised pmf (rounding, then greedy unit moves as in
    tensorflow-compression, then unit exchanges until none helps), deterministically. With
    ``portable`` the frequencies are ``1 + floor(p (2^precision - L))`` plus the remainder on the most
    probable symbol: a little less tight, but made of correctly rounded operations alone, so that a
    decoder on any machine rebuilds bit-identical tables from the same pmf (tables computed from
    decoded data, per symbol), and about as fast as reading the row.
    """
    p = _to_numpy(pmf, "pmf")
    if p.dtype.kind not in "fiu":
        raise ValueError(f"pmf must be real-valued, got dtype {p.dtype}")
    if p.ndim != 2:
        raise ValueError(f"pmf must be 2-D (rows, symbols), got shape {p.shape}")
    return _range_coder.pmf_to_quantized_cdf(
        np.ascontiguousarray(p, dtype=np.float64), _precision(precision), bool(portable)
    )


def table_indexes(scales: Any, table: Any, means: Any = None, offsets: int = 0) -> np.ndarray:
    """The CDF table index of each of ``scales`` (float32, any shape, flattened) for a location-scale
    model with the increasing scale ``table``: the first entry not below the scale (the last one
    beyond it, and for NaN); with ``offsets = K > 0``, times ``K`` plus the bin of each of ``means``
    (same shape) by its offset from the nearest integer (:class:`~lnc.entropy.gaussian.GaussianConditional`).
    One compiled pass, several times faster than the torch expressions it equals."""
    f32 = [np.ascontiguousarray(_to_numpy(a, name), dtype=np.float32).reshape(-1)
           for a, name in ((scales, "scales"), (table, "table"))]
    mean_array = None
    if means is not None:
        mean_array = np.ascontiguousarray(_to_numpy(means, "means"), dtype=np.float32).reshape(-1)
    return _range_coder.table_indexes(f32[0], mean_array, f32[1], int(offsets))
