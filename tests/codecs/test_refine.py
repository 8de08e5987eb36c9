"""Encoder-side latent refinement (SGA) on real Kodak crops, measured from the real coded bytes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lnc.codecs
from lnc.codecs.image import refine
from lnc.codecs.image import MeanScaleHyperprior
from lnc.codecs.image.refine import refine_latents, training_lambda
from lnc.entropy.base import annealed_round
from lnc.entropy.errors import LncError
from lnc.tools.eval import image_metrics as metrics
from lnc.tools.cli import main
from lnc.tools.pipeline.image import decode_bytes, encode_array


@pytest.fixture(scope="module")
def codec():
    return lnc.codecs.load()


def _cost(rgb: np.ndarray, data: bytes, decoded: np.ndarray, lmbda: float) -> float:
    """The codec's objective measured on the file: whole-file bpp + λ·255²·MSE."""
    mse = float(np.mean((rgb.astype(np.float64) - decoded) ** 2)) / 255.0**2
    return 8 * len(data) / (rgb.shape[0] * rgb.shape[1]) + lmbda * 255.0**2 * mse


def test_annealed_round_is_a_soft_random_choice_of_the_two_neighbours():
    torch.manual_seed(0)
    v = (torch.rand(20000) * 6 - 3).requires_grad_()
    soft = annealed_round(v, 0.5)
    frac = (v - v.floor()).detach()
    assert bool(((soft >= v.floor()) & (soft <= v.floor() + 1)).all())
    # The nearer neighbour is the likelier: the expected value lies between v and round(v).
    assert float((soft - v.floor()).detach()[frac < 0.25].mean()) < 0.2
    soft.sum().backward()
    assert float(v.grad.abs().sum()) > 0
    clear = (frac - 0.5).abs() > 0.05  # a tie stays a coin toss at any temperature
    cold = annealed_round(v.detach(), 1e-2)
    assert torch.allclose(cold[clear], torch.round(v.detach())[clear], atol=1e-3)


def test_lambda_comes_from_the_weights_file(codec):
    assert training_lambda(codec, 4.0) == pytest.approx(0.0130)
    assert training_lambda(codec, 4.5) == pytest.approx(math.sqrt(0.0130 * 0.0250))
    with pytest.raises(LncError, match="λ"):
        training_lambda(MeanScaleHyperprior(8, 8, rate_points=2), 1.0)


@pytest.mark.parametrize("quality", [2.0, 6.0])
def test_refined_files_cost_less(kodim, codec, quality):
    rgb = np.ascontiguousarray(kodim(23)[:192, :288])  # 288 is no multiple of 64: padding is masked out
    lmbda = training_lambda(codec, quality)
    plain = encode_array(rgb, codec, quality)
    refined = encode_array(rgb, codec, quality, refine=25)
    cost_plain = _cost(rgb, plain, decode_bytes(plain, codec), lmbda)
    decoded = decode_bytes(refined, codec)
    cost_refined = _cost(rgb, refined, decoded, lmbda)
    assert cost_refined < 0.985 * cost_plain, (cost_plain, cost_refined)
    assert metrics.psnr(rgb, decoded) > 25
    if quality == 2.0:
        assert refined == encode_array(rgb, codec, quality, refine=25)  # seeded: repeatable


def test_bf16_refinement_codes_as_well_as_float32(kodim, codec, monkeypatch):
    rgb = np.ascontiguousarray(kodim(23)[:192, :288])
    lmbda = training_lambda(codec, 4.0)
    costs = {}
    for native in (False, True):  # forced both ways: bf16 autocast also runs where it is emulated
        monkeypatch.setattr(refine, "bf16_is_native", lambda device, native=native: native)
        data = encode_array(rgb, codec, 4.0, refine=25)
        costs[native] = _cost(rgb, data, decode_bytes(data, codec), lmbda)
    plain = encode_array(rgb, codec, 4.0)
    assert costs[True] == pytest.approx(costs[False], rel=1e-2), costs  # 0.7 % apart here
    assert costs[True] < 0.985 * _cost(rgb, plain, decode_bytes(plain, codec), lmbda)


def test_exact_decode_of_what_the_encoder_reconstructs(kodim, codec):
    rgb = np.ascontiguousarray(kodim(4)[:192, :256])
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    latents = refine_latents(codec, x, 3.0, 10)
    assert all(torch.equal(v, codec.state_dict()[k]) for k, v in before.items())  # weights untouched
    assert not any(m.training for m in codec.modules())  # the entropy models are back in evaluation
    with torch.no_grad():
        out = codec.compress(x, 3.0, latents)
        rounded = codec.forward_latents(latents, codec.quality_tensor(3.0, 1, x.device))["x_hat"]
        decoded = codec.decompress(out, 3.0)
    torch.testing.assert_close(decoded, rounded.clamp(0, 1), rtol=0, atol=1e-5)


def test_refine_flags(tmp_path, kodak_paths, capsys):
    out = tmp_path / "r.lnc"
    assert main(["encode", str(kodak_paths[0]), "-o", str(out), "-q", "1", "--refine", "2"]) == 0
    assert main(["decode", str(out), "-o", str(tmp_path / "r.png")]) == 0
    capsys.readouterr()
    assert main(["encode", str(kodak_paths[0]), "-o", str(tmp_path / "n.lnc"), "--refine", "-1"]) == 2
    assert main(["eval", "--codec", "jpeg", "--dataset", "kodak", "--limit", "1", "--refine", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("lnc: error: ") for line in err)
