"""Audio files <-> float32 sample chunks, streaming: memory stays bounded by one chunk.

PCM WAV goes through the stdlib ``wave`` (exact frame count from the header, no decoding); every
other format (FLAC, Ogg, MP3, float or extensible WAV, ...) through PyAV, decoded to float32 here
without resampling. Samples are ``[channels, n]`` float32 in [-1, 1]. Every failure caused by the
input file is one ``InputError`` line that names the file ("stdin" for bytes).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import wave
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import av
import numpy as np

from lnc.entropy.errors import InputError
from lnc.tools.io.files import AbandonOnError, error_reason

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".opus", ".m4a")
MAX_FRAMES = 2**31
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 1_000_000
WRITE_FORMATS = ("wav", "flac")
FLAC_MAX_CHANNELS = 8

_READ_ERRORS = (OSError, EOFError, wave.Error, av.FFmpegError)


def is_audio_path(name: str) -> bool:
    """True when ``name`` has an audio extension: the CLI picks the audio pipeline by this."""
    return os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file holds.

    ``frames`` is the exact number of sample frames per channel. ``bit_depth`` is the source's
    bits per sample for PCM WAV and FLAC (8/16/24/32) and for other integer decoders; float and
    lossy sources (float WAV, Ogg Vorbis, MP3, ...) have none and report 16. ``format`` is "wav"
    for PCM WAV, otherwise FFmpeg's short name of the container ("flac", "ogg", "mp3", ...).
    """

    sample_rate: int
    channels: int
    frames: int
    bit_depth: int
    format: str


class AudioReader:
    """Reads an audio file (a path, or ``bytes`` from stdin) as float32 chunks, never all at once.

    ``info`` is known on opening; when the container stores no exact frame count it is counted by
    one streaming decode pass. ``chunks`` may be called again; each call decodes from the start.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        self._source = source
        self._name = "stdin" if isinstance(source, bytes) else os.fspath(source)
        self._file: BinaryIO | None = None
        self._wave: wave.Wave_read | None = None
        self._format = (0, 0)  # (sample rate, channels) once checked
        try:
            self.info: AudioInfo = self._open()
        except BaseException as exc:
            self.close()
            if isinstance(exc, _READ_ERRORS):
                raise self._error(exc) from None
            raise

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the open file, if any (PyAV passes close their own)."""
        if self._wave is not None:
            self._wave.close()
            self._wave = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def chunks(self, frames_per_chunk: int) -> Iterator[np.ndarray]:
        """Yield float32 ``[channels, frames_per_chunk]`` arrays (the last one may be shorter).

        They concatenate to exactly ``info.frames`` frames; a file that turns out shorter or
        longer than announced (truncated, changed meanwhile) raises ``InputError``.
        """
        if frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be positive, got {frames_per_chunk}")
        blocks = self._wave_blocks(frames_per_chunk) if self._wave else self._av_blocks()
        pending: list[np.ndarray] = []
        have = total = 0
        for block in blocks:
            total += block.shape[1]
            if total > self.info.frames:
                raise self._error(f"decodes to more than the {self.info.frames} frames announced")
            pending.append(block)
            have += block.shape[1]
            while have >= frames_per_chunk:
                joined = np.concatenate(pending, axis=1) if len(pending) > 1 else pending[0]
                yield np.ascontiguousarray(joined[:, :frames_per_chunk])
                rest = joined[:, frames_per_chunk:]
                pending = [rest] if rest.shape[1] else []
                have -= frames_per_chunk
        if total < self.info.frames:
            raise self._error(f"truncated: {total} of {self.info.frames} frames")
        if have:
            yield np.ascontiguousarray(np.concatenate(pending, axis=1))

    def _error(self, reason: str | BaseException) -> InputError:
        """``cannot read audio NAME: REASON`` on one line, whatever the reason's origin."""
        if isinstance(reason, BaseException):
            reason = error_reason(reason)
        return InputError(f"cannot read audio {self._name}: {' '.join(reason.split())}")

    def _open(self) -> AudioInfo:
        """Find the format and the exact ``AudioInfo``; PCM WAV by ``wave``, the rest by PyAV."""
        self._file = io.BytesIO(self._source) if isinstance(self._source, bytes) else open(self._source, "rb")
        head = self._file.read(12)
        if not head:
            raise self._error("empty file")
        wave_error = None
        if head[:4] == b"RIFF" and head[8:] == b"WAVE":
            try:
                return self._open_wave()
            except (EOFError, wave.Error) as exc:  # float or extensible WAV, or a broken one
                wave_error = exc
        self.close()
        try:
            return self._open_av()
        except _READ_ERRORS as exc:  # FFmpeg cannot demux it either: a broken RIFF says why best
            raise self._error(wave_error or exc) from None

    def _open_wave(self) -> AudioInfo:
        """PCM WAV: frames from the data chunk's size, capped by the bytes really present."""
        assert self._file is not None
        self._file.seek(0)
        self._wave = wave.open(self._file, "rb")
        channels, width = self._wave.getnchannels(), self._wave.getsampwidth()
        rate = self._wave.getframerate()
        self._check_format(rate, channels)
        data_start = self._file.tell()  # wave stops right at the start of the samples
        available = self._file.seek(0, io.SEEK_END) - data_start
        frames = min(self._wave.getnframes(), available // (channels * width))
        self._wave.rewind()
        return self._check_frames(AudioInfo(rate, channels, frames, 8 * width, "wav"))

    def _open_av(self) -> AudioInfo:
        """Anything FFmpeg demuxes: rate and channels from the stream, frames from FLAC's
        STREAMINFO or else counted by one streaming decode pass. FFmpeg errors propagate."""
        with av.open(self._av_source(), "r") as container:
            if not container.streams.audio:
                raise self._error(f"no audio stream ({container.format.name})")
            stream = container.streams.audio[0]
            codec = stream.codec_context
            rate, channels = codec.sample_rate, codec.channels
            self._check_format(rate, channels)
            frames = _flac_total_frames(codec)
            if frames == 0:
                for frame in self._consistent(container.decode(stream)):
                    frames += frame.samples
                    if frames > MAX_FRAMES:
                        break
            info = AudioInfo(rate, channels, frames, _bit_depth(codec), container.format.name.split(",")[0])
        return self._check_frames(info)

    def _av_source(self) -> str | BinaryIO:
        """What ``av.open`` reads: the path itself (FFmpeg's own I/O), or the bytes as a stream."""
        return io.BytesIO(self._source) if isinstance(self._source, bytes) else os.fspath(self._source)

    def _consistent(self, frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
        """Pass decoded frames on, refusing streams whose rate or channel count changes."""
        for frame in frames:
            if (frame.sample_rate, frame.layout.nb_channels) != self._format:
                raise self._error("sample rate or channel count changes within the stream")
            yield frame

    def _check_format(self, rate: int, channels: int) -> None:
        """Refuse zero or absurd sample rates and channel counts before decoding anything."""
        if not 1 <= channels <= MAX_CHANNELS:
            raise self._error(f"{channels} channels (1 to {MAX_CHANNELS} supported)")
        if not 1 <= rate <= MAX_SAMPLE_RATE:
            raise self._error(f"sample rate {rate} Hz (1 to {MAX_SAMPLE_RATE} supported)")
        self._format = (rate, channels)

    def _check_frames(self, info: AudioInfo) -> AudioInfo:
        """Refuse files without samples or with more frames than a codec can count."""
        if info.frames == 0:
            raise self._error("no audio samples")
        if info.frames > MAX_FRAMES:
            raise self._error(f"more than {MAX_FRAMES} frames")
        return info

    def _wave_blocks(self, frames_per_block: int) -> Iterator[np.ndarray]:
        """PCM WAV samples, ``frames_per_block`` frames at a time, as float32 ``[channels, n]``."""
        assert self._wave is not None
        info, width = self.info, self._wave.getsampwidth()
        self._wave.rewind()
        left = info.frames
        while left:
            try:
                data = self._wave.readframes(min(frames_per_block, left))
            except _READ_ERRORS as exc:
                raise self._error(exc) from None
            if not data:
                return
            n = len(data) // (width * info.channels)
            left -= n
            yield _pcm_to_float(data[: n * width * info.channels], width).reshape(n, info.channels).T

    def _av_blocks(self) -> Iterator[np.ndarray]:
        """Every decoded PyAV frame as float32 ``[channels, n]``, from a fresh demuxer."""
        try:
            with av.open(self._av_source(), "r") as container:
                for frame in self._consistent(container.decode(container.streams.audio[0])):
                    yield _frame_to_float(frame, self.info.channels)
        except _READ_ERRORS as exc:
            raise self._error(exc) from None


class AudioWriter(AbandonOnError):
    """Writes float32 ``[channels, n]`` chunks as a 16-bit WAV or FLAC file, streaming.

    ``dest`` is a path or a binary file object (which stays open). Samples are clipped to
    [-1, 1] and rounded to int16 (x * 32768, so a read-back file rewrites identically). A WAV
    header is patched with the frame count on closing, which needs a seekable ``dest``; for an
    unseekable one (stdout) announce ``frames`` up front. FLAC works with any file object (when
    unseekable, its STREAMINFO lacks the total, and readers count it). Errors, including an
    announced ``frames`` not matching what was written, propagate; the caller removes the file.
    """

    def __init__(
        self,
        dest: str | os.PathLike[str] | BinaryIO,
        sample_rate: int,
        channels: int,
        format: str = "wav",
        frames: int | None = None,
    ) -> None:
        if format not in WRITE_FORMATS:
            raise ValueError(f"cannot write audio as {format!r}; choose from {', '.join(WRITE_FORMATS)}")
        most = FLAC_MAX_CHANNELS if format == "flac" else MAX_CHANNELS
        if not 1 <= channels <= most:
            raise ValueError(f"{format} audio holds 1 to {most} channels, not {channels}")
        if not 1 <= sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(f"sample rate {sample_rate} Hz is outside 1 to {MAX_SAMPLE_RATE}")
        self.sample_rate, self.channels, self.format = sample_rate, channels, format
        self._frames, self._written, self._closed = frames, 0, False
        if format == "wav" and frames is None and not _seekable(dest):
            raise ValueError("a WAV written to an unseekable stream needs its frame count up front (frames=)")
        self._owned: BinaryIO | None = None
        self._wave: wave.Wave_write | None = None
        self._container: av.container.OutputContainer | None = None
        if isinstance(dest, (str, os.PathLike)):
            dest = self._owned = open(dest, "wb")
        try:
            if format == "wav":
                self._wave = wave.open(dest, "wb")
                self._wave.setnchannels(channels)
                self._wave.setsampwidth(2)
                self._wave.setframerate(sample_rate)
                if frames is not None:
                    self._wave.setnframes(frames)
            else:
                self._container = av.open(dest, "w", format="flac")
                self._stream = self._container.add_stream("flac", rate=sample_rate, layout=f"{channels}c")
                self._stream.format = "s16"
        except BaseException:
            self._abandon()
            raise

    def write(self, chunk: np.ndarray) -> None:
        """Append ``chunk`` (``[channels, n]``, float, nominally in [-1, 1])."""
        if self._closed:
            raise ValueError("write to a closed AudioWriter")
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[0] != self.channels:
            raise ValueError(f"expected a [{self.channels}, n] chunk, got shape {list(chunk.shape)}")
        if not chunk.shape[1]:
            return
        interleaved = np.ascontiguousarray(_float_to_int16(chunk).T)
        if self.format == "wav":
            self._wave.writeframesraw(interleaved.tobytes())
        else:
            frame = av.AudioFrame.from_ndarray(interleaved.reshape(1, -1), format="s16", layout=f"{self.channels}c")
            frame.sample_rate, frame.pts = self.sample_rate, self._written
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self._written += chunk.shape[1]

    def close(self) -> None:
        """Finish the file (WAV header, FLAC trailer); raise if the announced ``frames`` was wrong."""
        if self._closed:
            return
        try:
            if self._frames is not None and self._written != self._frames:
                raise ValueError(f"announced {self._frames} frames but wrote {self._written}")
            if self.format == "wav":
                self._wave.close()
            else:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
        except BaseException:
            self._abandon()
            raise
        self._closed = True
        if self._owned is not None:
            self._owned.close()

    def _abandon(self) -> None:
        """Release everything after an error, quietly: the first exception is the one to report."""
        self._closed = True
        with contextlib.suppress(Exception):
            if self._wave is not None:
                self._wave.close()
            elif self._container is not None:
                self._container.close()
        if self._owned is not None:
            self._owned.close()


def _seekable(dest: str | os.PathLike[str] | BinaryIO) -> bool:
    """Whether ``dest`` can be rewound to patch a header (a path always can)."""
    return isinstance(dest, (str, os.PathLike)) or bool(getattr(dest, "seekable", lambda: False)())




def _flac_total_frames(codec: av.audio.codeccontext.AudioCodecContext) -> int:
    """Total frames from a FLAC STREAMINFO (FFmpeg's extradata); 0 when not FLAC or not stored."""
    streaminfo = codec.extradata or b""
    if codec.name != "flac" or len(streaminfo) < 34:
        return 0
    return int.from_bytes(streaminfo[13:18], "big") & (2**36 - 1)


_PCM_CODEC = re.compile(r"pcm_[su](8|16|24|32)")


def _bit_depth(codec: av.audio.codeccontext.AudioCodecContext) -> int:
    """Source bits per sample: FLAC's STREAMINFO, the PCM codec's name, an integer decoder's
    sample format; 16 for float and lossy sources, which have no bit depth."""
    streaminfo = codec.extradata or b""
    if codec.name == "flac" and len(streaminfo) >= 34:
        return ((streaminfo[12] & 1) << 4 | streaminfo[13] >> 4) + 1
    pcm = _PCM_CODEC.match(codec.name)
    if pcm:
        return int(pcm.group(1))
    if codec.format is not None and codec.format.name.rstrip("p") in ("u8", "s16", "s32"):
        return codec.format.bits
    return 16


def _pcm_to_float(data: bytes, width: int) -> np.ndarray:
    """Interleaved little-endian WAV PCM (8-bit unsigned, 16/24/32-bit signed) → float32 [-1, 1)."""
    if width == 1:
        return (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / 128
    if width == 3:  # to int32 with the 24 bits on top: the scale below then fits as for 32 bits
        widened = np.zeros((len(data) // 3, 4), np.uint8)
        widened[:, 1:] = np.frombuffer(data, np.uint8).reshape(-1, 3)
        samples, width = widened.view("<i4").ravel(), 4
    else:
        samples = np.frombuffer(data, f"<i{width}")
    return samples.astype(np.float32) * np.float32(2.0 ** (1 - 8 * width))


def _frame_to_float(frame: av.AudioFrame, channels: int) -> np.ndarray:
    """A decoded frame, planar or interleaved, integer or float → float32 ``[channels, n]`` in [-1, 1]."""
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        samples = samples.reshape(-1, channels).T
    bits = 8 * samples.dtype.itemsize
    if samples.dtype.kind == "f":
        samples = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(samples, -1.0, 1.0, out=samples)
    if samples.dtype.kind == "u":
        return (samples.astype(np.float32) - 2 ** (bits - 1)) * np.float32(2.0 ** (1 - bits))
    return samples.astype(np.float32) * np.float32(2.0 ** (1 - bits))


def _float_to_int16(chunk: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1], scale by 32768 and round: the inverse of reading (x / 32768), so a
    second write → read round trip reproduces the same int16 samples."""
    scaled = np.nan_to_num(chunk, nan=0.0, posinf=1.0, neginf=-1.0) * np.float32(32768.0)
    return np.clip(np.rint(scaled), -32768, 32767).astype("<i2")

