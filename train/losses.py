"""Rate–distortion objective L = λ·D + R, per sample, as in Ballé et al. 2018 (arXiv:1802.01436).

Rate and distortion are normalised per modality, so that λ means what the field's published values
mean. Images follow CompressAI: R in bits per pixel, −Σ log2 p / (H·W) over all latents of a
sample, D = 255²·MSE for MSE training and D = 1 − MS-SSIM for MS-SSIM training (Wang et al. 2003).
Video counts bits per pixel over all frames (T·H·W), D = 255²·MSE. Audio counts bits per sample
frame (T), D = 32768²·MSE, the squared error in 16-bit PCM steps, and reports the SNR; it may add
DAC's multi-scale mel distance (Kumar et al. 2023, arXiv:2306.06546; the one ``lnc eval`` reports),
which weighs errors by what is heard where MSE spends the bits on the loud low frequencies, and the
power-law compressed spectrum distance (``compressed-spectrum``, below), which keeps the phase that
the mel distance ignores. Everything is computed in float32, whatever precision the codec ran in.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor, nn

from lnc.entropy.errors import InputError
from lnc.entropy.rate import bits_per_pixel
from lnc.tools.eval.audio_metrics import mel_distances

DISTORTIONS = ("mse", "ms-ssim", "mel", "compressed-spectrum")
SPECTRUM_FFT = 512
"""FFT size (and Hann window) of the compressed-spectrum distance; hop a quarter of it."""
SPECTRUM_POWER = 0.3
"""Magnitudes are raised to this power: quiet bands weigh nearly as much as loud ones, as heard."""
RATE_KEYS = {"image": "bpp", "video": "bpp", "audio": "bits_per_sample"}
"""The name of the rate term per modality: what R is divided by."""
PEAKS = {"image": 255.0, "video": 255.0, "audio": 32768.0}
"""D = peak²·MSE: the squared error in steps of the 8-bit (images, video) or 16-bit (audio) output."""


def psnr(mse: Tensor, peak: float = 1.0) -> Tensor:
    """PSNR in dB of a mean squared error on a signal whose peak value is ``peak``."""
    return 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-10))


def compressed_spectrum_distance(x_hat: Tensor, x: Tensor) -> Tensor:
    """Per item of ``[B, C, T]`` waveforms: the mean squared distance between power-law compressed
    complex STFTs (``|S|^0.3 · S/|S|``) plus that between the compressed magnitudes, the loss that
    Braun & Tashev (2021, arXiv:2009.12286) found best for speech: sign- and phase-aware like MSE, so
    it trains the waveform coefficient by coefficient, yet the compression spreads the weight over
    the quiet bands as hearing does instead of over the loudest ones."""
    window = torch.hann_window(SPECTRUM_FFT, device=x.device)

    def compressed(signal: Tensor) -> tuple[Tensor, Tensor]:
        spectrum = torch.stft(signal.reshape(-1, signal.shape[-1]), SPECTRUM_FFT, SPECTRUM_FFT // 4,
                              window=window, return_complex=True)
        magnitude = spectrum.abs().clamp_min(1e-8)
        scaled = magnitude.pow(SPECTRUM_POWER)
        return scaled * spectrum / magnitude, scaled

    (complex_hat, magnitude_hat), (complex_ref, magnitude_ref) = compressed(x_hat), compressed(x)
    distance = (complex_hat - complex_ref).abs().pow(2) + (magnitude_hat - magnitude_ref).pow(2)
    return distance.reshape(x.shape[0], -1).mean(1)


def ms_ssim_per_sample(x_hat: Tensor, x: Tensor) -> Tensor:
    """MS-SSIM of each sample (5 scales); crops under 161 px get a smaller odd Gaussian window so that
    all five scales fit."""
    side = min(x.shape[-2:])
    win = min(11, 2 * ((side - 1) // 32) + 1)
    if win < 3:
        raise InputError(f"MS-SSIM needs crops of at least 33 px, got {side}")
    return ms_ssim(x_hat, x, data_range=1.0, size_average=False, win_size=win)


class RateDistortionLoss(nn.Module):
    """λ·D + R averaged over the batch, with λ a scalar or one value per sample (variable-rate training).

    Args:
        distortion: ``"mse"``, ``"ms-ssim"`` (images), ``"mel"`` (audio), or a mix
            ``{"mse": w1, "ms-ssim": w2}`` giving D = w1·255²·MSE + w2·(1 − MS-SSIM), or
            ``{"mse": w1, "mel": w2}`` giving D = w1·32768²·MSE + w2·mel distance (audio may add
            ``"compressed-spectrum"``, :func:`compressed_spectrum_distance`).
        modality: ``"image"``, ``"video"`` or ``"audio"``: what the rate is counted per and the
            peak of the distortion (module docstring).
        sample_rate: the training audio's rate, which the mel filters depend on (``"mel"`` only).
    """

    def __init__(
        self, distortion: str | Mapping[str, float] = "mse", modality: str = "image", sample_rate: int | None = None
    ) -> None:
        super().__init__()
        weights = {distortion: 1.0} if isinstance(distortion, str) else dict(distortion)
        unknown = set(weights) - set(DISTORTIONS)
        if unknown or not weights:
            raise InputError(f"distortion must be one of {DISTORTIONS} or a mix of them, got {distortion!r}")
        if modality not in RATE_KEYS:
            raise InputError(f"modality must be one of {tuple(RATE_KEYS)}, got {modality!r}")
        if "ms-ssim" in weights and modality != "image":
            raise InputError(f"MS-SSIM is a distortion of images, not of {modality}")
        if "compressed-spectrum" in weights and modality != "audio":
            raise InputError(f"the compressed-spectrum distance is a distortion of audio, not of {modality}")
        if "mel" in weights and (modality != "audio" or not sample_rate):
            raise InputError("the mel distance is a distortion of audio and needs the data's sample_rate")
        self.weights = weights
        self.modality = modality
        self.sample_rate = sample_rate

    def forward(self, output: Mapping, target: Tensor, lmbda: Tensor | float) -> dict[str, Tensor]:
        """Loss and its terms (batch means) for the codec ``output`` of ``target``."""
        x_hat = output["x_hat"].float()
        x = target.float()
        # Every dimension after the channels: H·W pixels, T·H·W pixels of a clip, T samples.
        rate = bits_per_pixel(output["likelihoods"], math.prod(x.shape[2:]))
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        terms = {RATE_KEYS[self.modality]: rate.mean(), "mse": mse.mean()}
        if self.modality == "audio":
            terms["snr"] = psnr(mse, peak=1.0).sub(psnr(x.pow(2).flatten(1).mean(1), peak=1.0)).mean()
        else:
            terms["psnr"] = psnr(mse).mean()
        distortion = torch.zeros_like(mse)
        if "mse" in self.weights:
            distortion = distortion + self.weights["mse"] * PEAKS[self.modality] ** 2 * mse
        if "ms-ssim" in self.weights:
            similarity = ms_ssim_per_sample(x_hat, x)
            distortion = distortion + self.weights["ms-ssim"] * (1.0 - similarity)
            terms["ms-ssim"] = similarity.mean()
        if "mel" in self.weights:
            mel = mel_distances(x, x_hat, self.sample_rate)
            distortion = distortion + self.weights["mel"] * mel
            terms["mel"] = mel.mean()
        if "compressed-spectrum" in self.weights:
            spectral = compressed_spectrum_distance(x_hat, x)
            distortion = distortion + self.weights["compressed-spectrum"] * spectral
            terms["compressed-spectrum"] = spectral.mean()
        terms["loss"] = (lmbda * distortion + rate).mean()
        return terms

