"""Audio file ↔ ``.lnc`` through a learned codec, chunk by chunk.

The waveform is read, coded and written a chunk at a time (:data:`CHUNK_FRAMES` sample frames, one
container chunk each), so encoder and decoder hold one chunk and its latents whatever the file's
length: a 20-minute file takes the memory of a 2-minute one. A codec built for fewer channels than
the file has codes each group of channels as its own batch item of the chunk (a mono codec codes the
two channels of a stereo file apart). Output WAV and FLAC are 16-bit.
"""
from __future__ import annotations

from typing import BinaryIO

import torch
import torch.nn.functional as F

from lnc.codecs.base import AudioCodec, Compressed
from lnc.entropy import container as lncfile
from lnc.entropy.chunked import ChunkReader, ChunkWriter, Layout
from lnc.entropy.errors import BitstreamError, InputError
from lnc.tools.io.audio import AudioReader, AudioWriter
from lnc.tools.pipeline.common import check_stream, checked_quality, padded

CHUNK_FRAMES = 1 << 16
"""Sample frames per chunk (1.5 s at 44.1 kHz), rounded up to the codec's downsampling."""
MAX_CHUNK_FRAMES = 1 << 22
"""Longest chunk a file may ask the decoder for: bounds the decoder's memory."""
OUTPUT_BIT_DEPTH = 16


def _items(codec: AudioCodec, channels: int) -> int:
    """Batch items per chunk: the file's channels over the codec's."""
    if channels % codec.channels:
        raise InputError(f"{channels}-channel audio cannot be coded by a {codec.channels}-channel codec")
    return channels // codec.channels


@torch.inference_mode()
def encode_audio_to(out: BinaryIO, reader: AudioReader, codec: AudioCodec, quality: float | None = None) -> int:
    """Write a whole ``.lnc`` file for the audio of ``reader`` to ``out``; returns its size."""
    q = checked_quality(codec, quality)
    info = reader.info
    items = _items(codec, info.channels)
    span = padded(CHUNK_FRAMES, codec.downsampling)
    header = lncfile.Header(
        modality=lncfile.Modality.AUDIO,
        codec=codec.name,
        weights_hash=codec.weights_hash,
        quality=q,
        channels=info.channels,
        bit_depth=OUTPUT_BIT_DEPTH,
        frames=info.frames,
        sample_rate=info.sample_rate,
    )
    writer = ChunkWriter(out, header, Layout(codec.stream_names, span, items, checksummed=True))
    device = next(codec.parameters()).device
    for chunk in reader.chunks(span):
        x = torch.from_numpy(chunk).to(device).reshape(items, codec.channels, -1)
        # Reflection keeps the padded tail like the signal; zeros would cost bits at the edge.
        pad = padded(x.shape[-1], codec.downsampling) - x.shape[-1]
        x = F.pad(x, (0, pad), mode="reflect" if x.shape[-1] > pad else "replicate")
        compressed = codec.compress(x, q)
        writer.write_chunk([compressed.item(k) for k in range(items)])
    return writer.close()


@torch.inference_mode()
def decode_audio_to(reader: ChunkReader, codec: AudioCodec, output: BinaryIO, fmt: str = "wav") -> None:
    """Decode an open ``.lnc`` file of audio into ``output`` (``fmt`` ``"wav"`` or ``"flac"``)."""
    header, layout = reader.header, reader.layout
    check_stream(reader, codec)
    if layout.span > MAX_CHUNK_FRAMES or layout.span % codec.downsampling:
        raise BitstreamError(f"implausible chunk of {layout.span} sample frames")
    if layout.items * codec.channels != header.channels:
        raise BitstreamError(f"{layout.items} items of {codec.channels} channels do not make {header.channels}")
    q = checked_quality(codec, header.quality)
    left = header.frames
    with AudioWriter(output, header.sample_rate, header.channels, fmt, frames=header.frames) as writer:
        for items in reader.chunks():
            frames = min(layout.span, left)
            shapes = codec.latent_shapes((padded(frames, codec.downsampling),))
            compressed = Compressed.from_items(items, shapes)
            x_hat = codec.decompress(compressed, q)
            writer.write(x_hat.reshape(header.channels, -1)[:, :frames].cpu().numpy())
            left -= frames
    if reader.extras():
        raise BitstreamError(f"extra sections {sorted(reader.extras())} in an audio file")
