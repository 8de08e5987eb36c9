"""Audio rate–distortion: files through a codec's real path, audio file → coded file → waveform.

Rate is ``bitrate`` in kbit/s from every byte of the coded file (8·bytes·sample_rate / frames / 1000);
distortion is measured on the decoded waveform against the source, over all channels, by the
metrics of :mod:`lnc.tools.eval.audio_metrics`: SNR, SI-SDR (dB) and DAC's multi-scale mel
distance. Learned codecs go through the ``.lnc`` path of ``lnc encode`` and a decoded 16-bit WAV;
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
from lnc.tools.eval.audio_metrics import mel_distance, si_sdr_db, snr_db
from lnc.tools.eval.datasets import dataset_name
from lnc.tools.eval.image import LearnedCodec
from lnc.tools.io.audio import AUDIO_SUFFIXES, AudioInfo, AudioReader
from lnc.tools.pipeline.audio import decode_audio_to, encode_audio_to

KEYS = ("snr", "si-sdr", "mel-distance", "bitrate", "encoding_time", "decoding_time", "quality")


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


def _samples(source: str | Path | bytes) -> np.ndarray:
    with AudioReader(source) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1)


def measure(codec: AudioRateCodec, path: Path, quality: float) -> dict[str, float]:
    """One file at one quality: the whole coded file's rate, the distortion of its decoding, timings.

    ``encoding_time`` runs from the source file to the coded bytes, reading included, since the
    learned path streams the source through the encoder; ``decoding_time`` from the bytes to samples.
    """
    start = time.perf_counter()
    with AudioReader(path) as reader:
        data = codec.encode(reader, quality)
        info = reader.info
    encoded = time.perf_counter()
    decoded = codec.decode(data, info)
    done = time.perf_counter()
    reference = _samples(path)
    return {
        "snr": snr_db(reference, decoded),
        "si-sdr": si_sdr_db(reference, decoded),
        "mel-distance": mel_distance(reference, decoded, info.sample_rate),
        "bitrate": 8.0 * len(data) * info.sample_rate / info.frames / 1000.0,
        "encoding_time": encoded - start,
        "decoding_time": done - encoded,
        "quality": float(quality),
    }


def evaluate(
    codec: AudioRateCodec, paths: list[Path], qualities: tuple[float, ...], per_file: bool = False
) -> results.RDCurve:
    """The codec's RD curve over ``paths``: per-file values averaged per quality, sorted by bit rate."""
    from tqdm import tqdm

    files: dict[str, dict[str, list[float]]] = {}
    with tqdm(total=len(paths) * len(qualities), unit="file", desc=codec.label, file=sys.stderr, leave=False) as bar:
        for path in paths:
            rows = []
            for quality in qualities:
                rows.append(measure(codec, path, quality))
                bar.update()
            files[path.name] = {key: [row[key] for row in rows] for key in KEYS}
    means = {key: np.mean([v[key] for v in files.values()], axis=0) for key in KEYS}
    order = np.argsort(means["bitrate"], kind="stable")
    curve = results.RDCurve(
        name=codec.label,
        description=f"{codec.description}. {len(paths)} audio files from {dataset_name(paths[0].parent)}",
        results={key: [float(means[key][i]) for i in order] for key in KEYS},
    )
    if per_file:
        curve.per_image = {name: {k: [v[k][i] for i in order] for k in v} for name, v in files.items()}
    return curve


def summary_table(curve: results.RDCurve) -> str:
    """A fixed-width table of the averaged results, one row per rate point."""
    columns = [("quality", "quality", "{:g}"), ("bitrate", "kbit/s", "{:.3f}"), ("snr", "SNR dB", "{:.3f}"),
               ("si-sdr", "SI-SDR dB", "{:.3f}"), ("mel-distance", "mel dist", "{:.4f}"),
               ("encoding_time", "enc s", "{:.4f}"), ("decoding_time", "dec s", "{:.4f}")]
    rows = [[title for _, title, _ in columns]]
    rows += [[fmt.format(curve.results[key][i]) for key, _, fmt in columns] for i in range(len(curve.results["bitrate"]))]
    return results.text_table(rows)
