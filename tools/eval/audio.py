"""Audio rate–distortion: files through a codec's real path, audio file → coded file → waveform.

Rate is ``bitrate`` in kbit/s from every byte of the coded file (8·bytes·sample_rate / frames / 1000);
distortion is measured on the decoded waveform against the source, over all channels, by the
metrics of :mod:`lnc.tools.eval.audio_metrics`: SNR, SI-SDR (dB) and DAC's multi-scale mel
distance, and on speech PESQ wide-band and STOI. Learned codecs go through the ``.lnc`` path of ``lnc encode`` and a decoded 16-bit WAV;
classical ones through :mod:`lnc.tools.eval.audio_baselines`. Results follow CompressAI's JSON
format with ``bitrate`` in place of ``bpp``.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from lnc.entropy.chunked import open_reader
from lnc.entropy.errors import InputError
from lnc.tools.eval import results
from lnc.tools.eval.audio_metrics import SPEECH_RATE, mel_distance, pesq_wb, si_sdr_db, snr_db, stoi
from lnc.tools.eval.datasets import data_root, dataset_name, resolve
from lnc.tools.eval.image import LearnedCodec
from lnc.tools.io.audio import AUDIO_SUFFIXES, AudioInfo, AudioReader, AudioWriter
from lnc.tools.pipeline.audio import decode_audio_to, encode_audio_to

KEYS = ("snr", "si-sdr", "mel-distance", "bitrate", "encoding_time", "decoding_time", "quality")
SPEECH_KEYS = ("pesq-wb", "stoi")
AUDIO_SETS = {
    "speech": ("jfk.flac", "librosa_198-209-0000.hq.ogg", "vctk_p225_001_16k.wav"),
    "music": ("encodec_test_48k.wav", "librosa_Kevin_MacLeod_-_Vibe_Ace.hq.ogg"),
}
"""Named evaluation sets of ``$LNC_DATA/audio``: ``speech`` is coded as 16 kHz mono (each clip's
channels averaged and resampled, as speech codecs are compared) and rated with PESQ and STOI as
well; ``music`` is the stereo music at its own rates."""

Clip = tuple[str, "Path | bytes"]
"""A clip's name and its file (a path, or WAV bytes made for the evaluation)."""


class AudioRateCodec(Protocol):
    """What ``evaluate`` needs of an audio codec: a label, rate points, and a file round trip."""

    label: str
    qualities: tuple[float, ...]
    description: str

    def check_quality(self, quality: float) -> None: ...
    def encode(self, reader: AudioReader, quality: float) -> bytes: ...
    def decode(self, data: bytes, info: AudioInfo) -> np.ndarray: ...


class LearnedAudioCodec:
    """A learned audio codec run through the ``.lnc`` file path of ``lnc encode`` / ``lnc decode``."""

    def __init__(self, learned: LearnedCodec) -> None:
        self.codec = learned.codec
        self.label, self.qualities, self.description = learned.label, learned.qualities, learned.description
        self.check_quality = learned.check_quality

    def encode(self, reader: AudioReader, quality: float) -> bytes:
        out = io.BytesIO()
        encode_audio_to(out, reader, self.codec, quality)
        return out.getvalue()

    def decode(self, data: bytes, info: AudioInfo) -> np.ndarray:
        wav = io.BytesIO()
        with open_reader(data) as coded:
            decode_audio_to(coded, self.codec, wav, "wav")
        return _samples(wav.getvalue())


def audio_paths(folder: Path, limit: int | None = None) -> list[Path]:
    """The audio files of a folder in name order, the first ``limit`` of them if given."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return paths[:limit] if limit else paths


def as_speech(path: Path) -> bytes:
    """The clip as a 16-bit mono WAV at 16 kHz, in memory."""
    import torch
    from torchaudio.functional import resample

    with AudioReader(path) as reader:
        rate = reader.info.sample_rate
        mono = torch.from_numpy(np.concatenate(list(reader.chunks(1 << 20)), axis=1).mean(axis=0, keepdims=True))
    wave = (resample(mono, rate, SPEECH_RATE) if rate != SPEECH_RATE else mono).numpy()
    out = io.BytesIO()
    with AudioWriter(out, SPEECH_RATE, 1, "wav", frames=wave.shape[1]) as writer:
        writer.write(wave)
    return out.getvalue()


def audio_clips(dataset: str, limit: int | None = None) -> tuple[list[Clip], str, bool]:
    """The clips of ``dataset`` (a name of :data:`AUDIO_SETS` or a folder), how results name them,
    and whether they are speech."""
    if dataset not in AUDIO_SETS:
        folder = resolve(dataset)
        return [(p.name, p) for p in audio_paths(folder, limit)], dataset_name(folder), False
    folder = data_root() / "audio"
    paths = [folder / name for name in AUDIO_SETS[dataset]][:limit]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"audio set {dataset!r}: {', '.join(missing)} not in {folder} (set LNC_DATA)")
    if dataset == "speech":
        return [(p.name, as_speech(p)) for p in paths], "speech (audio/, as 16 kHz mono)", True
    return [(p.name, p) for p in paths], dataset, False


def _samples(source: str | Path | bytes) -> np.ndarray:
    with AudioReader(source) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1)


def measure(codec: AudioRateCodec, source: Path | bytes, quality: float, speech: bool = False) -> dict[str, float]:
    """One file at one quality: the whole coded file's rate, the distortion of its decoding, timings
    (and PESQ-wb and STOI for ``speech``).

    ``encoding_time`` runs from the source file to the coded bytes, reading included, since the
    learned path streams the source through the encoder; ``decoding_time`` from the bytes to samples.
    """
    start = time.perf_counter()
    with AudioReader(source) as reader:
        data = codec.encode(reader, quality)
        info = reader.info
    encoded = time.perf_counter()
    decoded = codec.decode(data, info)
    done = time.perf_counter()
    reference = _samples(source)
    row = {
        "snr": snr_db(reference, decoded),
        "si-sdr": si_sdr_db(reference, decoded),
        "mel-distance": mel_distance(reference, decoded, info.sample_rate),
        "bitrate": 8.0 * len(data) * info.sample_rate / info.frames / 1000.0,
        "encoding_time": encoded - start,
        "decoding_time": done - encoded,
        "quality": float(quality),
    }
    if speech:
        row.update({"pesq-wb": pesq_wb(reference, decoded, info.sample_rate),
                    "stoi": stoi(reference, decoded, info.sample_rate)})
    return row


def evaluate(
    codec: AudioRateCodec, clips: list[Clip], qualities: tuple[float, ...], per_file: bool = False,
    speech: bool = False, dataset: str = "",
) -> results.RDCurve:
    """The codec's RD curve over ``clips``: per-file values averaged per quality, sorted by bit rate."""
    from tqdm import tqdm

    keys = KEYS + SPEECH_KEYS if speech else KEYS
    files: dict[str, dict[str, list[float]]] = {}
    with tqdm(total=len(clips) * len(qualities), unit="file", desc=codec.label, file=sys.stderr, leave=False) as bar:
        for name, source in clips:
            rows = []
            for quality in qualities:
                rows.append(measure(codec, source, quality, speech))
                bar.update()
            files[name] = {key: [row[key] for row in rows] for key in keys}
    means = {key: np.mean([v[key] for v in files.values()], axis=0) for key in keys}
    order = np.argsort(means["bitrate"], kind="stable")
    curve = results.RDCurve(
        name=codec.label,
        description=f"{codec.description}. {len(clips)} audio files from {dataset}",
        results={key: [float(means[key][i]) for i in order] for key in keys},
    )
    if per_file:
        curve.per_image = {name: {k: [v[k][i] for i in order] for k in v} for name, v in files.items()}
    return curve


def summary_table(curve: results.RDCurve) -> str:
    """A fixed-width table of the averaged results, one row per rate point."""
    columns = [("quality", "quality", "{:g}"), ("bitrate", "kbit/s", "{:.3f}"), ("snr", "SNR dB", "{:.3f}"),
               ("si-sdr", "SI-SDR dB", "{:.3f}"), ("mel-distance", "mel dist", "{:.4f}"),
               ("pesq-wb", "PESQ-wb", "{:.3f}"), ("stoi", "STOI", "{:.4f}"),
               ("encoding_time", "enc s", "{:.4f}"), ("decoding_time", "dec s", "{:.4f}")]
    columns = [column for column in columns if column[0] in curve.results]
    rows = [[title for _, title, _ in columns]]
    rows += [[fmt.format(curve.results[key][i]) for key, _, fmt in columns] for i in range(len(curve.results["bitrate"]))]
    return results.text_table(rows)
