"""Plain-Python reference of the range-coder format in ``docs/range_coder.md``.

One symbol at a time and slow; it exists so that tests can check the C++ coder of
:mod:`lnc.entropy.coder` byte for byte. Inputs are assumed valid (no checks).
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

from lnc.entropy.errors import BitstreamError

_TOP = 1 << 24
_MASK32 = (1 << 32) - 1
_CHUNK = 16  # bits per bypass chunk
_MAX_GAMMA_EXPONENT = 33
_MAX_PADDING = 4


class _Encoder:
    def __init__(self) -> None:
        self.out = bytearray()
        self.low = 0
        self.range = _MASK32

    def encode(self, start: int, freq: int, precision: int) -> None:
        r = self.range >> precision
        self.low += r * start
        self.range = r * freq
        if self.low > _MASK32:
            self._carry()
        while self.range < _TOP:
            self.out.append(self.low >> 24)
            self.low = (self.low << 8) & _MASK32
            self.range <<= 8

    def encode_gamma(self, raw: int) -> None:
        x = raw + 1
        n = x.bit_length() - 1
        for _ in range(n):
            self.encode(1, 1, 1)
        self.encode(0, 1, 1)
        for j in range(0, n, _CHUNK):
            bits = min(_CHUNK, n - j)
            self.encode((x >> j) & ((1 << bits) - 1), 1, bits)

    def finish(self) -> bytes:
        for k in range(5):
            unit = 1 << (32 - 8 * k)
            v = -(-self.low // unit) * unit
            if v < self.low + self.range:
                self.low = v
                if self.low > _MASK32:
                    self._carry()
                self.out += self.low.to_bytes(4, "big")[:k]
                return bytes(self.out)
        raise AssertionError("unreachable: k = 4 always fits")

    def _carry(self) -> None:
        self.low &= _MASK32
        i = len(self.out) - 1
        while self.out[i] == 0xFF:
            self.out[i] = 0
            i -= 1
        self.out[i] += 1


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.padding = 0
        self.range = _MASK32
        self.code = 0
        self.r = 1
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()

    def _byte(self) -> int:
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        self.padding += 1
        if self.padding > _MAX_PADDING:
            raise BitstreamError("stream truncated: data exhausted")
        return 0

    def target(self, precision: int) -> int:
        self.r = self.range >> precision
        return min(self.code // self.r, (1 << precision) - 1)

    def consume(self, start: int, freq: int) -> None:
        self.code -= self.r * start
        self.range = self.r * freq
        while self.range < _TOP:
            self.code = ((self.code << 8) | self._byte()) & _MASK32
            self.range <<= 8

    def bits(self, n: int) -> int:
        v = self.target(n)
        self.consume(v, 1)
        return v

    def decode_gamma(self) -> int:
        n = 0
        while self.bits(1):
            n += 1
            if n > _MAX_GAMMA_EXPONENT:
                raise BitstreamError("escape code longer than any int32 value needs")
        x = 1 << n
        for j in range(0, n, _CHUNK):
            x |= self.bits(min(_CHUNK, n - j)) << j
        return x - 1


def _tables(cdfs: Sequence[Sequence[int]], cdf_lengths: Sequence[int]) -> list[list[int]]:
    """Each table's valid CDF entries as Python ints."""
    return [[int(c) for c in cdf[: int(n)]] for cdf, n in zip(cdfs, cdf_lengths)]


def encode_with_indexes(
    symbols: Sequence[int],
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    precision: int = 16,
) -> bytes:
    """Reference of :func:`lnc.entropy.coder.encode_with_indexes` on 1-D sequences."""
    enc = _Encoder()
    tables = _tables(cdfs, cdf_lengths)
    for symbol, index in zip(symbols, indexes):
        cdf = tables[index]
        max_value = len(cdf) - 2
        value = int(symbol) - int(offsets[index])
        escape = value < 0 or value >= max_value
        s = max_value if escape else value
        enc.encode(cdf[s], cdf[s + 1] - cdf[s], precision)
        if escape:
            enc.encode_gamma(-2 * value - 1 if value < 0 else 2 * (value - max_value))
    return enc.finish()


def decode_with_indexes(
    data: bytes,
    indexes: Sequence[int],
    cdfs: Sequence[Sequence[int]],
    cdf_lengths: Sequence[int],
    offsets: Sequence[int],
    precision: int = 16,
) -> list[int]:
    """Reference of :func:`lnc.entropy.coder.decode_with_indexes` on 1-D sequences."""
    dec = _Decoder(bytes(data))
    tables = _tables(cdfs, cdf_lengths)
    out = []
    for index in indexes:
        cdf = tables[index]
        max_value = len(cdf) - 2
        s = bisect_right(cdf, dec.target(precision)) - 1
        dec.consume(cdf[s], cdf[s + 1] - cdf[s])
        value = s
        if s == max_value:
            raw = dec.decode_gamma()
            value = -((raw + 1) >> 1) if raw & 1 else (raw >> 1) + max_value
        out.append(value + int(offsets[index]))
    if dec.pos < len(dec.data):
        raise BitstreamError(f"{len(dec.data) - dec.pos} bytes left after the last symbol")
    return out
