"""Image rate–distortion: every image through a codec's real path, image → file bytes → image.

Measured the way CompressAI's ``eval_model`` and ``bench`` report results: bpp = 8·bytes / (H·W) of
the whole file, PSNR and MS-SSIM on 8-bit RGB per image, then averaged over the dataset. Learned
codecs additionally report the bpp of their coded latent streams alone (``bpp-payload``), the figure
CompressAI's own bpp counts.
"""
from __future__ import annotations

import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Protocol

import numpy as np

from lnc.tools.eval import image_metrics as metrics, results
from lnc.tools.eval.datasets import dataset_name
from lnc.tools.io.image import read_rgb

# Order of the result lists, as in CompressAI's files; the extra keys follow.
_KEYS = (
    "psnr-rgb", "ms-ssim-rgb", "ms-ssim-rgb-db", "lpips", "bpp", "bpp-payload",
    "encoding_time", "decoding_time", "quality",
)


class RateCodec(Protocol):
    """What ``evaluate`` needs of a codec: a label, rate points, and a bytes round trip."""

    label: str
    qualities: tuple[float, ...]
    description: str

    def check_quality(self, quality: float) -> None: ...
    def encode(self, rgb: np.ndarray, quality: float) -> bytes: ...
    def decode(self, data: bytes) -> np.ndarray: ...
    def payload_bytes(self, data: bytes) -> int | None: ...


class LearnedCodec:
    """A learned codec from ``lnc.codecs``, run through the ``.lnc`` file path of ``lnc encode``."""

    def __init__(self, model: str | None, refine: int = 0) -> None:
        from lnc import codecs
        from lnc.tools.pipeline import image as image_pipeline

        self.codec = codecs.load(model)
        self._pipeline = image_pipeline
        self.refine = refine
        self.label = self.codec.name + (f" (refine {refine})" if refine else "")
        self.qualities = tuple(self.codec.quality_points)

    @property
    def description(self) -> str:
        import torch

        try:
            lnc_version = version("lnc")
        except PackageNotFoundError:
            lnc_version = "source tree"
        refined = f", {self.refine} steps of encoder-side latent refinement (SGA)" if self.refine else ""
        return (
            f"lnc {self.codec.name}{refined}, whole .lnc files (bpp-payload: latent streams only). "
            f"lnc {lnc_version}, torch {torch.__version__}"
        )

    def check_quality(self, quality: float) -> None:
        import torch

        self.codec.quality_tensor(quality, 1, torch.device("cpu"))  # LncError when out of range

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        return self._pipeline.encode_array(rgb, self.codec, quality, self.refine)

    def decode(self, data: bytes) -> np.ndarray:
        return self._pipeline.decode_bytes(data, self.codec)

    def payload_bytes(self, data: bytes) -> int:
        return self._pipeline.payload_bytes(data)


def measure(
    codec: RateCodec, rgb: np.ndarray, quality: float, lpips: metrics.Distance | None = None
) -> dict[str, float]:
    """One image at one quality: rate from the real bytes, distortion of the decoded image, timings."""
    start = time.perf_counter()
    data = codec.encode(rgb, quality)
    encoded = time.perf_counter()
    decoded = codec.decode(data)
    done = time.perf_counter()
    pixels = rgb.shape[0] * rgb.shape[1]
    ms_ssim = metrics.ms_ssim(rgb, decoded)
    row = {
        "psnr-rgb": metrics.psnr(rgb, decoded),
        "ms-ssim-rgb": ms_ssim,
        "ms-ssim-rgb-db": float(metrics.ms_ssim_db(ms_ssim)),
        "bpp": 8.0 * len(data) / pixels,
        "encoding_time": encoded - start,
        "decoding_time": done - encoded,
        "quality": float(quality),
    }
    payload = codec.payload_bytes(data)
    if payload is not None:
        row["bpp-payload"] = 8.0 * payload / pixels
    if lpips is not None:
        row["lpips"] = lpips(rgb, decoded)
    return row


def evaluate(
    codec: RateCodec,
    paths: list[Path],
    qualities: tuple[float, ...],
    lpips: metrics.Distance | None = None,
    per_image: bool = False,
) -> results.RDCurve:
    """The codec's RD curve over ``paths``: per-image values averaged per quality, sorted by bpp.

    ``ms-ssim-rgb-db`` of the average is taken from the averaged MS-SSIM, the way an anchor that
    lists only MS-SSIM converts, so curves stay comparable.
    """
    from tqdm import tqdm

    images: dict[str, dict[str, list[float]]] = {}
    total = len(paths) * len(qualities)
    with tqdm(total=total, unit="img", desc=codec.label, file=sys.stderr, leave=False) as bar:
        for path in paths:
            rgb = read_rgb(path)
            rows = []
            for quality in qualities:
                rows.append(measure(codec, rgb, quality, lpips))
                bar.update()
            images[path.name] = {key: [row[key] for row in rows] for key in _KEYS if key in rows[0]}

    means = {key: np.mean([v[key] for v in images.values()], axis=0) for key in next(iter(images.values()))}
    means["ms-ssim-rgb-db"] = metrics.ms_ssim_db(means["ms-ssim-rgb"])
    order = np.argsort(means["bpp"], kind="stable")
    curve = results.RDCurve(
        name=codec.label,
        description=f"{codec.description}. {len(paths)} images from {dataset_name(paths[0].parent)}",
        results={key: [float(means[key][i]) for i in order] for key in _KEYS if key in means},
    )
    if per_image:
        curve.per_image = {
            name: {key: [values[key][i] for i in order] for key in values} for name, values in images.items()
        }
    return curve


def summary_table(curve: results.RDCurve) -> str:
    """A fixed-width table of the averaged results, one row per rate point."""
    columns = [
        ("quality", "quality", "{:g}"), ("bpp", "bpp", "{:.4f}"), ("bpp-payload", "payload bpp", "{:.4f}"),
        ("psnr-rgb", "PSNR-RGB", "{:.3f}"), ("ms-ssim-rgb", "MS-SSIM", "{:.5f}"),
        ("ms-ssim-rgb-db", "MS-SSIM dB", "{:.3f}"), ("lpips", "LPIPS", "{:.4f}"),
        ("encoding_time", "enc s", "{:.4f}"), ("decoding_time", "dec s", "{:.4f}"),
    ]
    columns = [c for c in columns if c[0] in curve.results]
    rows = [[title for _, title, _ in columns]]
    for i in range(len(curve.results["bpp"])):
        rows.append([fmt.format(curve.results[key][i]) for key, _, fmt in columns])
    return results.text_table(rows)
