"""Classical audio codecs through PyAV (FFmpeg), measured the same way as lnc's learned ones.

One code path for every codec: an entry in ``CODECS`` names the FFmpeg encoder and the container
it writes; ``quality`` is the target bit rate in kbit/s. Encoding goes to a complete file in
memory, so the rate counts every byte of it (headers, container framing, tags), and what FFmpeg
decodes from that file is what the metrics see.

Sample rates: the encoder runs at the source's rate where it can, else at the next higher rate it
supports (Opus: 44.1 kHz → 48 kHz); PyAV's encoder resamples its input with swresample, and the
decoded audio is resampled back to the source's rate the same way. The round trip through the
resampler alone (44.1 → 48 → 44.1 kHz) is 65-68 dB SNR on music, far above what Opus reaches.

Alignment: every container here tells the decoder how many priming samples to drop, and FFmpeg
drops them: Ogg Opus its pre-skip (312 samples at 48 kHz), MP4 its edit list (AAC's 1024), MP3
the LAME tag (576 + 529 decoder delay). Only the end padding of the last frame is cut here. ADTS,
which cannot say so (its AAC comes out 1024 samples late), is why AAC goes into MP4. Measured by
cross-correlation on music, AAC and MP3 then lag 0.0 samples (±0.1); Opus's CELT mode keeps a
sub-sample phase offset of its own (0.2-0.9 samples early at 48 kHz, content dependent) and its
SILK mode (8 kbit/s and below on music) lags 6 samples at 48 kHz (0.125 ms). Both are the codec's
output as any player renders it, so they are measured as they are, without a lag search; they
cost Opus at most a few tenths of a dB of SNR.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from lnc.entropy.errors import InputError, LncError
from lnc.tools.io.audio import AudioInfo, AudioReader

_LAYOUTS = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class AudioBaseline:
    """An FFmpeg audio encoder writing one container; ``quality`` is its target kbit/s."""

    name: str
    label: str
    encoder: str  # FFmpeg encoder name
    container: str  # FFmpeg muxer name
    rate_control: str  # how the encoder spends the target, for the description
    qualities: tuple[float, ...]  # default sweep, kbit/s
    quality_range: tuple[float, float]  # inclusive, kbit/s

    def check_quality(self, quality: float) -> None:
        """Raise ``InputError`` unless ``quality`` lies in the codec's range of bit rates."""
        low, high = self.quality_range
        if not low <= quality <= high:
            raise InputError(
                f"{self.label} quality is a target bit rate in [{low:g}, {high:g}] kbit/s, got {quality:g}"
            )

    def encode(self, reader: AudioReader, quality: float) -> bytes:
        """The whole file ``reader`` holds, encoded at ``quality`` kbit/s, as the container's bytes."""
        import av

        self.check_quality(quality)
        info = reader.info
        layout = _layout(self.label, info.channels)
        codec = av.codec.Codec(self.encoder, "w")
        samples = next(reader.chunks(info.frames))  # the whole file, one chunk
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = info.sample_rate, 0
        out = io.BytesIO()
        with av.open(out, "w", format=self.container) as container:
            stream = container.add_stream(self.encoder, rate=_encoder_rate(codec, info.sample_rate), layout=layout)
            stream.format = next(f.name for f in codec.audio_formats if f.name.startswith("flt"))
            stream.bit_rate = round(quality * 1000)
            for packet in [*stream.encode(frame), *stream.encode(None)]:  # encode() resamples and frames it
                container.mux(packet)
        return out.getvalue()

    def decode(self, data: bytes, info: AudioInfo) -> np.ndarray:
        """Decode file bytes to float32 ``[channels, frames]`` in [-1, 1] at the source's rate and length."""
        import av

        resampler = av.AudioResampler(format="fltp", layout=_layout(self.label, info.channels), rate=info.sample_rate)
        with av.open(io.BytesIO(data), "r") as container:
            frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
        frames += resampler.resample(None)
        decoded = np.concatenate([frame.to_ndarray() for frame in frames], axis=1)[:, : info.frames]
        decoded = np.pad(decoded, ((0, 0), (0, info.frames - decoded.shape[1])))
        return np.clip(decoded, -1.0, 1.0)

    @property
    def description(self) -> str:
        """What was measured, with the library versions that produced it."""
        import av

        return (
            f"{self.label} ({self.encoder} in {self.container}, quality = target kbit/s, {self.rate_control}), "
            f"whole files. FFmpeg {av.ffmpeg_version_info}, PyAV {av.__version__}"
        )


def _layout(label: str, channels: int) -> str:
    if channels not in _LAYOUTS:
        raise InputError(f"the {label} baseline codes mono or stereo audio, not {channels} channels")
    return _LAYOUTS[channels]


def _encoder_rate(codec, sample_rate: int) -> int:
    """The source's rate if the encoder takes it, else the next higher one it does (else its highest)."""
    rates = codec.audio_rates
    if not rates or sample_rate in rates:
        return sample_rate
    return min((rate for rate in rates if rate > sample_rate), default=max(rates))


CODECS: dict[str, AudioBaseline] = {
    c.name: c
    for c in (
        AudioBaseline(
            name="opus", label="Opus", encoder="libopus", container="ogg", rate_control="VBR, libopus's default",
            qualities=(6, 8, 12, 16, 24, 32, 48, 64, 96, 128), quality_range=(6, 510),
        ),
        AudioBaseline(
            name="aac", label="AAC", encoder="aac", container="mp4", rate_control="CBR, FFmpeg's native AAC-LC encoder",
            qualities=(32, 48, 64, 96, 128, 192, 256), quality_range=(8, 512),
        ),
        AudioBaseline(
            name="mp3", label="MP3", encoder="libmp3lame", container="mp3", rate_control="CBR",
            qualities=(32, 48, 64, 96, 128, 192, 256), quality_range=(8, 320),
        ),
    )
}


def get(name: str) -> AudioBaseline:
    """The classical audio codec ``name``, checked to be built into this FFmpeg."""
    import av

    if name not in CODECS:
        raise InputError(f"unknown classical audio codec {name!r}; choose from {', '.join(CODECS)}")
    codec = CODECS[name]
    try:
        av.codec.Codec(codec.encoder, "w")
    except av.codec.codec.UnknownCodecError:
        raise LncError(f"{codec.label} is not available: PyAV's FFmpeg was built without {codec.encoder}") from None
    return codec
