"""Audio rate–distortion: files through a learned codec's real ``.lnc`` path, measured per file.

Rate is ``bitrate`` in kbit/s from every byte of the file (8·bytes·sample_rate / frames / 1000);
distortion is the SNR in dB of the decoded 16-bit waveform against the source, over all channels.
Results follow CompressAI's JSON format with ``bitrate`` in place of ``bpp``.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

from lnc.codecs.base import AudioCodec
from lnc.entropy.chunked import open_reader
from lnc.entropy.errors import InputError
from lnc.tools.eval import results
from lnc.tools.eval.datasets import dataset_name
from lnc.tools.io.audio import AUDIO_SUFFIXES, AudioReader
from lnc.tools.pipeline.audio import decode_audio_to, encode_audio_to

KEYS = ("snr", "bitrate", "encoding_time", "decoding_time", "quality")


def audio_paths(folder: Path, limit: int | None = None) -> list[Path]:
    """The audio files of a folder in name order, the first ``limit`` of them if given."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}")
    return paths[:limit] if limit else paths


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of ``decoded`` against ``reference`` (same shape)."""
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {decoded.shape}")
    noise = float(np.mean((reference.astype(np.float64) - decoded) ** 2))
    signal = float(np.mean(reference.astype(np.float64) ** 2))
    return 10.0 * np.log10(max(signal, 1e-20) / max(noise, 1e-20))


def _samples(source: str | Path | bytes) -> np.ndarray:
    with AudioReader(source) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1)


def measure(codec: AudioCodec, path: Path, quality: float) -> dict[str, float]:
    """One file at one quality: the whole file's rate, the SNR of its decoded WAV, timings."""
    start = time.perf_counter()
    out = io.BytesIO()
    with AudioReader(path) as reader:
        encode_audio_to(out, reader, codec, quality)
        info = reader.info
    data = out.getvalue()
    encoded = time.perf_counter()
    wav = io.BytesIO()
    with open_reader(data) as coded:
        decode_audio_to(coded, codec, wav, "wav")
    done = time.perf_counter()
    return {
        "snr": snr_db(_samples(path), _samples(wav.getvalue())),
        "bitrate": 8.0 * len(data) * info.sample_rate / info.frames / 1000.0,
        "encoding_time": encoded - start,
        "decoding_time": done - encoded,
        "quality": float(quality),
    }


def evaluate(
    codec: AudioCodec, label: str, description: str, paths: list[Path], qualities: tuple[float, ...], per_file: bool = False
) -> results.RDCurve:
    """The codec's RD curve over ``paths``: per-file values averaged per quality, sorted by bit rate."""
    from tqdm import tqdm

    files: dict[str, dict[str, list[float]]] = {}
    with tqdm(total=len(paths) * len(qualities), unit="file", desc=label, file=sys.stderr, leave=False) as bar:
        for path in paths:
            rows = []
            for quality in qualities:
                rows.append(measure(codec, path, quality))
                bar.update()
            files[path.name] = {key: [row[key] for row in rows] for key in KEYS}
    means = {key: np.mean([v[key] for v in files.values()], axis=0) for key in KEYS}
    order = np.argsort(means["bitrate"], kind="stable")
    curve = results.RDCurve(
        name=label,
        description=f"{description}. {len(paths)} audio files from {dataset_name(paths[0].parent)}",
        results={key: [float(means[key][i]) for i in order] for key in KEYS},
    )
    if per_file:
        curve.per_image = {name: {k: [v[k][i] for i in order] for k in v} for name, v in files.items()}
    return curve


def summary_table(curve: results.RDCurve) -> str:
    """A fixed-width table of the averaged results, one row per rate point."""
    columns = [("quality", "quality", "{:g}"), ("bitrate", "kbit/s", "{:.3f}"), ("snr", "SNR dB", "{:.3f}"),
               ("encoding_time", "enc s", "{:.4f}"), ("decoding_time", "dec s", "{:.4f}")]
    rows = [[title for _, title, _ in columns]]
    rows += [[fmt.format(curve.results[key][i]) for key, _, fmt in columns] for i in range(len(curve.results["bitrate"]))]
    return results.text_table(rows)
