"""Video quality metrics of a decoded frame against its source, both 8-bit RGB, the way DCVC reports them.

PSNR-RGB is over all RGB samples (peak 255), as for images. PSNR-Y/U/V are on the 4:2:0 planes that
:func:`lnc.tools.io.video.rgb_to_yuv420` (BT.709, limited range) makes of the source and of the decoded
frame alike, so learned and classical codecs are measured on the same planes; PSNR-YUV weighs them
6:1:1, as in DCVC's test conditions (Li et al., 2024, arXiv:2402.17414). MS-SSIM-RGB is
:func:`lnc.tools.eval.image_metrics.ms_ssim`. A clip's value is the mean of its per-frame values,
as DCVC averages per-frame PSNR rather than pooling the squared error of the whole clip. Identical
frames have PSNR ``inf``, as in :mod:`lnc.tools.eval.image_metrics`.
"""
from __future__ import annotations

import math

import numpy as np

from lnc.tools.eval import image_metrics

PLANE_KEYS = ("psnr-y", "psnr-u", "psnr-v")
FRAME_KEYS = ("psnr-rgb", *PLANE_KEYS, "psnr-yuv", "ms-ssim-rgb")
"""What :func:`frame_metrics` measures; ``ms-ssim-rgb`` only on frames MS-SSIM can take."""


def plane_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 planes of one shape, peak 255."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def psnr_yuv(y: float, u: float, v: float) -> float:
    """The 6:1:1 weighted PSNR of the three planes (DCVC's PSNR-YUV)."""
    return (6.0 * y + u + v) / 8.0


def has_ms_ssim(height: int, width: int) -> bool:
    """Whether frames of this size are large enough for the five-scale MS-SSIM."""
    return min(height, width) >= image_metrics.MS_SSIM_MIN_SIDE


def frame_metrics(source: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """PSNR-RGB, PSNR-Y/U/V/YUV and (where the frame is large enough) MS-SSIM-RGB of one decoded frame."""
    from lnc.tools.io.video import rgb_to_yuv420

    row = {"psnr-rgb": image_metrics.psnr(source, decoded)}
    for key, a, b in zip(PLANE_KEYS, rgb_to_yuv420(source), rgb_to_yuv420(decoded)):
        row[key] = plane_psnr(a, b)
    row["psnr-yuv"] = psnr_yuv(*(row[key] for key in PLANE_KEYS))
    if has_ms_ssim(*source.shape[:2]):
        row["ms-ssim-rgb"] = image_metrics.ms_ssim(source, decoded)
    return row


def clip_metrics(sources: list[np.ndarray], decoded: list[np.ndarray]) -> tuple[dict[str, float], list[float]]:
    """The clip's mean of each per-frame metric, and its per-frame PSNR-RGB."""
    rows = [frame_metrics(a, b) for a, b in zip(sources, decoded, strict=True)]
    means = {key: float(np.mean([row[key] for row in rows])) for key in FRAME_KEYS if key in rows[0]}
    return means, [row["psnr-rgb"] for row in rows]
