"""Image quality metrics on 8-bit RGB, computed the way CompressAI reports them.

PSNR and MS-SSIM are measured on the decoded 8-bit RGB image against the 8-bit original
(range 0-255), one value per image; datasets average the per-image values. MS-SSIM follows
Wang, Simoncelli & Bovik (2003, "Multiscale structural similarity for image quality
assessment") through pytorch-msssim, with data_range 255 as in CompressAI. LPIPS (Zhang et
al., 2018, arXiv:1801.03924) needs ImageNet backbone weights that are never downloaded here:
``load_lpips`` finds them on disk or says why not.

torch is imported on first use, so the commands that only read results start fast.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import numpy as np

from lnc.entropy.errors import InputError

# pytorch-msssim's five-scale pyramid with an 11-tap window needs the short side above this.
MS_SSIM_MIN_SIDE = 161

Distance = Callable[[np.ndarray, np.ndarray], float]
"""A perceptual distance between two HxWx3 uint8 images."""

# LPIPS backbone → the torchvision weights enum whose file the backbone is loaded from.
_LPIPS_BACKBONES = {
    "alex": "AlexNet_Weights",
    "vgg": "VGG16_Weights",
    "squeeze": "SqueezeNet1_1_Weights",
}


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"cannot compare images of shapes {a.shape} and {b.shape} (need equal HxWx3)")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two HxWx3 uint8 images, peak 255, MSE over all pixels and channels."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def _to_tensor(rgb: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM between two HxWx3 uint8 images (pytorch-msssim, data_range 255)."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    _check_pair(a, b)
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise InputError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} pixels, "
            f"got {a.shape[1]}x{a.shape[0]}"
        )
    return float(_ms_ssim(_to_tensor(a), _to_tensor(b), data_range=255.0).item())


def ms_ssim_db(value: float | np.ndarray) -> float | np.ndarray:
    """MS-SSIM on a decibel scale, -10·log10(1 - MS-SSIM), the way RD plots spread its top end."""
    return -10.0 * np.log10(1.0 - np.asarray(value, dtype=np.float64))


def _backbone_file(net: str) -> str:
    import torchvision.models as tvm

    url = getattr(tvm, _LPIPS_BACKBONES[net]).IMAGENET1K_V1.url
    return os.path.basename(urlparse(url).path)


def _backbone_dirs(data_root: Path) -> list[Path]:
    """Folders searched for LPIPS's ImageNet backbone: ``<data>/weights`` and torch's hub cache."""
    import torch

    return [data_root / "weights", Path(torch.hub.get_dir()) / "checkpoints"]


def load_lpips(data_root: Path, net: str = "alex") -> tuple[Distance | None, str]:
    """LPIPS v0.1 on uint8 RGB as ``(distance, "")``, or ``(None, reason)`` when weights are missing.

    The linear calibration layers come from ``<data>/weights/lpips_v0.1/<net>.pth``; the backbone
    is built untrained and filled from a local torchvision checkpoint, so nothing is downloaded.
    """
    if net not in _LPIPS_BACKBONES:
        raise InputError(f"unknown LPIPS backbone {net!r}; choose from {', '.join(_LPIPS_BACKBONES)}")
    linear = data_root / "weights" / "lpips_v0.1" / f"{net}.pth"
    if not linear.is_file():
        return None, f"LPIPS linear layers for {net} not found at {linear}"
    filename = _backbone_file(net)
    dirs = _backbone_dirs(data_root)
    found = next((d / filename for d in dirs if (d / filename).is_file()), None)
    if found is None:
        where = " or ".join(map(str, dirs))
        return None, f"ImageNet backbone weights for {net} not found in {where} ({filename})"

    import lpips
    import torch

    with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, model_path=str(linear), verbose=False)
    backbone = torch.load(found, map_location="cpu", weights_only=True)
    slices = model.net.state_dict()  # keys like "slice2.3.weight" for torchvision's "features.3.weight"
    model.net.load_state_dict({key: backbone["features." + key.split(".", 1)[1]] for key in slices})
    model.eval()

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        _check_pair(a, b)
        with torch.no_grad():
            return float(model(_to_tensor(a) / 127.5 - 1.0, _to_tensor(b) / 127.5 - 1.0).item())

    return distance, ""
