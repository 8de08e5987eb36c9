"""Shared layers work in 1-D, 2-D and 3-D with the same code, and the 2-D results are the ones the
shipped image codecs were trained with."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lnc.codecs.layers import GDN, GainUnit, apply_gain, conv, deconv
from lnc.codecs.layers.gain import regrid_log_gains


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_is_the_same_function_in_every_dimension(inverse):
    torch.manual_seed(0)
    gdn = GDN(6, inverse=inverse)
    with torch.no_grad():
        gdn.gamma.add_(torch.rand(6, 6) * 0.1)
        x = torch.randn(2, 6, 4, 5, 3)
        gamma = gdn.gamma_reparam(gdn.gamma)
        norm = torch.einsum("ij,bj...->bi...", gamma, x * x) + gdn.beta_reparam(gdn.beta)[:, None, None, None]
        expected = x * (norm.sqrt() if inverse else norm.rsqrt())  # y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)
        three = gdn(x)
        two = gdn(x.flatten(3)).reshape(x.shape)
        one = gdn(x.flatten(2)).reshape(x.shape)
    for result in (three, two, one):
        torch.testing.assert_close(result, expected, rtol=1e-5, atol=1e-6)


def test_gdn_in_2d_is_the_conv2d_the_shipped_weights_were_trained_with():
    torch.manual_seed(1)
    gdn, x = GDN(8), torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        gamma = gdn.gamma_reparam(gdn.gamma).reshape(8, 8, 1, 1)
        expected = x * torch.rsqrt(F.conv2d(x * x, gamma, gdn.beta_reparam(gdn.beta)))
        assert torch.equal(gdn(x), expected)  # bit for bit: decoded pixels must not move


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_strided_convolutions_resample_by_their_stride(dim):
    x = torch.randn(1, 3, *([16] * dim))
    down = conv(3, 5, kernel_size=5, stride=4, dim=dim)
    up = deconv(5, 3, kernel_size=5, stride=4, dim=dim)
    assert down(x).shape == (1, 5, *([4] * dim)) and up(down(x)).shape == x.shape
    with pytest.raises(ValueError):
        conv(3, 5, dim=4)


def test_gain_units_broadcast_over_any_number_of_dimensions():
    unit = GainUnit(4, 3, init_range=(0.5, 2.0))
    q = torch.tensor([1.0, 4.0])
    gains = unit.gain(q, 0)  # [B, C]: 0.5 at the lowest rate point, 2 at the highest
    torch.testing.assert_close(gains, torch.tensor([[0.5] * 3, [2.0] * 3]))
    for shape in ((2, 3, 10), (2, 3, 4, 5), (2, 3, 2, 4, 5)):
        t = torch.randn(shape)
        scaled = apply_gain(unit, t, q)
        torch.testing.assert_close(scaled, t * gains.reshape(2, 3, *([1] * (len(shape) - 2))))
        torch.testing.assert_close(apply_gain(unit, scaled, q, inverse=True), scaled * 1 / gains.reshape(
            2, 3, *([1] * (len(shape) - 2))))  # the inverse gains start as the gains' reciprocals
    assert apply_gain(None, t, q) is t


def test_regridded_gains_keep_trained_points_and_extend_the_line_in_log_lambda():
    lmbdas = [0.01, 0.02, 0.08]
    table = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 4.0]])
    new = regrid_log_gains(table, lmbdas, [0.005, 0.01, 0.04, 0.08, 0.16])
    # 0.005: one octave below, the first segment's slope; 0.04: halfway (in log λ) up the second
    # segment; 0.16: one octave above, the second segment's slope (half a unit per octave).
    torch.testing.assert_close(new, torch.tensor([[-1.0, -1.0], [0.0, 1.0], [1.5, 3.5], [2.0, 4.0], [2.5, 4.5]]))
    with pytest.raises(ValueError):
        regrid_log_gains(table, [0.02, 0.01, 0.08], lmbdas)
    with pytest.raises(ValueError):
        regrid_log_gains(table, lmbdas[:2], lmbdas)
