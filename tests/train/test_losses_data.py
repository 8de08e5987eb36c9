"""Rate–distortion loss, learning-rate schedule and the image-folder data module, on real data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lnc.entropy.errors import InputError
from lnc.tools.eval.audio_metrics import mel_distance
from lnc.tools.io.audio import AudioReader
from lnc.train.audio_data import load_waveform
from lnc.train.data import center_window, random_window
from lnc.train.image_data import ImageFolderDataModule, list_images
from lnc.train.losses import RateDistortionLoss, bits_per_pixel, compressed_spectrum_distance
from lnc.train.module import lr_factor


def test_bits_per_pixel_sums_all_latents_per_sample():
    y = torch.full((2, 4, 2, 2), 0.5)
    z = torch.full((2, 1, 1, 1), 0.25)
    y[1] = 0.125
    bpp = bits_per_pixel({"y": y, "z": z}, num_pixels=8)
    assert torch.allclose(bpp, torch.tensor([(16 * 1 + 2) / 8, (16 * 3 + 2) / 8]))


def test_rd_loss_uses_compressai_scaling_and_per_sample_lambda(kodim):
    x = torch.from_numpy(np.array(kodim(1)[:64, :64])).permute(2, 0, 1)[None].float().div(255).repeat(2, 1, 1, 1)
    noise = torch.linspace(0.01, 0.05, 2).view(2, 1, 1, 1)
    x_hat = x + noise
    out = {"x_hat": x_hat, "likelihoods": {"y": torch.full((2, 8, 4, 4), 0.5)}}
    lmbda = torch.tensor([0.0018, 0.18])
    terms = RateDistortionLoss("mse")(out, x, lmbda)
    mse = noise.flatten() ** 2
    expected = (lmbda * 255**2 * mse + 128 / 4096).mean()
    assert math.isclose(float(terms["loss"]), float(expected), rel_tol=1e-5)
    assert math.isclose(float(terms["bpp"]), 128 / 4096, rel_tol=1e-6)
    assert math.isclose(float(terms["psnr"]), float((10 * torch.log10(1 / mse)).mean()), rel_tol=1e-5)


def test_ms_ssim_distortion_fits_small_crops_and_mixes(kodim):
    x = torch.from_numpy(np.array(kodim(3)[:128, :128])).permute(2, 0, 1)[None].float().div(255)
    torch.manual_seed(0)
    x_hat = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
    out = {"x_hat": x_hat, "likelihoods": {"y": torch.ones(1, 1, 1, 1)}}
    ms = RateDistortionLoss("ms-ssim")(out, x, 1.0)
    assert 0.5 < float(ms["ms-ssim"]) < 1.0
    assert math.isclose(float(ms["loss"]), 1.0 - float(ms["ms-ssim"]), rel_tol=1e-5)
    mixed = RateDistortionLoss({"mse": 0.5, "ms-ssim": 2.0})(out, x, 1.0)
    expected = 0.5 * 255**2 * float(mixed["mse"]) + 2.0 * (1.0 - float(ms["ms-ssim"]))
    assert math.isclose(float(mixed["loss"]), expected, rel_tol=1e-4)
    with pytest.raises(InputError):
        RateDistortionLoss("lpips")


def test_mel_distortion_is_the_evaluated_mel_distance_and_has_gradients(data_dir):
    """The audio loss's mel term is, per item, the distance ``lnc eval`` reports, and trains."""
    with AudioReader(data_dir / "audio" / "jfk.flac") as reader:
        wave, rate = next(reader.chunks(1 << 16))[:, 44100:44100 + 8192], reader.info.sample_rate
    x = torch.from_numpy(np.ascontiguousarray(wave))[None].repeat(2, 1, 1)
    torch.manual_seed(0)
    x_hat = (x + torch.tensor([0.001, 0.01]).view(2, 1, 1) * torch.randn_like(x)).requires_grad_()
    out = {"x_hat": x_hat, "likelihoods": {"y": torch.full((2, 4, 32), 0.5)}}
    terms = RateDistortionLoss({"mse": 1.0, "mel": 1000.0}, "audio", sample_rate=rate)(out, x, torch.tensor([1e-5, 1e-5]))
    reference = [mel_distance(x[i].numpy(), x_hat[i].detach().numpy(), rate) for i in range(2)]
    assert 0 < reference[0] < reference[1]
    assert math.isclose(float(terms["mel"]), sum(reference) / 2, rel_tol=1e-5)
    mse = (x_hat.detach() - x).pow(2).flatten(1).mean(1)
    expected = (1e-5 * (32768**2 * mse + 1000.0 * torch.tensor(reference)) + 128 / 8192).mean()
    assert math.isclose(float(terms["loss"]), float(expected), rel_tol=1e-4)
    terms["loss"].backward()
    assert torch.isfinite(x_hat.grad).all() and float(x_hat.grad.abs().sum()) > 0
    with pytest.raises(InputError, match="sample_rate"):
        RateDistortionLoss("mel", "audio")
    with pytest.raises(InputError, match="audio"):
        RateDistortionLoss("mel", "image", sample_rate=rate)


def test_compressed_spectrum_sees_the_phase_that_the_mel_distance_ignores(data_dir):
    """On real speech: a polarity flip leaves the mel distance at zero but is far by the compressed
    spectrum distance; small noise is near by both; the term enters the loss with its weight."""
    with AudioReader(data_dir / "audio" / "vctk_p225_001_16k.wav") as reader:
        wave, rate = next(reader.chunks(16384)), reader.info.sample_rate
    x = torch.from_numpy(wave)[None]
    torch.manual_seed(0)
    noisy = x + 0.01 * x.std() * torch.randn_like(x)  # 40 dB SNR
    flipped = compressed_spectrum_distance(-x, x)
    assert float(compressed_spectrum_distance(x, x)) == 0.0
    assert mel_distance(wave, -wave, rate) == 0.0 and float(flipped) > 0.05
    assert float(compressed_spectrum_distance(noisy, x)) < 0.1 * float(flipped)
    out = {"x_hat": noisy.requires_grad_(), "likelihoods": {"y": torch.full((1, 4, 32), 0.5)}}
    terms = RateDistortionLoss({"compressed-spectrum": 20.0}, "audio")(out, x, 2.0)
    expected = 2.0 * 20.0 * compressed_spectrum_distance(noisy.detach(), x) + 128 / 16384
    assert math.isclose(float(terms["loss"]), float(expected), rel_tol=1e-5)
    terms["loss"].backward()
    assert torch.isfinite(noisy.grad).all()
    with pytest.raises(InputError, match="audio"):
        RateDistortionLoss({"compressed-spectrum": 1.0}, "image")


def test_audio_files_are_resampled_to_the_data_rate(data_dir):
    """A 44.1 kHz stereo file loads at its own rate, or resampled to 16 kHz with its length scaled."""
    path = data_dir / "audio" / "jfk.flac"
    native = load_waveform(path, 2, None)
    low = load_waveform(path, 2, 16000)
    assert native.shape[0] == low.shape[0] == 2 and native.dtype == low.dtype == np.float32
    assert low.shape[1] == math.ceil(native.shape[1] * 16000 / 44100)
    # Band-limited speech keeps its energy through the resampler.
    assert math.isclose(float(np.mean(low**2)), float(np.mean(native**2)), rel_tol=0.05)
    assert load_waveform(path, 1, None).shape == (1, native.shape[1])


def test_lr_factor_warmup_multistep_cosine():
    assert lr_factor(0, "constant", 4, [], 0.1, 100) == 0.25
    assert lr_factor(3, "constant", 4, [], 0.1, 100) == 1.0
    assert [lr_factor(s, "multistep", 0, [10, 20], 0.1, 100) for s in (9, 10, 20)] == pytest.approx([1, 0.1, 0.01])
    assert lr_factor(0, "cosine", 0, [], 0.05, 100) == pytest.approx(1.0)
    assert lr_factor(50, "cosine", 0, [], 0.05, 100) == pytest.approx(0.525)
    assert lr_factor(100, "cosine", 0, [], 0.05, 100) == pytest.approx(0.05)


def test_windows_stay_inside_and_cover_all_positions():
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(400):
        (sh, sw) = random_window((10, 70), (8, 64), gen)
        assert 0 <= sh.start and sh.stop <= 10 and sw.stop - sw.start == 64 and sw.stop <= 70
        starts.add((sh.start, sw.start))
    assert starts == {(a, b) for a in range(3) for b in range(7)}
    assert center_window((100, 7), (50, 7)) == (slice(25, 75), slice(0, 7))
    (t,) = random_window((1000,), (100,), gen)  # the same helper cuts audio segments
    assert t.stop - t.start == 100


def test_image_folder_module_crops_real_images():
    dm = ImageFolderDataModule(
        ["train/images/mcmaster18"], val_fraction=0.2, crop_size=128, batch_size=3, num_workers=0,
        cache_images=True,
    )
    dm.setup("fit")
    train_files, val_files = dm.train_set.files, dm.val_set.files
    assert len(train_files) + len(val_files) == 18 and len(val_files) == 4
    assert not set(train_files) & set(val_files)
    batch = next(iter(dm.train_dataloader()))
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 128, 128)
    x = dm.on_after_batch_transfer(batch, 0)
    assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05
    # Validation crops are deterministic centre crops of the held-out files.
    v1 = next(iter(dm.val_dataloader()))
    v2 = next(iter(dm.val_dataloader()))
    assert torch.equal(v1, v2)
    # Cached and uncached datasets decode the same pixels.
    image = np.asarray(dm.val_set.images[0])
    uncached = ImageFolderDataModule(["train/images/mcmaster18"], val_fraction=0.2, crop_size=128, num_workers=0)
    uncached.setup("fit")
    assert torch.equal(uncached.val_set[0], v1[0])
    assert image.shape == (500, 500, 3)


def test_small_images_upscaled_or_skipped():
    # BSDS500 images are 481×321: under a 384 crop they are upscaled, or skipped.
    up = ImageFolderDataModule(["train/images/bsds500/val"], val_fraction=0.1, crop_size=384, num_workers=0)
    up.setup("fit")
    assert up.train_set[0].shape == (3, 384, 384)
    skip = ImageFolderDataModule(
        ["train/images/bsds500/val", "train/images/mcmaster18"], val_fraction=0.1, crop_size=384,
        num_workers=0, small_images="skip",
    )
    skip.setup("fit")
    assert all("mcmaster18" in str(f) for f in skip.train_set.files + skip.val_set.files)


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        list_images([tmp_path / "nope"])
    with pytest.raises(InputError):
        list_images([tmp_path])
