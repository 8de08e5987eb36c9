"""Image file ↔ ``.lnc`` bytes through a learned codec: the one path every image tool uses.

Policy for what Pillow reads: EXIF orientation is applied; grayscale is coded as RGB with equal
channels and decoded back to grayscale; an alpha channel that is not fully opaque is stored
losslessly (zlib) in its own section; palette and CMYK images are converted to RGB; images with more
than 8 bits per channel are refused. Images larger than one tile are coded as independent tiles,
so memory stays bounded whatever the size.
"""
from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from PIL import Image, ImageOps, UnidentifiedImageError

from lnc.codecs.base import ImageCodec
from lnc.codecs.refine import refine_latents
from lnc.codecs.registry import check_identity
from lnc.entropy import container as lncfile
from lnc.entropy.errors import BitstreamError, InputError

TILE = 1024
"""Tile side in pixels (a multiple of every codec's downsampling factor)."""
TILES_PER_BATCH = 2
"""Equal-shaped tiles coded together: their streams go through the coder in parallel."""
MAX_PIXELS = 1 << 28
"""Largest image accepted (about 16k × 16k)."""


@dataclass
class Picture:
    """An 8-bit picture as the pipeline sees it: RGB, the original channel count, optional alpha."""

    rgb: np.ndarray
    channels: int = 3
    alpha: np.ndarray | None = None

    def to_image(self) -> Image.Image:
        """The Pillow image to save: grayscale, RGB or RGBA, as the input was."""
        if self.channels == 1:
            gray = np.round(self.rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
            return Image.fromarray(gray)
        image = Image.fromarray(self.rgb)
        if self.alpha is not None:
            image.putalpha(Image.fromarray(self.alpha))
        return image


def read_picture(source: str | bytes) -> Picture:
    """Read an image file (path or bytes) with the policy in the module docstring."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        image.load()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        name = "stdin" if isinstance(source, bytes) else source
        raise InputError(f"cannot read image {name}: {exc}") from None
    if image.width * image.height > MAX_PIXELS:
        raise InputError(f"image of {image.width}x{image.height} pixels exceeds the limit of {MAX_PIXELS}")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise InputError(f"{image.mode} images (more than 8 bits per channel) are not supported")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    channels = 1 if image.mode in ("L", "LA", "1") else 3
    alpha = None
    if image.mode in ("RGBA", "LA", "PA"):
        a = np.asarray(image.getchannel("A"))
        alpha = a if (a != 255).any() else None
    rgb = np.array(image.convert("RGB"))  # a writable copy: torch refuses read-only arrays
    return Picture(rgb=rgb, channels=channels, alpha=alpha)


def _tiles(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """The tile grid as (top, left, height, width), row-major."""
    return [
        (top, left, min(TILE, height - top), min(TILE, width - left))
        for top in range(0, height, TILE)
        for left in range(0, width, TILE)
    ]


def padded(size: int, multiple: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``."""
    return -(-size // multiple) * multiple


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


@contextmanager
def _single_threaded(device: torch.device) -> Iterator[None]:
    """Run the codec with one CPU thread, encoder and decoder alike: convolutions split their sums
    differently with more threads (≈1e-6 apart). In the decoder's synthesis that can flip an 8-bit
    rounding, and a file must decode to the same pixels on every machine setting; in the entropy
    parameters (the hyperprior, a context model) it can move a scale across a table boundary, and
    then the decoder reads the stream with another CDF than the encoder wrote it with."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _quality(codec: ImageCodec, quality: float | None) -> float:
    q = codec.default_quality if quality is None else float(quality)
    q = float(np.float32(q))  # the header stores float32: code with exactly what the decoder reads
    codec.quality_tensor(q, 1, torch.device("cpu"))  # range check
    return q


def _section_order(name: str) -> tuple[int, str]:
    latent = name.rstrip("0123456789")
    return int(name[len(latent) :]), latent


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
def encode_picture(
    picture: Picture,
    codec: ImageCodec,
    quality: float | None = None,
    refine: int = 0,
    progress: Callable[[], None] | None = None,
) -> bytes:
    """A whole ``.lnc`` file for ``picture``; ``refine`` steps of encoder-side latent refinement
    (:mod:`lnc.codecs.refine`, 0: none), ``progress`` called after each."""
    q = _quality(codec, quality)
    height, width = picture.rgb.shape[:2]
    device = next(codec.parameters()).device
    x = torch.from_numpy(picture.rgb).to(device).permute(2, 0, 1).float().div_(255)
    tiles = _tiles(height, width)
    sections: dict[str, bytes] = {}
    for group in _groups(tiles, codec.downsampling):
        batch, sizes = [], []
        for i in group:
            top, left, h, w = tiles[i]
            crop = x[:, top : top + h, left : left + w].unsqueeze(0)
            pad = (0, padded(w, codec.downsampling) - w, 0, padded(h, codec.downsampling) - h)
            batch.append(F.pad(crop, pad, mode="replicate"))
            sizes.append((h, w))
        tiles_x = torch.cat(batch)
        latents = _refined(codec, tiles_x, q, refine, sizes, progress) if refine else None
        with _single_threaded(device):
            out = codec.compress(tiles_x, q, latents)
        for latent, strings in out["strings"].items():
            for i, s in zip(group, strings):
                sections[f"{latent}{i}"] = s
    ordered = [(name, sections[name]) for name in sorted(sections, key=_section_order)]
    if picture.alpha is not None:
        ordered.append(("alpha", zlib.compress(picture.alpha.tobytes(), 9)))
    header = lncfile.Header(
        modality=lncfile.Modality.IMAGE,
        codec=codec.name,
        weights_hash=codec.weights_hash,
        quality=q,
        height=height,
        width=width,
        channels=4 if picture.alpha is not None else picture.channels,
        bit_depth=8,
    )
    return lncfile.write(lncfile.Container(header, ordered))


@torch.inference_mode()
def decode_container(container: lncfile.Container, codec: ImageCodec) -> Picture:
    """The picture in a parsed ``.lnc`` file; ``codec`` must be the one that wrote it."""
    header = container.header
    if header.modality != lncfile.Modality.IMAGE:
        raise BitstreamError(f"not an image bitstream ({header.modality.name.lower()})")
    check_identity(codec, header.codec, header.weights_hash)
    if header.channels not in (1, 3, 4) or header.bit_depth != 8:
        raise BitstreamError(f"unsupported image layout: {header.channels} channels, {header.bit_depth} bits")
    height, width = header.height, header.width
    if height * width > MAX_PIXELS or height == 0 or width == 0:
        raise BitstreamError(f"implausible image size {width}x{height}")
    q = _quality(codec, header.quality)
    latents = sorted({name.rstrip("0123456789") for name, _ in container.sections} - {"alpha"})
    tiles = _tiles(height, width)
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    for group in _groups(tiles, codec.downsampling):
        _, _, h0, w0 = tiles[group[0]]
        shape = codec.latent_shape(padded(h0, codec.downsampling), padded(w0, codec.downsampling))
        strings = {latent: [container.section(f"{latent}{i}") for i in group] for latent in latents}
        with _single_threaded(next(codec.parameters()).device):
            x_hat = codec.decompress(strings, shape, q)
        pixels = x_hat.mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, tile in zip(group, pixels):
            top, left, h, w = tiles[i]
            rgb[top : top + h, left : left + w] = tile[:h, :w]
    alpha = None
    if header.channels == 4:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(container.section("alpha"), height * width)
        except zlib.error as exc:
            raise BitstreamError(f"corrupted alpha section: {exc}") from None
        if len(data) != height * width:
            raise BitstreamError("alpha section does not match the image size")
        alpha = np.frombuffer(data, dtype=np.uint8).reshape(height, width)
    return Picture(rgb=rgb, channels=1 if header.channels == 1 else 3, alpha=alpha)


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
    return decode_container(lncfile.read(data), codec).rgb


def payload_bytes(data: bytes) -> int:
    """Bytes of the coded latents alone (how CompressAI counts bpp), without header or alpha."""
    return sum(len(p) for name, p in lncfile.read(data).sections if name != "alpha")
