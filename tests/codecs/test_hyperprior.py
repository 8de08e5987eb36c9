"""Training pass of the hyperprior codecs with mixed quantisation, on a real Kodak crop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lnc.codecs.image import MeanScaleHyperprior, ScaleHyperprior


def _crop(kodim) -> torch.Tensor:
    rgb = np.ascontiguousarray(kodim(7)[:128, :128])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


def _seeded(codec, x: torch.Tensor, q: torch.Tensor, seed: int = 1) -> dict:
    torch.manual_seed(seed)
    return codec(x, q)


@pytest.mark.parametrize("cls", [ScaleHyperprior, MeanScaleHyperprior])
def test_mixed_quantization_rounds_the_synthesis_input_only(cls, kodim):
    torch.manual_seed(0)
    codec = cls(N=16, M=24, rate_points=4, mixed_quantization=True).train()
    x, q = _crop(kodim), torch.tensor([3.0])
    mixed = _seeded(codec, x, q)

    # Replay the pass by hand: the bottleneck draws its noise first, so the same seed gives the same ẑ.
    torch.manual_seed(1)
    latents = codec.analyse(x, q)
    y, z = latents["y"], latents["z"]
    z_hat, _ = codec.entropy_bottleneck(z)
    scales, means = codec.hyper_side(z_hat, q)
    y_rounded = torch.round(y - means) + means if means is not None else torch.round(y)
    expected = codec.g_s(y_rounded * codec.gain.inverse_gain(q))
    torch.testing.assert_close(mixed["x_hat"], expected, rtol=0, atol=1e-6)

    codec.mixed_quantization = False
    noisy = _seeded(codec, x, q)
    for name in ("y", "z"):  # the rate proxy is the same noisy one
        assert torch.equal(mixed["likelihoods"][name], noisy["likelihoods"][name])
    assert (mixed["x_hat"] - noisy["x_hat"]).abs().max() > 1e-3  # but g_s saw other values

    # The distortion still trains the analysis transform, through the straight-through rounding.
    codec.mixed_quantization = True
    loss = torch.mean((_seeded(codec, x, q)["x_hat"] - x) ** 2)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in codec.g_a.parameters())


def test_mixed_quantization_leaves_evaluation_unchanged(kodim):
    torch.manual_seed(0)
    codec = MeanScaleHyperprior(N=16, M=24, rate_points=4, mixed_quantization=True).eval()
    x = _crop(kodim)
    with torch.no_grad():
        mixed = codec(x, 2.0)
        codec.mixed_quantization = False
        plain = codec(x, 2.0)
    assert torch.equal(mixed["x_hat"], plain["x_hat"])
