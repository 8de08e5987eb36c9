"""PSNR, MS-SSIM and LPIPS on real Kodak pixels, against hand-computed values."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
import torchvision

from lnc.entropy.errors import InputError
from lnc.tools.eval import image_metrics as metrics


def test_psnr_of_a_constant_offset_is_20_log10_of_255_over_the_offset(kodim) -> None:
    a = np.clip(kodim(3), 0, 250)
    assert metrics.psnr(a, a + 5) == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)


def test_psnr_averages_squared_error_over_pixels_and_channels() -> None:
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # one of 12 samples off by 12: MSE = 144 / 12 = 12
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 12), abs=1e-12)
    assert metrics.psnr(a, a) == math.inf


def test_psnr_rejects_mismatched_shapes(kodim) -> None:
    with pytest.raises(InputError, match="shapes"):
        metrics.psnr(kodim(1), kodim(4))  # landscape vs portrait


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise(kodim) -> None:
    a = kodim(7)[:256, :384]
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(0)
    scores = []
    for sigma in (2, 8, 32):
        noisy = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        scores.append(metrics.ms_ssim(a, noisy))
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.3
    assert metrics.ms_ssim(noisy, a) == pytest.approx(scores[2], abs=1e-6)  # symmetric


def test_ms_ssim_refuses_images_too_small_for_five_scales(kodim) -> None:
    crop = kodim(1)[:160, :300]
    with pytest.raises(InputError, match="at least 161x161"):
        metrics.ms_ssim(crop, crop)


def test_ms_ssim_db_maps_0_9_and_0_99_to_10_and_20_db() -> None:
    assert metrics.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert metrics.ms_ssim_db(np.array([0.99, 0.999])) == pytest.approx([20.0, 30.0])


def test_lpips_without_backbone_weights_says_so_and_downloads_nothing(
    data_dir, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_download(*args, **kwargs):
        raise AssertionError("LPIPS tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_download, raising=False)
    distance, reason = metrics.load_lpips(data_dir, "alex")
    assert distance is None
    assert "ImageNet backbone weights for alex not found" in reason
    assert "alexnet-owt-7be5be79.pth" in reason


def test_lpips_with_a_local_backbone_is_zero_for_equal_images_and_grows_with_noise(
    data_dir, kodim, tmp_path, monkeypatch
) -> None:
    # A stand-in backbone file (seeded, untrained AlexNet) where torchvision would cache the real one:
    # this checks the offline loading path, not LPIPS's calibrated values.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    root = tmp_path / "data"
    (root / "weights" / "lpips_v0.1").mkdir(parents=True)
    shutil.copy(data_dir / "weights" / "lpips_v0.1" / "alex.pth", root / "weights" / "lpips_v0.1")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), root / "weights" / "alexnet-owt-7be5be79.pth")

    distance, reason = metrics.load_lpips(root, "alex")
    assert reason == ""
    a = kodim(5)[:256, :256]
    rng = np.random.default_rng(1)
    near, far = (np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (4, 40))
    assert distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert 0 < distance(a, near) < distance(a, far)


def test_lpips_rejects_unknown_backbones(data_dir) -> None:
    with pytest.raises(InputError, match="backbone"):
        metrics.load_lpips(data_dir, "resnet")
