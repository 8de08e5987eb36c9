"""Video file ↔ ``.lnc`` through a learned video codec, frame by frame.

Each frame is one container chunk. Intra frames come every ``intra_period`` frames (``-1``: the first
only, as in DCVC's test conditions); the others are predicted from the frame before them as the
decoder reconstructs it, rounded to 8 bits as the output file holds it (closed loop: the encoder
decodes every frame it codes, so encoder and decoder share their references exactly). Frames whose
sides are not multiples of the codec's downsampling are padded by replication and cropped back.
Encoder and decoder hold one frame, its reference and their latents: memory is bounded by a frame,
whatever the clip's length.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lnc.codecs.base import Compressed, VideoCodec
from lnc.entropy import container as lncfile
from lnc.entropy.chunked import ChunkReader, ChunkWriter, Layout
from lnc.entropy.errors import BitstreamError, InputError
from lnc.tools.io.video import MAX_FRAME_PIXELS, VideoReader
from lnc.tools.pipeline import DEFAULT_INTRA_PERIOD
from lnc.tools.pipeline.common import check_stream, checked_quality, padded



def check_intra_period(period: int) -> int:
    """``period`` if it is ``-1`` or at least 1."""
    if period != -1 and period < 1:
        raise InputError(f"the intra period is a number of frames ≥ 1, or -1 for the first frame only; got {period}")
    return period


def is_intra_frame(index: int, period: int) -> bool:
    """Whether frame ``index`` (0-based) is coded intra with intra period ``period``."""
    return index == 0 if period == -1 else index % period == 0


def _tensor(frame: np.ndarray, multiple: int, device: torch.device) -> Tensor:
    """An ``H×W×3`` uint8 frame as ``[1, 3, H', W']`` in [0, 1], padded by replication to multiples."""
    x = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255)
    height, width = frame.shape[:2]
    pad = (0, padded(width, multiple) - width, 0, padded(height, multiple) - height)
    return F.pad(x, pad, mode="replicate") if any(pad) else x


def _as_reference(x_hat: Tensor) -> Tensor:
    """A reconstruction rounded to the 8-bit frame the decoder outputs: what the next frame predicts from."""
    return x_hat.mul(255).round_().div_(255)


def _pixels(x_hat: Tensor, height: int, width: int) -> np.ndarray:
    return x_hat[0, :, :height, :width].mul(255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@torch.inference_mode()
def encode_video_to(
    out: BinaryIO,
    reader: VideoReader,
    codec: VideoCodec,
    quality: float | None = None,
    intra_period: int = DEFAULT_INTRA_PERIOD,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> int:
    """Write a whole ``.lnc`` file for the frames of ``reader`` to ``out``; returns its size.
    ``on_frame`` is called with each frame as the decoder will reconstruct it (``H×W×3`` uint8):
    for a progress bar, or to measure quality without decoding the file again."""
    q = checked_quality(codec, quality)
    check_intra_period(intra_period)
    info = reader.info
    header = lncfile.Header(
        modality=lncfile.Modality.VIDEO, codec=codec.name, weights_hash=codec.weights_hash, quality=q,
        height=info.height, width=info.width, channels=3, bit_depth=8, frames=info.frames, fps=info.fps,
    )
    writer = ChunkWriter(out, header, Layout(codec.stream_names, 1, checksummed=True))
    device = next(codec.parameters()).device
    reference = None
    for index, frame in enumerate(reader.frames()):
        x = _tensor(frame, codec.downsampling, device)
        intra = is_intra_frame(index, intra_period)
        compressed = codec.compress(x if intra else torch.cat([x, reference], dim=1), q)
        writer.write_chunk([compressed.item(0)])
        context = {} if intra else {"reference": reference}
        reference = _as_reference(codec.decompress(compressed, q, **context))
        if on_frame is not None:
            on_frame(_pixels(reference, info.height, info.width))
    return writer.close()


@torch.inference_mode()
def decode_video_frames(reader: ChunkReader, codec: VideoCodec) -> Iterator[np.ndarray]:
    """The frames of an open ``.lnc`` video file, as ``H×W×3`` uint8 arrays, one at a time."""
    header = reader.header
    check_stream(reader, codec)
    if header.channels != 3 or header.bit_depth != 8:
        raise BitstreamError(f"unsupported video layout: {header.channels} channels, {header.bit_depth} bits")
    height, width = header.height, header.width
    if height * width > MAX_FRAME_PIXELS:
        raise BitstreamError(f"implausible frame size {width}x{height}")
    if reader.layout.span != 1 or reader.layout.items != 1:
        raise BitstreamError(f"implausible video layout: chunks of {reader.layout.span} frames, {reader.layout.items} items")
    q = checked_quality(codec, header.quality)
    shapes = codec.latent_shapes((padded(height, codec.downsampling), padded(width, codec.downsampling)))
    reference = None
    for index, (item,) in enumerate(reader.chunks()):
        intra = codec.is_intra(item)
        if not intra and reference is None:
            raise BitstreamError("the first frame of a video is not an intra frame")
        context = {} if intra else {"reference": reference}
        x_hat = codec.decompress(Compressed.from_items([item], shapes), q, **context)
        reference = _as_reference(x_hat)
        yield _pixels(reference, height, width)
    if reader.extras():
        raise BitstreamError(f"extra sections {sorted(reader.extras())} in a video file")
