"""The incremental range coder: RangeEncoder/RangeDecoder objects and encode_into/decode_from.

Its streams must be byte-identical to the one-shot calls (one call, or calls sharing tables), so
existing files keep their bytes, and it must fail cleanly: BitstreamError for bad data,
ValueError for bad arguments and for objects used after flush/finish.
"""
from __future__ import annotations

import numpy as np
import pytest

from lnc.entropy import coder, reference_coder
from lnc.entropy.errors import BitstreamError


def laplace_tables(levels: int, top: float, precision: int, tail: float = 1e-6):
    """CompressAI-layout tables (cdfs, cdf_lengths, offsets): integer-bin Laplace pmfs for
    log-spaced scales up to ``top``, tail mass as the escape."""
    rows = []
    for s in np.exp(np.linspace(np.log(0.2), np.log(top), levels)):
        c = max(1, int(np.ceil(-s * np.log(tail))))
        x = np.arange(-c, c + 2) - 0.5
        cdf = np.where(x < 0, 0.5 * np.exp(x / s), 1 - 0.5 * np.exp(-x / s))
        pmf = np.diff(cdf)
        rows.append(np.append(pmf, max(1 - pmf.sum(), 1e-12)))
    lengths = np.array([len(r) + 1 for r in rows], np.int32)
    cdfs = np.zeros((len(rows), lengths.max()), np.int32)
    for i, r in enumerate(rows):
        cdfs[i, : lengths[i]] = coder.pmf_to_quantized_cdf(r[None], precision)[0]
    return cdfs, lengths, (-((lengths - 3) // 2)).astype(np.int32)


TABLES_A = laplace_tables(32, 40.0, 16)  # precision 16
TABLES_B = laplace_tables(9, 6.0, 16, tail=1e-3)  # other tables, same precision
TABLES_C = laplace_tables(12, 10.0, 12)  # precision 12


def draw(rng, n: int, tables, escape_rate: float = 0.02):
    """Laplacian symbols for random tables, a fraction ``escape_rate`` beyond the table (escapes)."""
    _, lengths, offsets = tables
    indexes = rng.integers(0, len(lengths), n).astype(np.int32)
    half = (lengths[indexes] - 3) // 2
    symbols = np.round(rng.laplace(0, np.maximum(half, 1) / 6.0)).astype(np.int64)
    out = rng.random(n) < escape_rate
    symbols[out] = rng.choice([-1, 1], out.sum()) * (half[out] + rng.geometric(0.1, out.sum()))
    symbols[out & (rng.random(n) < 0.1)] = rng.integers(-(2**31), 2**31, dtype=np.int64)
    return symbols.astype(np.int32), indexes


def escapes(symbols, indexes, tables) -> int:
    _, lengths, offsets = tables
    value = symbols.astype(np.int64) - offsets[indexes]
    return int(np.sum((value < 0) | (value >= lengths[indexes] - 2)))


def merged(*table_sets):
    """One table set holding all of ``table_sets`` (same precision), and each set's index shift."""
    width = max(t[0].shape[1] for t in table_sets)
    cdfs = np.concatenate([np.pad(t[0], ((0, 0), (0, width - t[0].shape[1]))) for t in table_sets])
    shifts = np.cumsum([0] + [len(t[1]) for t in table_sets[:-1]])
    lengths, offsets = (np.concatenate([t[k] for t in table_sets]) for k in (1, 2))
    return (cdfs, lengths, offsets), shifts


def encode_passes(passes, encoder=None) -> bytes:
    """passes: (symbols, indexes, tables, precision) per call into one encoder."""
    enc = encoder or coder.RangeEncoder()
    for s, i, tables, p in passes:
        enc.encode_with_indexes(s, i, *tables, precision=p)
    return enc.flush()


def decode_passes(data: bytes, passes) -> None:
    dec = coder.RangeDecoder(data)
    for s, i, tables, p in passes:
        np.testing.assert_array_equal(dec.decode_with_indexes(i, *tables, precision=p), s)
    dec.finish()


@pytest.mark.parametrize("n", [0, 1, 7, 20000])
def test_one_call_equals_one_shot(n):
    symbols, indexes = draw(np.random.default_rng(n), n, TABLES_A)
    one_shot = coder.encode_with_indexes(symbols, indexes, *TABLES_A)
    enc = coder.RangeEncoder()
    enc.encode_with_indexes(symbols, indexes, *TABLES_A)
    assert enc.flush() == one_shot
    if n == 20000:
        assert escapes(symbols, indexes, TABLES_A) > 200
        assert reference_coder.encode_with_indexes(symbols, indexes, *TABLES_A) == one_shot
        shaped = symbols[: 4 * 5 * 7].reshape(4, 5, 7), indexes[: 4 * 5 * 7].reshape(4, 5, 7)
        enc = coder.RangeEncoder()
        enc.encode_with_indexes(*shaped, *TABLES_A)
        data = enc.flush()
        assert data == coder.encode_with_indexes(*shaped, *TABLES_A)
        dec = coder.RangeDecoder(data)
        out = dec.decode_with_indexes(shaped[1], *TABLES_A)
        assert out.dtype == np.int32 and out.shape == (4, 5, 7)
        np.testing.assert_array_equal(out, shaped[0])
        dec.finish()
    dec = coder.RangeDecoder(one_shot)
    np.testing.assert_array_equal(dec.decode_with_indexes(indexes, *TABLES_A), symbols)
    dec.finish()
    assert coder.RangeEncoder().flush() == b""  # no call at all: the empty stream


def test_calls_with_different_tables_round_trip():
    rng = np.random.default_rng(1)
    sets = [(TABLES_A, 16), (TABLES_B, 16), (TABLES_C, 12)]
    passes = []
    for k in range(12):
        tables, p = sets[k % 3]
        passes.append((*draw(rng, int(rng.integers(0, 3000)), tables), tables, p))
    data = encode_passes(passes)
    decode_passes(data, passes)
    # Calls at one precision equal the one-shot encode of their concatenation over merged tables.
    ab = [q for q in passes if q[3] == 16]
    tables, shifts = merged(TABLES_A, TABLES_B)
    symbols = np.concatenate([s for s, *_ in ab])
    indexes = np.concatenate([i + shifts[0 if t is TABLES_A else 1] for _, i, t, _ in ab])
    assert encode_passes(ab) == coder.encode_with_indexes(symbols, indexes, *tables)


def test_calls_with_same_tables_equal_concatenation_and_save_bytes():
    rng = np.random.default_rng(2)
    symbols, indexes = draw(rng, 20 * 500, TABLES_A)
    one_shot = coder.encode_with_indexes(symbols, indexes, *TABLES_A)
    cuts = np.sort(rng.integers(0, len(symbols), 19))
    passes = [(s, i, TABLES_A, 16) for s, i in zip(np.split(symbols, cuts), np.split(indexes, cuts))]
    data = encode_passes(passes)
    assert data == one_shot
    decode_passes(data, passes)
    dec = coder.RangeDecoder(data)  # any other split into calls decodes the same stream
    halves = np.array_split(indexes, 2)
    decoded = [dec.decode_with_indexes(h, *TABLES_A) for h in halves]
    dec.finish()
    np.testing.assert_array_equal(np.concatenate(decoded), symbols)
    separate = sum(len(coder.encode_with_indexes(s, i, *TABLES_A)) for s, i, *_ in passes)
    assert len(data) < separate  # 19 flushes fewer (2 to 10 bytes saved over 200 seeds)


@pytest.mark.parametrize("threads", [1, 4])
def test_encode_into_decode_from_equal_sequential_objects(threads):
    rng = np.random.default_rng(3)
    rounds = []  # per round: tables, precision and one (symbols, indexes) per stream
    for tables, p in [(TABLES_A, 16), (TABLES_C, 12), (TABLES_B, 16)]:
        rounds.append((tables, p, [draw(rng, int(n), tables) for n in rng.integers(0, 4000, 4)]))
    sequential = []
    for n in range(4):
        sequential.append(encode_passes([(*streams[n], tables, p) for tables, p, streams in rounds]))
    encoders = [coder.RangeEncoder() for _ in range(4)]
    for tables, p, streams in rounds:
        coder.encode_into(encoders, streams, *tables, precision=p, threads=threads)
    assert [e.flush() for e in encoders] == sequential
    decoders = [coder.RangeDecoder(d) for d in sequential]
    for tables, p, streams in rounds:
        outs = coder.decode_from(decoders, [i for _, i in streams], *tables, precision=p, threads=threads)
        for (s, i), out in zip(streams, outs):
            assert out.dtype == np.int32 and out.shape == i.shape
            np.testing.assert_array_equal(out, s)
    for d in decoders:
        d.finish()
    assert coder.decode_from([], [], *TABLES_A) == [] and coder.encode_into([], [], *TABLES_A) is None


def two_passes(seed: int = 4):
    rng = np.random.default_rng(seed)
    passes = [
        (*draw(rng, 3000, TABLES_A, 0.05), TABLES_A, 16),
        (*draw(rng, 2000, TABLES_C, 0.05), TABLES_C, 12),
    ]
    return passes, encode_passes(passes)


def decode_all(data: bytes, passes) -> bool:
    """True when decoding raised BitstreamError (from a call or finish); else arrays of the right shape."""
    dec = coder.RangeDecoder(data)
    try:
        for _, i, tables, p in passes:
            assert dec.decode_with_indexes(i, *tables, precision=p).shape == i.shape
        dec.finish()
    except BitstreamError:
        return True
    return False


def test_truncated_corrupted_and_trailing_data_raise_bitstream_error():
    passes, data = two_passes()
    for cut in (5, 16, len(data) // 2, len(data)):
        assert decode_all(data[:-cut], passes)
    # Trailing bytes past the decoder's 4-byte zero lookahead: the symbols decode, finish raises.
    dec = coder.RangeDecoder(data + bytes(8))
    for s, i, tables, p in passes:
        np.testing.assert_array_equal(dec.decode_with_indexes(i, *tables, precision=p), s)
    with pytest.raises(BitstreamError, match="left"):
        dec.finish()
    assert decode_all(b"\xff" * 64, [(None, np.zeros(10, np.int32), TABLES_A, 16)])  # endless escape
    rng = np.random.default_rng(5)
    for _ in range(200):  # corrupted data never crashes: arrays or BitstreamError
        flipped = bytearray(data)
        flipped[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        decode_all(bytes(flipped), passes)
        decode_all(rng.bytes(int(rng.integers(0, 64))), passes)


def test_decoder_keeps_its_data_and_survives_failed_calls():
    passes, data = two_passes(6)
    dec = coder.RangeDecoder(bytearray(data))  # the decoder keeps the buffer alive
    (s0, i0, t0, p0), (s1, i1, t1, p1) = passes
    np.testing.assert_array_equal(dec.decode_with_indexes(i0, *t0, precision=p0), s0)
    bad = i1.copy()
    bad[-1] = len(t1[1])
    with pytest.raises(ValueError):  # a failing call leaves the decoder where it was
        dec.decode_with_indexes(bad, *t1, precision=p1)
    np.testing.assert_array_equal(dec.decode_with_indexes(i1, *t1, precision=p1), s1)
    dec.finish()
    with pytest.raises(ValueError):
        dec.decode_with_indexes(i1, *t1, precision=p1)


def test_failed_encode_calls_leave_the_stream_unchanged():
    """A call that fails part-way (bad index, zero-frequency symbol) is undone, carries included."""
    rng = np.random.default_rng(7)
    cdfs, lengths, offsets = TABLES_A
    zero = cdfs.copy()
    zero[:, 1] = 0  # symbol 0 of every table has zero frequency
    for trial in range(300):
        before = draw(rng, int(rng.integers(1, 50)), TABLES_A, 0.3)
        after = draw(rng, int(rng.integers(0, 50)), TABLES_A, 0.3)
        enc = coder.RangeEncoder()
        enc.encode_with_indexes(*before, *TABLES_A)
        s, i = draw(rng, int(rng.integers(1, 6)), TABLES_A, 0.5)
        if trial % 2:
            i[-1] = len(lengths)
            failing = (s, i, *TABLES_A)
        else:
            s[-1] = offsets[i[-1]]
            failing = (s, i, zero, lengths, offsets)
        with pytest.raises(ValueError):
            enc.encode_with_indexes(*failing)
        enc.encode_with_indexes(*after, *TABLES_A)
        both = [np.concatenate(x) for x in zip(before, after)]
        assert enc.flush() == coder.encode_with_indexes(*both, *TABLES_A)


def test_encode_into_is_all_or_nothing():
    rng = np.random.default_rng(8)
    streams = [draw(rng, 1000, TABLES_A) for _ in range(4)]
    bad = [(s, i.copy()) for s, i in streams]
    bad[2][1][500] = -1
    encoders = [coder.RangeEncoder() for _ in range(4)]
    coder.encode_into(encoders, streams, *TABLES_A, threads=2)
    with pytest.raises(ValueError):
        coder.encode_into(encoders, bad, *TABLES_A, threads=2)
    flushed = coder.RangeEncoder()
    flushed.flush()
    with pytest.raises(ValueError):
        coder.encode_into(encoders[:3] + [flushed], streams, *TABLES_A)
    assert [e.flush() for e in encoders] == coder.encode_streams(streams, *TABLES_A)


def test_misuse_raises_value_error():
    s, i = draw(np.random.default_rng(9), 100, TABLES_A)
    enc = coder.RangeEncoder()
    with pytest.raises(ValueError):  # shapes differ
        enc.encode_with_indexes(s, i[:-1], *TABLES_A)
    with pytest.raises(ValueError):  # index out of range
        enc.encode_with_indexes(s, np.full_like(i, len(TABLES_A[1])), *TABLES_A)
    with pytest.raises(ValueError):  # float symbols
        enc.encode_with_indexes(s.astype(float), i, *TABLES_A)
    with pytest.raises(ValueError):  # precision does not match the tables
        enc.encode_with_indexes(s, i, *TABLES_A, precision=12)
    enc.encode_with_indexes(s, i, *TABLES_A)
    data = enc.flush()
    assert data == coder.encode_with_indexes(s, i, *TABLES_A)
    with pytest.raises(ValueError, match="flushed"):
        enc.encode_with_indexes(s, i, *TABLES_A)
    with pytest.raises(ValueError, match="flushed"):
        enc.flush()
    with pytest.raises(ValueError):
        coder.RangeDecoder("not bytes")
    dec = coder.RangeDecoder(data)
    with pytest.raises(ValueError):
        dec.decode_with_indexes(i, TABLES_A[0][0], *TABLES_A[1:])  # 1-D cdfs
    with pytest.raises(ValueError):
        dec.decode_with_indexes(i.astype(float), *TABLES_A)
    np.testing.assert_array_equal(dec.decode_with_indexes(i, *TABLES_A), s)
    dec.finish()
    with pytest.raises(ValueError, match="finished"):
        dec.decode_with_indexes(i, *TABLES_A)
    encs = [coder.RangeEncoder(), coder.RangeEncoder()]
    for encoders, streams in [
        (encs, [(s, i)]),  # counts differ
        ([encs[0], encs[0]], [(s, i), (s, i)]),  # one encoder twice
        ([encs[0], "x"], [(s, i), (s, i)]),
        (encs, [(s, i), (s,)]),
        (encs, [(s, i), (s, i[:-1])]),
    ]:
        with pytest.raises(ValueError):
            coder.encode_into(encoders, streams, *TABLES_A)
    with pytest.raises(ValueError):
        coder.encode_into(encs, [(s, i), (s, i)], *TABLES_A, threads=0)
    decs = [coder.RangeDecoder(data), coder.RangeDecoder(data)]
    for decoders, indexes_list in [(decs, [i]), ([decs[0], decs[0]], [i, i]), ([decs[0], None], [i, i])]:
        with pytest.raises(ValueError):
            coder.decode_from(decoders, indexes_list, *TABLES_A)
    outs = coder.decode_from(decs, [i, i], *TABLES_A, threads=2)  # the failures changed nothing
    for out in outs:
        np.testing.assert_array_equal(out, s)
