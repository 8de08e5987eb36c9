"""Rate-distortion results in CompressAI's JSON format: read, write, pick a metric.

The format is ``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}``,
one list entry per rate point. Published files differ in details, so reading normalises them:
bare ``{"bpp", "psnr"}`` files (as MLIC ships them) are taken as results, ``psnr`` means
``psnr-rgb``, ``ms-ssim-db-rgb`` (CompressAI's paper curves) means ``ms-ssim-rgb-db``, and the
dB form of MS-SSIM is derived from ``ms-ssim-rgb`` where a file has only the latter.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lnc.entropy.errors import InputError
from lnc.tools.eval.image_metrics import ms_ssim_db

METRICS = ("psnr-rgb", "ms-ssim-rgb", "ms-ssim-rgb-db", "snr", "si-sdr", "mel-distance", "pesq-wb", "stoi",
           "psnr-y", "psnr-u", "psnr-v", "psnr-yuv")
METRIC_LABELS = {
    "psnr-rgb": "PSNR-RGB (dB)", "ms-ssim-rgb": "MS-SSIM-RGB", "ms-ssim-rgb-db": "MS-SSIM-RGB (dB)",
    "snr": "SNR (dB)", "si-sdr": "SI-SDR (dB)", "mel-distance": "mel distance (lower is better)",
    "pesq-wb": "PESQ-wb (MOS-LQO)", "stoi": "STOI",
    "psnr-y": "PSNR-Y (dB)", "psnr-u": "PSNR-U (dB)", "psnr-v": "PSNR-V (dB)", "psnr-yuv": "PSNR-YUV 6:1:1 (dB)",
}
LOWER_IS_BETTER = ("mel-distance",)
"""Metrics that fall as quality rises: BD figures take their negative as the quality."""
RATE_KEYS = ("bpp", "bitrate")
"""The rate of a curve: bits per pixel (images, video), else ``bitrate`` in kbit/s (audio)."""
RATE_LABELS = {"bpp": "Rate (bpp)", "bitrate": "Bit rate (kbit/s)"}
_ALIASES = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "ms-ssim-db-rgb": "ms-ssim-rgb-db"}


@dataclass
class RDCurve:
    """One codec's RD points: ``results[key][i]`` is rate point i, averaged over a dataset."""

    name: str
    description: str = ""
    results: dict[str, list[float]] = field(default_factory=dict)
    per_image: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def rate_key(self) -> str:
        """``"bpp"`` where the curve has it, else ``"bitrate"``."""
        return next(key for key in RATE_KEYS if key in self.results)

    def points(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(rate, metric values)`` sorted by rate (:attr:`rate_key`); ``ms-ssim-rgb-db`` derived
        from MS-SSIM if needed."""
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        values = self.results.get(metric)
        if values is None and metric == "ms-ssim-rgb-db" and "ms-ssim-rgb" in self.results:
            values = ms_ssim_db(np.asarray(self.results["ms-ssim-rgb"]))
        if values is None:
            have = ", ".join(k for k in METRICS if k in self.results) or "none"
            raise InputError(f"{self.name}: no {metric} values (has: {have})")
        rate = np.asarray(self.results[self.rate_key], dtype=np.float64)
        order = np.argsort(rate, kind="stable")
        return rate[order], np.asarray(values, dtype=np.float64)[order]

    def to_json(self) -> dict:
        """The CompressAI-format dictionary; ``per-image`` only when per-image values were kept."""
        out = {"name": self.name, "description": self.description, "results": self.results}
        if self.per_image:
            out["per-image"] = self.per_image
        return out


def _normalise(results: dict, source: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for key, values in results.items():
        if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
            out[_ALIASES.get(key, key)] = [float(v) for v in values]
    key = next((k for k in RATE_KEYS if out.get(k)), None)
    if key is None:
        raise InputError(f"{source}: no 'bpp' or 'bitrate' list in the results")
    rate = out[key]
    for name, values in out.items():
        if len(values) != len(rate):
            raise InputError(f"{source}: '{name}' has {len(values)} values but '{key}' has {len(rate)}")
    if not all(math.isfinite(b) and b > 0 for b in rate):
        raise InputError(f"{source}: {key} values must be finite and positive")
    return out


def load(path: str | Path) -> RDCurve:
    """Read a results JSON; the name defaults to the file name without suffix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'results'")
    results = data.get("results", data)
    if not isinstance(results, dict):
        raise InputError(f"{path}: 'results' is not an object")
    return RDCurve(
        name=str(data.get("name") or path.stem),
        description=str(data.get("description", "")),
        results=_normalise(results, path),
        per_image=data.get("per-image", {}),
    )


def text_table(rows: list[list[str]], left: int = 0) -> str:
    """Fixed-width text table: the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    aligned = ([cell.ljust(w) if j < left else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))]
               for row in rows)
    return "\n".join("  ".join(row) for row in aligned)


def dumps(curve: RDCurve) -> str:
    """The results JSON text (indented like CompressAI's)."""
    return json.dumps(curve.to_json(), indent=2) + "\n"


def save(curve: RDCurve, path: str | Path) -> None:
    """Write a results JSON."""
    Path(path).write_text(dumps(curve))
