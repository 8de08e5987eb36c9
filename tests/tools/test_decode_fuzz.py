"""Hostile files that pass every CRC: the whole decode path (container, layout, entropy decoding,
synthesis, alpha) either returns an image of the size the header states or raises one LncError,
quickly. Mutations are made on the parsed file and written back with valid CRCs, so they reach the
decoder instead of stopping at the container's checks. Altered payloads keep the item checksums
the encoder wrote, so none may decode to other pixels than the file did before."""
from __future__ import annotations

import dataclasses
import io
import random
import time

import numpy as np
import pytest
from PIL import Image

from lnc.codecs import load
from lnc.codecs.registry import load_shipped
from lnc.entropy.chunked import ChunkReader, ChunkWriter, Item
from lnc.entropy.errors import LncError
from lnc.tools.io.image import Picture
from lnc.tools.pipeline.image import decode_picture, encode_picture

SECONDS_PER_CASE = 2.0


@pytest.fixture(scope="module")
def seeds(kodim) -> list[bytes]:
    """Valid files of both shipped models: a crop, a 2-tile strip, one with alpha."""
    rgb = kodim(19)
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    pictures = [
        ("he2021-checkerboard-vr", Picture(rgb=np.ascontiguousarray(rgb[:64, :96])), 2.0),
        ("mbt2018-mean-vr", Picture(rgb=np.ascontiguousarray(rgb[:64, :96]), alpha=alpha), 6.0),
        ("he2021-checkerboard-vr", Picture(rgb=np.ascontiguousarray(np.tile(rgb[:64], (1, 2, 1))[:, :1100])), 1.0),
    ]
    return [encode_picture(picture, load(model), q) for model, picture, q in pictures]


def _parse(data: bytes):
    reader = ChunkReader(io.BytesIO(data), len(data))
    chunks = [[[dict(item.streams), item.checksum] for item in items] for items in reader.chunks()]
    return reader.header, reader.layout, dict(reader.extras()), chunks


def _flip(payload: bytes, rng: random.Random) -> bytes:
    if not payload:
        return bytes([rng.randrange(256)])
    data = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


PAYLOAD_KINDS = ("payload", "truncate", "extend", "swap", "checksum")
"""Mutations that leave the header alone: a decode that succeeds must give the original pixels."""


def _mutate(data: bytes, rng: random.Random) -> tuple[str, bytes | None]:
    """One logical mutation written back with valid CRCs (None when the writer refuses it), and its kind."""
    header, layout, extras, chunks = _parse(data)
    kind = rng.choice(["payload", "payload", "truncate", "extend", "swap", "checksum", "geometry", "quality",
                       "span", "streams", "alpha", "model"])
    k = rng.randrange(len(chunks))
    name = rng.choice(layout.streams)
    item, _ = chunks[k][0]
    if kind == "checksum":
        chunks[k][0][1] ^= 1 << rng.randrange(32)
    elif kind == "payload":
        item[name] = _flip(item[name], rng)
    elif kind == "truncate":
        item[name] = item[name][: rng.randrange(len(item[name]) + 1)]
    elif kind == "extend":
        item[name] += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "swap" and len(layout.streams) > 1:
        a, b = layout.streams[:2]
        item[a], item[b] = item[b], item[a]
    elif kind == "geometry":
        header = dataclasses.replace(header, height=max(1, header.height + rng.randint(-70, 70)),
                                     width=max(1, header.width + rng.randint(-70, 70)),
                                     channels=rng.choice([1, 2, 3, 4, 5]))
    elif kind == "quality":
        header = dataclasses.replace(header, quality=rng.choice([0.0, 0.5, 1.0, 7.99, 8.0, 9.0, -3.0, 1e6]))
    elif kind == "span":
        layout = dataclasses.replace(layout, span=rng.choice([64, 256, 512, 2048, 1 << 20]))
    elif kind == "streams":
        renamed = rng.choice(["y_anchor", "q", "z", "y"])
        layout = dataclasses.replace(layout, streams=(layout.streams[0], renamed) if renamed != layout.streams[0]
                                     else layout.streams)
        chunks = [[[{s: next(iter(i.values())) for s in layout.streams}, c] for i, c in items] for items in chunks]
    elif kind == "alpha":
        extras = {} if extras else {"alpha": _flip(b"x\x9c" + bytes(8), rng)}
    elif kind == "model":
        header = dataclasses.replace(header, codec=rng.choice(["mbt2018-mean-vr", "he2021-checkerboard-vr"]))
    out = io.BytesIO()
    try:
        writer = ChunkWriter(out, header, layout, list(extras.items()))
        for items in chunks:
            writer.write_chunk([Item(streams, checksum) for streams, checksum in items])
        writer.close()
    except ValueError:  # the geometry asks for another number of chunks, say: not a file lnc can write
        return kind, None
    return kind, out.getvalue()


def _fuzz(seeds: list[bytes], cases: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    codecs = {}
    outcome = {"decoded": 0, "refused": 0, "unwritable": 0}
    originals = {}
    slowest = 0.0
    while outcome["decoded"] + outcome["refused"] < cases:
        seed_file = rng.choice(seeds)
        kind, data = _mutate(seed_file, rng)
        if data is None:
            outcome["unwritable"] += 1
            continue
        start = time.perf_counter()
        try:
            reader = ChunkReader(io.BytesIO(data), len(data))
            name = reader.header.codec
            if name not in codecs:
                codecs[name] = load_shipped(name)
            picture = decode_picture(reader, codecs[name])
        except LncError as exc:
            assert "\n" not in str(exc), str(exc)
            outcome["refused"] += 1
        else:
            assert picture.rgb.shape == (reader.header.height, reader.header.width, 3)
            Image.fromarray(picture.rgb)  # a real, savable picture
            outcome["decoded"] += 1
            if kind in PAYLOAD_KINDS:  # e.g. a flip in a byte the decoder never needed
                if seed_file not in originals:
                    originals[seed_file] = decode_picture(ChunkReader(io.BytesIO(seed_file), len(seed_file)),
                                                          codecs[name]).rgb
                assert np.array_equal(picture.rgb, originals[seed_file]), f"{kind}: silently wrong pixels"
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < SECONDS_PER_CASE, slowest
    return outcome


def test_200_crc_valid_mutations_decode_or_refuse_cleanly(seeds):
    outcome = _fuzz(seeds, 200, seed=0)
    assert outcome["refused"] > 50 and outcome["decoded"] > 10, outcome  # both paths were exercised


@pytest.mark.slow
def test_10000_crc_valid_mutations_decode_or_refuse_cleanly(seeds):
    outcome = _fuzz(seeds, 10_000, seed=1)
    print(outcome)
