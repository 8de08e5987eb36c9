"""The compiled range coder: exact round trips, code length, the reference format, bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from compressai._CXX import pmf_to_quantized_cdf as compressai_pmf_to_quantized_cdf
from scipy import stats

from lnc.entropy import coder, reference_coder
from lnc.entropy.errors import BitstreamError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
TAIL_MASS = 1e-9
DISTRIBUTIONS = {"gaussian": stats.norm, "laplace": stats.laplace}


def scale_table(top: float = 64.0, levels: int = 64) -> np.ndarray:
    """Log-spaced scales from 0.11 as in CompressAI's ``get_scale_table``."""
    return np.exp(np.linspace(np.log(0.11), np.log(top), levels))


def pmfs(kind: str, scales: np.ndarray) -> list[np.ndarray]:
    """Per scale: the integer-bin pmf over [-c, c] with the two-sided tail mass appended."""
    dist = DISTRIBUTIONS[kind]
    rows = []
    for s in scales:
        c = int(np.ceil(-dist.ppf(TAIL_MASS / 2, scale=s)))
        x = np.arange(-c, c + 1)
        pmf = dist.cdf(x + 0.5, scale=s) - dist.cdf(x - 0.5, scale=s)
        rows.append(np.append(pmf, 2 * dist.cdf(-c - 0.5, scale=s)))
    return rows


def make_tables(kind: str, precision: int = 16, top: float = 64.0):
    """CompressAI-layout tables (cdfs, cdf_lengths, offsets) quantised by lnc."""
    rows = pmfs(kind, scale_table(top))
    lengths = np.array([len(r) + 1 for r in rows], dtype=np.int32)
    cdfs = np.zeros((len(rows), lengths.max()), dtype=np.int32)
    for i, r in enumerate(rows):
        cdfs[i, : lengths[i]] = coder.pmf_to_quantized_cdf(r[None], precision)[0]
    offsets = -((lengths - 3) // 2)
    return cdfs, lengths, offsets.astype(np.int32)


def draw_latents(rng, n: int, kind: str, tables, escape_rate: float = 0.01, top: float = 64.0):
    """Symbols ``round(y) - round(mu)`` of latents y ~ dist(mu, scale) with non-zero means,
    plus a fraction ``escape_rate`` pushed just past their table's edge (escapes)."""
    _, lengths, offsets = tables
    scales = scale_table(top)
    indexes = rng.integers(0, len(lengths), n).astype(np.int32)
    mu = rng.uniform(-10, 10, n)
    s = scales[indexes]
    noise = rng.normal(0, s) if kind == "gaussian" else rng.laplace(0, s)
    symbols = np.round(mu + noise) - np.round(mu)
    out = rng.random(n) < escape_rate
    edge = -offsets[indexes[out]].astype(np.int64)
    sign = rng.choice([-1, 1], out.sum())
    symbols[out] = sign * (edge + rng.geometric(0.2, out.sum()))
    return symbols.astype(np.int32), indexes


def ideal_bits(symbols, indexes, tables, precision: int = 16) -> float:
    """-sum log2 p of the coded symbols under the integer CDFs, plus the gamma bypass bits."""
    cdfs, lengths, offsets = tables
    value = symbols.astype(np.int64) - offsets[indexes]
    max_value = lengths[indexes].astype(np.int64) - 2
    escape = (value < 0) | (value >= max_value)
    s = np.where(escape, max_value, value)
    freq = cdfs[indexes, s + 1] - cdfs[indexes, s]
    raw = np.where(value < 0, -2 * value - 1, 2 * (value - max_value))[escape]
    gamma = 2 * np.floor(np.log2(raw + 1.0)) + 1
    return float(np.sum(precision - np.log2(freq)) + gamma.sum())


@pytest.fixture(scope="module", params=["gaussian", "laplace"])
def kind_tables(request):
    return request.param, make_tables(request.param)


def round_trip(symbols, indexes, tables, precision: int = 16) -> bytes:
    data = coder.encode_with_indexes(symbols, indexes, *tables, precision=precision)
    decoded = coder.decode_with_indexes(data, indexes, *tables, precision=precision)
    assert decoded.dtype == np.int32 and decoded.shape == np.shape(indexes)
    np.testing.assert_array_equal(decoded, symbols)
    return data


def test_round_trip_like_latents(kind_tables):
    kind, tables = kind_tables
    symbols, indexes = draw_latents(np.random.default_rng(1), 10**5, kind, tables)
    value = symbols.astype(np.int64) - tables[2][indexes]
    escapes = np.mean((value < 0) | (value >= tables[1][indexes] - 2))
    assert 0.008 < escapes < 0.012
    round_trip(symbols, indexes, tables)


@pytest.mark.slow
def test_round_trip_like_latents_large(kind_tables):
    kind, tables = kind_tables
    symbols, indexes = draw_latents(np.random.default_rng(2), 10**7, kind, tables)
    round_trip(symbols, indexes, tables)


def test_any_int32_round_trips():
    """Extremes of the symbol and the offset: escapes span the full int64 difference."""
    cdfs, lengths, _ = make_tables("gaussian", top=4.0)
    for offset in (INT32_MIN, -5, 0, 7, INT32_MAX):
        offsets = np.full(len(lengths), offset, dtype=np.int32)
        symbols = np.array([INT32_MIN, INT32_MAX, 0, -1, 1, offset, INT32_MIN + 1, INT32_MAX - 1] * 8, np.int32)
        indexes = np.arange(len(symbols), dtype=np.int32) % len(lengths)
        data = round_trip(symbols, indexes, (cdfs, lengths, offsets))
        assert reference_coder.encode_with_indexes(symbols, indexes, cdfs, lengths, offsets) == data


def test_code_length_near_ideal(kind_tables):
    kind, tables = kind_tables
    symbols, indexes = draw_latents(np.random.default_rng(3), 10**6, kind, tables)
    data = coder.encode_with_indexes(symbols, indexes, *tables)
    ideal = ideal_bits(symbols, indexes, tables)
    assert ideal - 32 <= 8 * len(data) <= 1.005 * ideal


@pytest.mark.parametrize("precision, top", [(16, 64.0), (14, 64.0), (11, 64.0), (9, 12.0)])
def test_bytes_equal_reference(precision, top):
    tables = make_tables("gaussian", precision, top)
    symbols, indexes = draw_latents(np.random.default_rng(precision), 3000, "gaussian", tables, 0.03, top)
    symbols[:4] = [INT32_MIN, INT32_MAX, 10**6, -(10**6)]
    data = coder.encode_with_indexes(symbols, indexes, *tables, precision=precision)
    assert reference_coder.encode_with_indexes(symbols, indexes, *tables, precision=precision) == data
    ref = reference_coder.decode_with_indexes(data, indexes, *tables, precision=precision)
    np.testing.assert_array_equal(ref, symbols)


@pytest.mark.parametrize("precision", [1, 2, 3, 5])
def test_tiny_precisions_equal_reference(precision):
    """Random tables down to one regular symbol (or none: escape only), some zero frequencies."""
    rng = np.random.default_rng(precision)
    total = 1 << precision
    n_tables, width = 6, total + 1
    cdfs = np.zeros((n_tables, width), np.int32)
    lengths = rng.integers(2, width + 1, n_tables).astype(np.int32)
    for i, n in enumerate(lengths):
        inner = np.sort(rng.integers(0, total, n - 2))  # the escape keeps a non-zero frequency
        cdfs[i, :n] = np.concatenate([[0], inner, [total]])
    offsets = rng.integers(-3, 3, n_tables).astype(np.int32)
    indexes = rng.integers(0, n_tables, 2000).astype(np.int32)
    freq = np.diff(cdfs, axis=1)
    symbols = rng.integers(-40, 40, len(indexes)).astype(np.int32)
    value = symbols - offsets[indexes]
    regular = (value >= 0) & (value < lengths[indexes] - 2)
    zero = regular & (freq[indexes, np.clip(value, 0, width - 2)] == 0)
    symbols[zero] = offsets[indexes[zero]] - 1  # codable as an escape instead
    data = coder.encode_with_indexes(symbols, indexes, cdfs, lengths, offsets, precision)
    assert reference_coder.encode_with_indexes(symbols, indexes, cdfs, lengths, offsets, precision) == data
    round_trip(symbols, indexes, (cdfs, lengths, offsets), precision)


def test_streams_equal_single_stream():
    tables = make_tables("gaussian")
    rng = np.random.default_rng(4)
    streams = [draw_latents(rng, n, "gaussian", tables) for n in (5000, 0, 1, 12345, 777)]
    single = [coder.encode_with_indexes(s, i, *tables) for s, i in streams]
    for threads in (None, 1, 2, 3, 8):
        assert coder.encode_streams(streams, *tables, threads=threads) == single
        decoded = coder.decode_streams(single, [i for _, i in streams], *tables, threads=threads)
        for (s, _), d in zip(streams, decoded):
            np.testing.assert_array_equal(d, s)
    assert coder.encode_streams([], *tables) == [] and coder.decode_streams([], [], *tables) == []


def test_shapes_and_empty_input():
    tables = make_tables("gaussian", top=4.0)
    symbols, indexes = draw_latents(np.random.default_rng(5), 6 * 35, "gaussian", tables, top=4.0)
    flat = coder.encode_with_indexes(symbols, indexes, *tables)
    assert coder.encode_with_indexes(symbols.reshape(6, 5, 7), indexes.reshape(6, 5, 7), *tables) == flat
    assert coder.decode_with_indexes(flat, indexes.reshape(6, 35), *tables).shape == (6, 35)
    empty = np.zeros(0, np.int32)
    assert coder.encode_with_indexes(empty, empty, *tables) == b""
    assert coder.decode_with_indexes(b"", empty, *tables).shape == (0,)


def test_torch_and_compressai_tables():
    """CompressAI's own table buffers (torch int32) and tensor symbols are taken as they are."""
    from compressai.entropy_models import GaussianConditional
    from compressai.models.base import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    tables = (gc._quantized_cdf, gc._cdf_length, gc._offset)
    gen = torch.Generator().manual_seed(6)
    scale = torch.exp(torch.empty(2, 8, 16, 16).uniform_(np.log(0.11), np.log(64), generator=gen))
    y = torch.randn(scale.shape, generator=gen) * scale
    symbols = gc.quantize(y, "symbols")
    indexes = gc.build_indexes(scale)
    data = coder.encode_with_indexes(symbols, indexes, *tables)
    np_tables = tuple(t.numpy() for t in tables)
    assert data == coder.encode_with_indexes(symbols.numpy(), indexes.numpy(), *np_tables)
    strided = symbols.transpose(1, 2)  # non-contiguous views are read in their logical order
    assert coder.encode_with_indexes(strided, indexes.transpose(1, 2), *tables) == coder.encode_with_indexes(
        strided.contiguous(), indexes.transpose(1, 2).contiguous(), *tables
    )
    decoded = coder.decode_with_indexes(data, indexes, *tables)
    np.testing.assert_array_equal(decoded, symbols.numpy())
    wide = coder.encode_with_indexes(symbols.long(), indexes.long(), *tables)  # int64 within range
    assert wide == data


def _valid():
    cdfs = np.array([[0, 100, 65000, 65536, 0], [0, 30000, 65536, 0, 0]], np.int32)
    return dict(
        symbols=np.array([0, 1, -3], np.int32),
        indexes=np.array([0, 1, 0], np.int32),
        cdfs=cdfs,
        cdf_lengths=np.array([4, 3], np.int32),
        offsets=np.array([-1, 0], np.int32),
    )


@pytest.mark.parametrize(
    "change",
    [
        dict(symbols=np.array([0.0, 1.0, 2.0])),
        dict(symbols=np.array([0, 1], np.int32)),
        dict(symbols=np.array([0, 2**40, 1])),
        dict(indexes=np.array([0, 2, 0], np.int32)),
        dict(indexes=np.array([0, -1, 0], np.int32)),
        dict(cdfs=np.array([[1, 100, 65000, 65536, 0], [0, 30000, 65536, 0, 0]], np.int32)),
        dict(cdfs=np.array([[0, 100, 65000, 65535, 0], [0, 30000, 65536, 0, 0]], np.int32)),
        dict(cdfs=np.array([[0, 6000, 5000, 65536, 0], [0, 30000, 65536, 0, 0]], np.int32)),
        dict(cdfs=np.array([0, 100, 65536], np.int32)),
        dict(cdfs=[[0, 65536], [0, 1, 65536]]),
        dict(cdf_lengths=np.array([4, 1], np.int32)),
        dict(cdf_lengths=np.array([6, 3], np.int32)),
        dict(cdf_lengths=np.array([4], np.int32)),
        dict(offsets=np.array([0, 0, 0], np.int32)),
        dict(precision=0),
        dict(precision=17),
        dict(precision=15),
        dict(precision=16.0),
        dict(  # symbol -1 of table 0 has zero probability
            symbols=np.array([-1, 1, -3], np.int32),
            cdfs=np.array([[0, 0, 65000, 65536, 0], [0, 30000, 65536, 0, 0]], np.int32),
        ),
    ],
)
def test_bad_inputs_raise_value_error(change):
    args = {**_valid(), "precision": 16, **change}
    with pytest.raises(ValueError):
        coder.encode_with_indexes(**args)
    if "symbols" not in change:
        args.pop("symbols")
        with pytest.raises(ValueError):
            coder.decode_with_indexes(b"\x12\x34\x56", **args)


def test_bad_stream_arguments_raise_value_error():
    v = _valid()
    tables = (v["cdfs"], v["cdf_lengths"], v["offsets"])
    with pytest.raises(ValueError):
        coder.encode_streams([(v["symbols"], v["indexes"])], *tables, threads=0)
    with pytest.raises(ValueError):
        coder.encode_streams([(v["symbols"],)], *tables)
    with pytest.raises(ValueError):
        coder.decode_streams([b"", b""], [v["indexes"]], *tables)
    with pytest.raises(ValueError):
        coder.decode_with_indexes("not bytes", v["indexes"], *tables)


def _decode_or_bitstream_error(data, indexes, tables) -> bool:
    """True when decoding raised BitstreamError; any other outcome than an array fails."""
    try:
        out = coder.decode_with_indexes(data, indexes, *tables)
    except BitstreamError:
        return True
    assert out.shape == indexes.shape
    return False


def fuzz(trials: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tables = make_tables("laplace")
    symbols, indexes = draw_latents(rng, 2000, "laplace", tables, 0.05)
    data = coder.encode_with_indexes(symbols, indexes, *tables)
    for cut in (5, 8, 64, len(data) // 2, len(data)):  # far more missing than the flush can explain
        assert _decode_or_bitstream_error(data[:-cut], indexes, tables)
    assert _decode_or_bitstream_error(data + bytes(8), indexes, tables)  # trailing bytes
    assert _decode_or_bitstream_error(b"\xff" * 64, indexes[:10], tables)  # endless escape prefix
    for _ in range(trials):
        n = int(rng.integers(0, 3000))
        match int(rng.integers(3)):
            case 0:
                garbage = rng.bytes(int(rng.integers(0, 100)))
            case 1:
                garbage = data[: int(rng.integers(0, len(data) + 1))]
            case _:
                flipped = bytearray(data)
                flipped[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
                garbage = bytes(flipped)
        _decode_or_bitstream_error(garbage, indexes[:n], tables)


def test_corrupted_data_never_crashes():
    fuzz(300, 7)


@pytest.mark.slow
def test_corrupted_data_never_crashes_long():
    fuzz(20000, 8)


def cross_entropy(p: np.ndarray, cdf: np.ndarray) -> float:
    """-sum p log q in nats for the normalised pmf p and the quantised CDF."""
    p = p / p.sum()
    return float(-np.sum(p * np.log(np.diff(cdf) / cdf[-1])))


def optimal_frequencies(p: np.ndarray, total: int) -> np.ndarray:
    """Exact optimum by marginal allocation from all-ones (optimal for separable concave gains)."""
    p = p / p.sum()
    f = np.ones(len(p), np.int64)
    for _ in range(total - len(p)):
        i = np.argmax(p * np.log1p(1.0 / f))
        f[i] += 1
    return f


def test_pmf_to_quantized_cdf_properties():
    rng = np.random.default_rng(9)
    pmf = rng.dirichlet(np.full(40, 0.3), size=50)
    pmf[:, :5] = 0  # zero-mass symbols still get one unit
    for precision in (6, 10, 16):
        cdf = coder.pmf_to_quantized_cdf(pmf, precision)
        assert cdf.dtype == np.int32 and cdf.shape == (50, 41)
        assert (cdf[:, 0] == 0).all() and (cdf[:, -1] == 1 << precision).all()
        assert (np.diff(cdf, axis=1) >= 1).all()
        np.testing.assert_array_equal(coder.pmf_to_quantized_cdf(pmf * 3.0, precision), cdf)  # scale-free
        np.testing.assert_array_equal(coder.pmf_to_quantized_cdf(torch.from_numpy(pmf), precision), cdf)


def test_pmf_to_quantized_cdf_is_optimal():
    rng = np.random.default_rng(10)
    for n, precision in [(3, 4), (8, 6), (20, 8), (60, 8), (255, 8)]:
        for pmf in rng.dirichlet(np.full(n, 0.5), size=8):
            cdf = coder.pmf_to_quantized_cdf(pmf[None], precision)[0]
            best = np.concatenate([[0], np.cumsum(optimal_frequencies(pmf, 1 << precision))])
            assert cross_entropy(pmf, cdf) <= cross_entropy(pmf, best) + 1e-12


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_pmf_to_quantized_cdf_beats_compressai(kind):
    ours = theirs = 0.0
    for p in pmfs(kind, scale_table()):
        p = p.astype(np.float32).astype(np.float64)  # what CompressAI's float32 tables hold
        entropy = -np.sum(p / p.sum() * np.log(p / p.sum(), where=p > 0, out=np.zeros_like(p)))
        kl_ours = cross_entropy(p, coder.pmf_to_quantized_cdf(p[None])[0]) - entropy
        kl_theirs = cross_entropy(p, np.array(compressai_pmf_to_quantized_cdf(p.tolist(), 16))) - entropy
        assert kl_ours <= kl_theirs + 1e-12
        ours, theirs = ours + kl_ours, theirs + kl_theirs
    assert ours < theirs


@pytest.mark.parametrize(
    "pmf, precision",
    [
        (np.array([0.5, 0.5]), 16),  # 1-D
        (np.array([[0.5, -0.1, 0.6]]), 16),
        (np.array([[0.5, np.nan]]), 16),
        (np.zeros((2, 3)), 16),
        (np.full((1, 9), 1 / 9), 3),  # more symbols than units
        (np.full((1, 3), 1 / 3), 17),
        (np.array([["a", "b"]]), 16),
    ],
)
def test_pmf_to_quantized_cdf_rejects_bad_input(pmf, precision):
    with pytest.raises(ValueError):
        coder.pmf_to_quantized_cdf(pmf, precision)
