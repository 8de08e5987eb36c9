"""lnc.tools.io.audio on real files: exact info, exact chunks, round trips, one-line errors, bounded memory."""
from __future__ import annotations

import io
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from lnc.entropy.errors import InputError
from lnc.tools.io.audio import AudioInfo, AudioReader, AudioWriter, is_audio_path

WAV = "vctk_p225_001_16k.wav"
FLAC = "jfk.flac"
OGG = "librosa_198-209-0000.hq.ogg"


@pytest.fixture(scope="module")
def audio_dir(data_dir: Path) -> Path:
    return data_dir / "audio"


def read_all(source: Path | bytes, frames_per_chunk: int = 4096) -> np.ndarray:
    with AudioReader(source) as reader:
        return np.concatenate(list(reader.chunks(frames_per_chunk)), axis=1)


def wave_reference(path: Path) -> tuple[int, int, int, np.ndarray]:
    """Rate, channels, frames and [channels, n] int16 samples of a 16-bit WAV, by the stdlib."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        rate, channels, frames = w.getframerate(), w.getnchannels(), w.getnframes()
        samples = np.frombuffer(w.readframes(frames), "<i2").reshape(-1, channels).T
    return rate, channels, frames, samples


def pyav_reference(path: Path) -> tuple[int, np.ndarray]:
    """Rate and float32 [channels, n] samples by a full PyAV decode, converted by swresample."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
        planes = [f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)]
        planes += [f.to_ndarray() for f in resampler.resample(None)]
        return stream.rate, np.concatenate(planes, axis=1)


def test_wav_info_and_samples_match_the_wave_module(audio_dir: Path) -> None:
    rate, channels, frames, samples = wave_reference(audio_dir / WAV)
    with AudioReader(audio_dir / WAV) as reader:
        assert reader.info == AudioInfo(rate, channels, frames, 16, "wav")
    np.testing.assert_array_equal(read_all(audio_dir / WAV), samples / np.float32(32768))


def test_flac_info_matches_a_full_pyav_decode(audio_dir: Path) -> None:
    rate, samples = pyav_reference(audio_dir / FLAC)
    streaminfo = (audio_dir / FLAC).read_bytes()[8:42]  # after "fLaC" and the block header
    with AudioReader(audio_dir / FLAC) as reader:
        info = reader.info
    assert (info.sample_rate, info.channels, info.frames) == (rate, samples.shape[0], samples.shape[1])
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.bit_depth == ((streaminfo[12] & 1) << 4 | streaminfo[13] >> 4) + 1 == 24
    assert info.format == "flac"
    np.testing.assert_array_equal(read_all(audio_dir / FLAC), samples)


@pytest.mark.parametrize(
    ("name", "frames_per_chunk"),
    [(WAV, 1), (WAV, 1000), (WAV, 10**7)] + [(name, n) for name in (FLAC, OGG) for n in (1000, 44100, 10**7)],
)
def test_chunks_have_the_asked_length_and_concatenate_to_the_full_decode(
    audio_dir: Path, name: str, frames_per_chunk: int
) -> None:
    full = pyav_reference(audio_dir / name)[1]
    with AudioReader(audio_dir / name) as reader:
        chunks = list(reader.chunks(frames_per_chunk))
        assert sum(c.shape[1] for c in chunks) == reader.info.frames == full.shape[1]
    assert all(c.shape == (full.shape[0], frames_per_chunk) for c in chunks[:-1])
    assert 1 <= chunks[-1].shape[1] <= frames_per_chunk
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for c in chunks)
    joined = np.concatenate(chunks, axis=1)
    assert joined.min() >= -1 and joined.max() <= 1
    np.testing.assert_array_equal(joined, np.clip(full, -1, 1))


def test_chunks_can_be_read_twice(audio_dir: Path) -> None:
    with AudioReader(audio_dir / FLAC) as reader:
        first = np.concatenate(list(reader.chunks(5000)), axis=1)
        again = np.concatenate(list(reader.chunks(7777)), axis=1)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", [WAV, FLAC, OGG])
def test_reading_from_bytes_equals_reading_the_path(audio_dir: Path, name: str) -> None:
    path = audio_dir / name
    with AudioReader(path) as from_path, AudioReader(path.read_bytes()) as from_bytes:
        assert from_bytes.info == from_path.info
    np.testing.assert_array_equal(read_all(path.read_bytes()), read_all(path))


def test_wav_round_trip_is_int16_exact(audio_dir: Path, tmp_path: Path) -> None:
    with AudioReader(audio_dir / FLAC) as reader:  # 24-bit stereo: real quantisation happens
        info = reader.info
        with AudioWriter(tmp_path / "once.wav", info.sample_rate, info.channels, format="wav") as writer:
            for chunk in reader.chunks(10000):
                writer.write(chunk)
    original, once = read_all(audio_dir / FLAC), read_all(tmp_path / "once.wav")
    assert once.shape == original.shape
    assert np.abs(once - original).max() <= 1 / 32768
    rate, channels, frames, first_ints = wave_reference(tmp_path / "once.wav")
    assert (rate, channels, frames) == (info.sample_rate, info.channels, info.frames)

    buffer = io.BytesIO()  # the second pass goes to a file object
    with AudioWriter(buffer, rate, channels) as writer:
        writer.write(once)
    (tmp_path / "twice.wav").write_bytes(buffer.getvalue())
    np.testing.assert_array_equal(wave_reference(tmp_path / "twice.wav")[3], first_ints)


@pytest.mark.parametrize("to", ["path", "file object"])
def test_flac_round_trip_is_bit_exact(audio_dir: Path, tmp_path: Path, to: str) -> None:
    rate, channels, frames, ints = wave_reference(audio_dir / WAV)
    dest = tmp_path / "out.flac"
    with open(dest, "wb") as file, AudioWriter(dest if to == "path" else file, rate, channels, format="flac") as writer:
        for start in range(0, frames, 3000):
            writer.write(ints[:, start : start + 3000] / np.float32(32768))
    with AudioReader(dest) as reader:
        assert reader.info == AudioInfo(rate, channels, frames, 16, "flac")
    np.testing.assert_array_equal(np.rint(read_all(dest) * 32768).astype(np.int16), ints)


class Pipe(io.RawIOBase):
    """An unseekable binary stream, like stdout into a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:
        self.data += bytes(b)
        return len(b)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_writing_to_an_unseekable_stream(audio_dir: Path, fmt: str) -> None:
    samples = read_all(audio_dir / WAV)
    pipe = Pipe()
    with AudioWriter(pipe, 16000, 1, format=fmt, frames=samples.shape[1]) as writer:
        for start in range(0, samples.shape[1], 5000):
            writer.write(samples[:, start : start + 5000])
    with AudioReader(bytes(pipe.data)) as reader:  # FLAC: no total in STREAMINFO, so counted
        assert reader.info.frames == samples.shape[1]
    np.testing.assert_array_equal(read_all(bytes(pipe.data)), samples)


def test_writer_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="frame count up front"):
        AudioWriter(Pipe(), 16000, 1)
    with pytest.raises(ValueError, match="announced 10 frames but wrote 5"):
        with AudioWriter(io.BytesIO(), 16000, 1, frames=10) as writer:
            writer.write(np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[2, n\] chunk"):
        with AudioWriter(io.BytesIO(), 16000, 2) as writer:
            writer.write(np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="choose from wav, flac"):
        AudioWriter(io.BytesIO(), 16000, 1, format="mp3")


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_writer_lets_exceptions_propagate(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(KeyError, match="caller failed"):
        with AudioWriter(tmp_path / f"x.{fmt}", 16000, 1, format=fmt) as writer:
            writer.write(np.zeros((1, 100), np.float32))
            raise KeyError("caller failed")


def test_writer_clips_and_rounds(tmp_path: Path) -> None:
    x = np.array([[-2.0, -1.0, -0.3 / 32768, 0.7 / 32768, 0.99999, 1.0, 3.0, np.nan]], np.float32)
    with AudioWriter(tmp_path / "clip.wav", 8000, 1) as writer:
        writer.write(x)
    ints = wave_reference(tmp_path / "clip.wav")[3][0]
    assert ints.tolist() == [-32768, -32768, 0, 1, 32767, 32767, 32767, 0]


def broken_inputs(audio_dir: Path, tmp_path: Path) -> dict[str, Path]:
    wav = (audio_dir / WAV).read_bytes()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "cut header.wav").write_bytes(wav[:30])
    (tmp_path / "noise.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    for name, channels, rate in [("many channels.wav", 100, 16000), ("absurd rate.wav", 1, 2_000_000)]:
        with wave.open(str(tmp_path / name), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(bytes(2 * channels * 10))
    return {
        "png": audio_dir.parent / "kodak" / "kodim01.png",
        "empty": tmp_path / "empty.wav",
        "truncated header": tmp_path / "cut header.wav",
        "noise": tmp_path / "noise.flac",
        "too many channels": tmp_path / "many channels.wav",
        "absurd sample rate": tmp_path / "absurd rate.wav",
        "missing": tmp_path / "missing.wav",
    }


@pytest.mark.parametrize(
    "case", ["png", "empty", "truncated header", "noise", "too many channels", "absurd sample rate", "missing"]
)
def test_unreadable_input_is_one_line_naming_the_file(audio_dir: Path, tmp_path: Path, case: str) -> None:
    path = broken_inputs(audio_dir, tmp_path)[case]
    sources: list[tuple[Path | bytes, str]] = [(path, str(path))]
    if path.exists():
        sources.append((path.read_bytes(), "stdin"))
    for source, name in sources:
        with pytest.raises(InputError) as caught:
            AudioReader(source)
        message = str(caught.value)
        assert message.startswith(f"cannot read audio {name}: ")
        assert "\n" not in message and " at 0x" not in message and "<" not in message


def test_truncated_samples_read_as_what_is_there(audio_dir: Path) -> None:
    wav = (audio_dir / WAV).read_bytes()
    full = read_all(wav)
    with AudioReader(wav[:1001]) as reader:
        cut = np.concatenate(list(reader.chunks(100)), axis=1)
        assert cut.shape[1] == reader.info.frames < full.shape[1]
    np.testing.assert_array_equal(cut, full[:, : cut.shape[1]])


def test_a_flac_cut_short_fails_while_streaming(audio_dir: Path) -> None:
    flac = (audio_dir / FLAC).read_bytes()
    with AudioReader(flac[: len(flac) // 2]) as reader:  # STREAMINFO still announces every frame
        with pytest.raises(InputError, match="^cannot read audio stdin: "):
            for _ in reader.chunks(4096):
                pass


def test_is_audio_path() -> None:
    for name in ["a.wav", "b.FLAC", "c.ogg", "d.oga", "e.mp3", "f.opus", "x/y.m4a"]:
        assert is_audio_path(name)
    for name in ["kodim01.png", "a.lnc", "wav", "a.wav.txt", "-"]:
        assert not is_audio_path(name)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_ten_minutes_stream_in_bounded_memory(audio_dir: Path, tmp_path: Path, fmt: str) -> None:
    clip = read_all(audio_dir / WAV)
    repeats = -(-600 * 16000 // clip.shape[1])  # ten minutes at 16 kHz: 38 MB as float32
    path = tmp_path / f"long.{fmt}"
    with AudioWriter(path, 16000, 1, format=fmt) as writer:
        for _ in range(repeats):
            writer.write(clip)

    tracemalloc.start()  # numpy registers its buffers with tracemalloc
    try:
        with AudioReader(path) as reader:
            frames = reader.info.frames
            total, energy = 0, 0.0
            for chunk in reader.chunks(16000):  # one second
                total += chunk.shape[1]
                energy += float(np.square(chunk, dtype=np.float64).sum())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames == total == repeats * clip.shape[1]
    assert energy == pytest.approx(repeats * float(np.square(clip, dtype=np.float64).sum()))
    assert peak < 2_000_000, f"peak {peak} bytes while streaming a {path.stat().st_size}-byte file"
