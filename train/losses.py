"""Rate–distortion objective L = λ·D + R, per sample, as in Ballé et al. 2018 (arXiv:1802.01436).

Conventions follow CompressAI so that published λ values mean the same thing here:
D = 255²·MSE for MSE training and D = 1 − MS-SSIM for MS-SSIM training (Wang et al. 2003);
R is the estimated rate in bits per pixel, −Σ log2 p / (H·W) over all latents of a sample.
Everything is computed in float32, whatever precision the codec ran in.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor, nn

from lnc.entropy.errors import InputError
from lnc.entropy.rate import bits_per_pixel

DISTORTIONS = ("mse", "ms-ssim")


def psnr(mse: Tensor, peak: float = 1.0) -> Tensor:
    """PSNR in dB of a mean squared error on a signal whose peak value is ``peak``."""
    return 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-10))


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
        distortion: ``"mse"``, ``"ms-ssim"``, or a mix ``{"mse": w1, "ms-ssim": w2}`` giving
            D = w1·255²·MSE + w2·(1 − MS-SSIM).
    """

    def __init__(self, distortion: str | Mapping[str, float] = "mse") -> None:
        super().__init__()
        weights = {distortion: 1.0} if isinstance(distortion, str) else dict(distortion)
        unknown = set(weights) - set(DISTORTIONS)
        if unknown or not weights:
            raise InputError(f"distortion must be one of {DISTORTIONS} or a mix of them, got {distortion!r}")
        self.weights = weights

    def forward(self, output: Mapping, target: Tensor, lmbda: Tensor | float) -> dict[str, Tensor]:
        """Loss and its terms (batch means) for the codec ``output`` of ``target``."""
        x_hat = output["x_hat"].float()
        x = target.float()
        bpp = bits_per_pixel(output["likelihoods"], x.shape[-2] * x.shape[-1])
        mse = (x_hat - x).pow(2).flatten(1).mean(1)
        terms = {"bpp": bpp.mean(), "mse": mse.mean(), "psnr": psnr(mse).mean()}
        distortion = torch.zeros_like(mse)
        if "mse" in self.weights:
            distortion = distortion + self.weights["mse"] * 255.0**2 * mse
        if "ms-ssim" in self.weights:
            similarity = ms_ssim_per_sample(x_hat, x)
            distortion = distortion + self.weights["ms-ssim"] * (1.0 - similarity)
            terms["ms-ssim"] = similarity.mean()
        terms["loss"] = (lmbda * distortion + bpp).mean()
        return terms

