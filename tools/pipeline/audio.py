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
MAX_CODED_CHANNELS = 2
"""Learned audio codecs code mono and stereo files."""


def _items(codec: AudioCodec, channels: int) -> int:
    """Batch items per chunk: the file's channels over the codec's."""
    if channels > MAX_CODED_CHANNELS:
        raise InputError(f"{channels}-channel audio: lnc's audio codecs code mono or stereo files")
    if channels % codec.channels:
        raise InputError(f"{channels}-channel audio cannot be coded by a {codec.channels}-channel codec")
    return channels // codec.channels


def _mid_side(codec: AudioCodec, channels: int) -> bool:
    return codec.joint_stereo and codec.channels == 1 and channels == 2


def _codec_frames(frames: int, file_rate: int, codec: AudioCodec) -> int:
    """Sample frames at the codec's rate that ``frames`` at the file's rate become (as the resampler
    makes them)."""
    rate = codec.sample_rate or file_rate
    return -(-frames * rate // file_rate)


def _resample(x: torch.Tensor, source: int, target: int | None) -> torch.Tensor:
    if not target or source == target:
        return x
    from torchaudio.functional import resample

    return resample(x, source, target)


@torch.inference_mode()
def encode_audio_to(out: BinaryIO, reader: AudioReader, codec: AudioCodec, quality: float | None = None) -> int:
    """Write a whole ``.lnc`` file for the audio of ``reader`` to ``out``; returns its size."""
    q = checked_quality(codec, quality)
    info = reader.info
    items = _items(codec, info.channels)
    # A chunk is a whole number of latent frames at the codec's rate when there is no resampling.
    span = CHUNK_FRAMES if codec.sample_rate else padded(CHUNK_FRAMES, codec.downsampling)
    if _codec_frames(span, info.sample_rate, codec) > MAX_CHUNK_FRAMES:
        raise InputError(f"a {info.sample_rate} Hz file is too slow to resample to {codec.name}'s {codec.sample_rate} Hz")
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
    mid_side = _mid_side(codec, info.channels)
    for chunk in reader.chunks(span):
        x = torch.from_numpy(chunk).to(device)
        if mid_side:
            x = torch.stack([x[0] + x[1], x[0] - x[1]]) * 0.5
        x = _resample(x, info.sample_rate, codec.sample_rate).reshape(items, codec.channels, -1)
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
    rate = header.sample_rate
    resampled = bool(codec.sample_rate) and rate != codec.sample_rate
    if layout.span > MAX_CHUNK_FRAMES or (not codec.sample_rate and layout.span % codec.downsampling):
        raise BitstreamError(f"implausible chunk of {layout.span} sample frames")
    if _codec_frames(layout.span, rate, codec) > MAX_CHUNK_FRAMES:
        raise BitstreamError(f"a chunk of {layout.span} frames at {rate} Hz is too long at the codec's rate")
    if layout.items * codec.channels != header.channels:
        raise BitstreamError(f"{layout.items} items of {codec.channels} channels do not make {header.channels}")
    q = checked_quality(codec, header.quality)
    mid_side = _mid_side(codec, header.channels)
    left = header.frames
    with AudioWriter(output, rate, header.channels, fmt, frames=header.frames) as writer:
        for items in reader.chunks():
            frames = min(layout.span, left)
            coded = _codec_frames(frames, rate, codec)
            shapes = codec.latent_shapes((padded(coded, codec.downsampling),))
            x_hat = codec.decompress(Compressed.from_items(items, shapes), q)
            x_hat = x_hat.reshape(header.channels, -1)[:, :coded]
            if resampled:
                x_hat = _resample(x_hat, codec.sample_rate, rate)[:, :frames]
                x_hat = F.pad(x_hat, (0, frames - x_hat.shape[1])).clamp_(*codec.value_range)
            if mid_side:
                x_hat = torch.stack([x_hat[0] + x_hat[1], x_hat[0] - x_hat[1]]).clamp_(*codec.value_range)
            writer.write(x_hat.cpu().numpy())
            left -= frames
    if reader.extras():
        raise BitstreamError(f"extra sections {sorted(reader.extras())} in an audio file")
