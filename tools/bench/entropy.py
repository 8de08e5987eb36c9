"""Throughput of lnc's range coder against CompressAI's rANS and constriction's range coder.

All coders get the same Gaussian symbols; lnc and CompressAI also get the identical tables of
CompressAI's ``GaussianConditional`` with its 64-scale table, constriction models each symbol
as a ``QuantizedGaussian`` with the symbol's own scale. Times are the best of ``--repeats``
runs of one call, the coders taking turns; CompressAI's list arguments are built outside the
timer (its API wants lists), which favours it. Run: ``python -m lnc.tools.bench.entropy [--symbols N]``.
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Any, Callable, NamedTuple

import numpy as np


class Coder(NamedTuple):
    """One contender: ``encode() -> data``, ``decode(data) -> symbols`` and the size of data."""

    name: str
    encode: Callable[[], Any]
    decode: Callable[[Any], Any]
    nbytes: Callable[[Any], int]


def make_inputs(n: int, seed: int, max_scale: float | None = None):
    """CompressAI's tables and n Gaussian symbols with log-uniform scales from the table's
    smallest scale to ``max_scale`` (default: its largest, 256)."""
    import torch
    from compressai.entropy_models import GaussianConditional
    from compressai.models.base import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    gen = torch.Generator().manual_seed(seed)
    lo, hi = float(gc.scale_table[0]), max_scale or float(gc.scale_table[-1])
    scales = torch.exp(torch.empty(n).uniform_(math.log(lo), math.log(hi), generator=gen))
    means = torch.empty(n).uniform_(-10, 10, generator=gen)
    y = means + scales * torch.randn(n, generator=gen)
    symbols = gc.quantize(y, "symbols", means).numpy()
    indexes = gc.build_indexes(scales).numpy()
    tables = (gc._quantized_cdf.numpy(), gc._cdf_length.numpy(), gc._offset.numpy())
    return symbols, indexes, tables, scales.numpy()


def lnc_coder(symbols, indexes, tables, streams: int) -> Coder:
    from lnc.entropy import coder

    if streams == 1:
        return Coder(
            "lnc range coder, 1 stream",
            lambda: coder.encode_with_indexes(symbols, indexes, *tables),
            lambda data: coder.decode_with_indexes(data, indexes, *tables),
            len,
        )
    parts = list(zip(np.array_split(symbols, streams), np.array_split(indexes, streams)))
    idx = [i for _, i in parts]
    threads = min(streams, coder.hardware_threads())
    return Coder(
        f"lnc range coder, {streams} streams/{threads} threads",
        lambda: coder.encode_streams(parts, *tables),
        lambda datas: np.concatenate(coder.decode_streams(datas, idx, *tables)),
        lambda datas: sum(map(len, datas)),
    )


def compressai_coder(symbols, indexes, tables) -> Coder:
    from compressai.ans import RansDecoder, RansEncoder

    sym, idx = symbols.tolist(), indexes.tolist()
    cdfs, lengths, offsets = (t.tolist() for t in tables)
    enc, dec = RansEncoder(), RansDecoder()
    return Coder(
        "CompressAI rANS",
        lambda: enc.encode_with_indexes(sym, idx, cdfs, lengths, offsets),
        lambda data: dec.decode_with_indexes(data, idx, cdfs, lengths, offsets),
        len,
    )


def constriction_coder(symbols, scales) -> Coder:
    import constriction  # its submodules are attributes, not importable modules

    queue = constriction.stream.queue
    bound = int(np.abs(symbols).max()) + 1
    family = constriction.stream.model.QuantizedGaussian(-bound, bound)
    means = np.zeros(len(symbols), np.float64)
    stds = scales.astype(np.float64)

    def encode():
        enc = queue.RangeEncoder()
        enc.encode(symbols, family, means, stds)
        return enc.get_compressed()

    return Coder(
        "constriction range coder",
        encode,
        lambda words: queue.RangeDecoder(words).decode(family, means, stds),
        lambda words: words.nbytes,
    )


def measure(coders: list[Coder], symbols: np.ndarray, repeats: int) -> list[tuple[float, float, int]]:
    """Best encode and decode seconds of each coder, taking turns so that load hits all alike."""
    best = [[math.inf, math.inf, 0] for _ in coders]
    for _ in range(repeats):
        for c, b in zip(coders, best):
            t = time.perf_counter()
            data = c.encode()
            b[0] = min(b[0], time.perf_counter() - t)
            t = time.perf_counter()
            out = c.decode(data)
            b[1] = min(b[1], time.perf_counter() - t)
            if not np.array_equal(np.asarray(out), symbols):
                raise AssertionError(f"{c.name}: round trip failed")
            b[2] = c.nbytes(data)
    return [tuple(b) for b in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=2_000_000, help="symbols per run (default 2e6)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best counts")
    parser.add_argument("--max-scale", type=float, help="largest scale drawn (default: the table's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn symbols")
    args = parser.parse_args(argv)

    symbols, indexes, tables, scales = make_inputs(args.symbols, args.seed, args.max_scale)
    coders = [
        compressai_coder(symbols, indexes, tables),
        lnc_coder(symbols, indexes, tables, 1),
        lnc_coder(symbols, indexes, tables, 2),
        lnc_coder(symbols, indexes, tables, 4),
        constriction_coder(symbols, scales),
    ]
    results = measure(coders, symbols, args.repeats)
    n = args.symbols
    ref_enc, ref_dec, _ = results[0]
    top = args.max_scale or float(scales.max())
    print(f"{n} Gaussian symbols, scales 0.11..{top:.0f}, 64 CompressAI tables, best of {args.repeats}")
    head = f"{'coder':<36} {'enc Msym/s':>10} {'dec Msym/s':>10} {'enc x':>6} {'dec x':>6} {'bits/sym':>9}"
    print(head)
    print("-" * len(head))
    for c, (enc, dec, nbytes) in zip(coders, results):
        print(
            f"{c.name:<36} {n / enc / 1e6:>10.1f} {n / dec / 1e6:>10.1f} "
            f"{ref_enc / enc:>6.2f} {ref_dec / dec:>6.2f} {8 * nbytes / n:>9.4f}"
        )
    print("x: throughput relative to CompressAI rANS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
