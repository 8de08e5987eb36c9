"""Image file ↔ ``.lnc`` through a learned codec: the one path every image tool uses.

Pictures come from :mod:`lnc.tools.io.image`. Images larger than one tile are coded as independent
tiles, one container chunk each (the tile side is recorded in the file), so memory stays bounded
whatever the size; a non-opaque alpha channel is stored losslessly (zlib) in an extra section.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lnc.codecs.base import Compressed, ImageCodec
from lnc.codecs.image.refine import refine_latents
from lnc.entropy import container as lncfile
from lnc.entropy.chunked import ChunkReader, ChunkWriter, Item, Layout
from lnc.entropy.errors import BitstreamError
from lnc.tools.io.image import MAX_PIXELS, Picture
from lnc.tools.pipeline.common import check_stream, checked_quality, padded

TILE = 1024
"""Tile side in pixels (a multiple of every codec's downsampling factor)."""
MAX_TILE = 4096
"""Largest tile side a file may ask the decoder for: bounds the decoder's memory."""
TILES_PER_BATCH = 2
"""Equal-shaped tiles coded together: their streams go through the coder in parallel."""


def _tiles(height: int, width: int, tile: int = TILE) -> list[tuple[int, int, int, int]]:
    """The tile grid as (top, left, height, width), row-major: the order of the file's chunks."""
    return [
        (top, left, min(tile, height - top), min(tile, width - left))
        for top in range(0, height, tile)
        for left in range(0, width, tile)
    ]


def _groups(tiles: list[tuple[int, int, int, int]], multiple: int) -> list[list[int]]:
    """Tile indices batched by padded shape, at most TILES_PER_BATCH per batch."""
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, (_, _, h, w) in enumerate(tiles):
        by_shape.setdefault((padded(h, multiple), padded(w, multiple)), []).append(i)
    return [
        members[k : k + TILES_PER_BATCH]
        for members in by_shape.values()
        for k in range(0, len(members), TILES_PER_BATCH)
    ]


def _refined(
    codec: ImageCodec, tiles: Tensor, q: float, steps: int, sizes: list[tuple[int, int]],
    progress: Callable[[], None] | None,
) -> dict[str, Tensor]:
    """Refined latents of a batch of tiles, one tile at a time: backpropagating through the codec
    holds every activation, so two 1024² tiles together would need about 3 GB. Refinement only
    chooses latents, so unlike coding it may use every thread."""
    parts = [refine_latents(codec, tiles[k : k + 1], q, steps, sizes=[size], progress=progress)
             for k, size in enumerate(sizes)]
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


@torch.inference_mode()
def encode_picture_to(
    out: BinaryIO,
    picture: Picture,
    codec: ImageCodec,
    quality: float | None = None,
    refine: int = 0,
    progress: Callable[[], None] | None = None,
) -> int:
    """Write a whole ``.lnc`` file for ``picture`` to ``out``; returns its size in bytes.
    ``refine`` steps of encoder-side latent refinement (:mod:`lnc.codecs.image.refine`, 0: none),
    ``progress`` called after each."""
    q = checked_quality(codec, quality)
    height, width = picture.rgb.shape[:2]
    device = next(codec.parameters()).device
    pixels = torch.from_numpy(picture.rgb).permute(2, 0, 1)  # uint8; each tile becomes float alone
    tiles = _tiles(height, width)
    chunks: dict[int, Item] = {}
    for group in _groups(tiles, codec.downsampling):
        batch, sizes = [], []
        for i in group:
            top, left, h, w = tiles[i]
            crop = pixels[:, top : top + h, left : left + w].to(device).float().div_(255).unsqueeze(0)
            pad = (0, padded(w, codec.downsampling) - w, 0, padded(h, codec.downsampling) - h)
            batch.append(F.pad(crop, pad, mode="replicate") if any(pad) else crop)
            sizes.append((h, w))
        tiles_x = torch.cat(batch) if len(batch) > 1 else batch[0]
        latents = _refined(codec, tiles_x, q, refine, sizes, progress) if refine else None
        compressed = codec.compress(tiles_x, q, latents)
        for k, i in enumerate(group):
            chunks[i] = compressed.item(k)
    header = lncfile.Header(
        modality=lncfile.Modality.IMAGE,
        codec=codec.name,
        weights_hash=codec.weights_hash,
        quality=q,
        height=height,
        width=width,
        channels=picture.stored_channels,
        bit_depth=8,
    )
    extras = [("alpha", zlib.compress(picture.alpha.tobytes(), 9))] if picture.alpha is not None else []
    writer = ChunkWriter(out, header, Layout(codec.stream_names, TILE, checksummed=True), extras)
    for i in range(len(tiles)):
        writer.write_chunk([chunks[i]])
    return writer.close()


def encode_picture(
    picture: Picture,
    codec: ImageCodec,
    quality: float | None = None,
    refine: int = 0,
    progress: Callable[[], None] | None = None,
) -> bytes:
    """A whole ``.lnc`` file for ``picture`` (see :func:`encode_picture_to`)."""
    out = io.BytesIO()
    encode_picture_to(out, picture, codec, quality, refine, progress)
    return out.getvalue()


@torch.inference_mode()
def decode_picture(reader: ChunkReader, codec: ImageCodec) -> Picture:
    """The picture in an open ``.lnc`` file; ``codec`` must be the one that wrote it."""
    header = reader.header
    check_stream(reader, codec)
    if header.channels not in (1, 2, 3, 4) or header.bit_depth != 8:
        raise BitstreamError(f"unsupported image layout: {header.channels} channels, {header.bit_depth} bits")
    height, width, tile = header.height, header.width, reader.layout.span
    if height * width > MAX_PIXELS:
        raise BitstreamError(f"implausible image size {width}x{height}")
    if tile > MAX_TILE or tile % codec.downsampling or reader.layout.items != 1:
        raise BitstreamError(f"implausible tiling: {tile} px tiles of {reader.layout.items} items")
    q = checked_quality(codec, header.quality)
    # The coded tiles are small next to the picture: gather them, then decode in batches.
    chunks = [items[0] for items in reader.chunks()]
    extras = reader.extras()
    has_alpha = header.channels in (2, 4)
    expected = {"alpha"} if has_alpha else set()
    if set(extras) != expected:
        raise BitstreamError(f"extra sections {sorted(extras)} do not fit a {header.channels}-channel image")
    tiles = _tiles(height, width, tile)
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for group in _groups(tiles, codec.downsampling):
        _, _, h0, w0 = tiles[group[0]]
        shapes = codec.latent_shapes((padded(h0, codec.downsampling), padded(w0, codec.downsampling)))
        # A per-pass stream of an older layout has no declared shape: its latent codec takes the
        # shape from the side information it is decoded with.
        compressed = Compressed.from_items([chunks[i] for i in group], shapes)
        x_hat = codec.decompress(compressed, q)
        pixels = x_hat.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, tile_pixels in zip(group, pixels):
            top, left, h, w = tiles[i]
            rgb[top : top + h, left : left + w] = tile_pixels[:h, :w]
    alpha = None
    if has_alpha:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(extras["alpha"], height * width)
        except zlib.error as exc:
            raise BitstreamError(f"corrupted alpha section: {exc}") from None
        if len(data) != height * width:
            raise BitstreamError("alpha section does not match the image size")
        alpha = np.frombuffer(data, dtype=np.uint8).reshape(height, width)
    return Picture(rgb=rgb, channels=1 if header.channels <= 2 else 3, alpha=alpha)


@contextmanager
def refinement_progress(picture: Picture, codec: ImageCodec, steps: int) -> Iterator[Callable[[], None] | None]:
    """A progress bar on stderr over every refinement step of ``picture`` (None when not refining)."""
    if not steps:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=steps * len(_tiles(*picture.rgb.shape[:2])), desc="refining", unit="step", leave=False) as bar:
        yield bar.update


def encode_array(rgb: np.ndarray, codec: ImageCodec, quality: float | None = None, refine: int = 0) -> bytes:
    """A whole ``.lnc`` file for an 8-bit RGB array ``H×W×3``."""
    return encode_picture(Picture(rgb=np.array(rgb, dtype=np.uint8)), codec, quality, refine)


def decode_bytes(data: bytes, codec: ImageCodec) -> np.ndarray:
    """The 8-bit RGB array ``H×W×3`` coded in a ``.lnc`` file's bytes."""
    return decode_picture(ChunkReader(io.BytesIO(data), len(data)), codec).rgb


def payload_bytes(data: bytes) -> int:
    """Bytes of the coded latents alone (how CompressAI counts bpp), without header, lengths,
    CRCs or alpha."""
    reader = ChunkReader(io.BytesIO(data), len(data))
    return sum(len(s) for items in reader.chunks() for item in items for s in item.streams.values())
