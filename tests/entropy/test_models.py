"""lnc's entropy bottleneck and conditional models: CompressAI compatibility, exact round trips
through the range coder, rates, and the training-mode quantisers. Sources are Kodak residuals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck as RefBottleneck
from compressai.entropy_models import GaussianConditional as RefGaussian
from compressai.models.google import get_scale_table as compressai_scale_table

from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy import coder
from lnc.entropy.gaussian import GaussianConditional, LaplaceConditional, get_scale_table


def _pixels(kodim, n: int, size: int = 256) -> torch.Tensor:
    rgb = np.array(kodim(n)[:size, :size])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0)


def _residuals(kodim, n: int, size: int = 256) -> torch.Tensor:
    """Horizontal prediction residuals ``[1, 3, size, size - 1]``: a peaked, heavy-tailed source."""
    x = _pixels(kodim, n, size)
    return x[..., 1:] - x[..., :-1]


def _conditional_source(kodim, n: int, size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels with a local mean and a local scale in [0.11, 64], as a hyperprior would predict them."""
    x = _pixels(kodim, n, size) + 0.3  # off-integer values, so rounding around the means matters
    means = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    scales = F.avg_pool2d((x - means).abs(), 5, stride=1, padding=2, count_include_pad=False)
    return x, means, (2 * scales).clamp(0.11, 64)


def _fitted_reference(data: torch.Tensor, steps: int = 60) -> RefBottleneck:
    """A CompressAI bottleneck fitted a few steps to ``data`` (rate and aux loss), tables built."""
    torch.manual_seed(0)
    ref = RefBottleneck(data.size(1))
    optimizer = torch.optim.Adam(ref.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        _, likelihoods = ref(data, training=True)
        (-torch.log2(likelihoods).mean() + ref.loss()).backward()
        optimizer.step()
    ref._update_quantiles()
    ref.update(force=True)
    return ref.eval()


def _table_bits(model, symbols: torch.Tensor, indexes: torch.Tensor) -> float:
    """Ideal code length of in-range ``symbols`` under the model's quantised CDF tables."""
    cdf, offset = model._quantized_cdf.long(), model._offset.long()
    idx = indexes.reshape(-1).long()
    k = symbols.reshape(-1).long() - offset[idx]
    assert bool((k >= 0).all()) and bool((k < model._cdf_length.long()[idx] - 2).all()), "escapes in the source"
    freq = cdf[idx, k + 1] - cdf[idx, k]
    return float((model.precision - torch.log2(freq.double())).sum())


@pytest.fixture(scope="module")
def fitted(kodim):
    """(CompressAI bottleneck fitted to Kodak residuals, the residuals); tests must not modify it."""
    data = _residuals(kodim, 1)
    return _fitted_reference(data[..., ::4, ::4]), data


def _lnc_copy(ref: RefBottleneck) -> EntropyBottleneck:
    """lnc's bottleneck loaded from a CompressAI state dict, unchanged."""
    ours = EntropyBottleneck(ref.channels)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours.eval()


# -- CompressAI compatibility ----------------------------------------------------------------------


def test_bottleneck_state_dict_and_likelihoods_match_compressai(fitted):
    ref, data = fitted
    ours = _lnc_copy(ref)
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = data * 0.7 + 0.2  # not on the integer grid
    with torch.no_grad():
        for training in (False, True):
            torch.manual_seed(1)
            ref_hat, ref_lik = ref(x, training=training)
            torch.manual_seed(1)
            our_hat, our_lik = ours(x, training=training)
            torch.testing.assert_close(our_hat, ref_hat, atol=1e-5, rtol=0)
            torch.testing.assert_close(our_lik, ref_lik, atol=1e-5, rtol=0)
    assert float(ours.loss().detach()) == pytest.approx(float(ref.loss().detach()), rel=1e-6)


def test_bottleneck_loads_legacy_parameter_names(fitted):
    ref, data = fitted
    legacy = {}
    for key, value in ref.state_dict().items():
        kind, dot, i = key.partition(".")
        name = {"matrices": "_matrix", "biases": "_bias", "factors": "_factor"}.get(kind)
        legacy[f"{name}{i}" if dot and name else key] = value
    assert "_matrix0" in legacy and "matrices.0" not in legacy
    ours = EntropyBottleneck(3).eval()
    ours.load_state_dict(legacy, strict=True)
    torch.testing.assert_close(ours(data)[1], ref(data)[1], atol=1e-5, rtol=0)


def test_gaussian_state_dict_and_likelihoods_match_compressai(kodim):
    x, means, scales = _conditional_source(kodim, 3, 128)
    scales = scales * torch.empty_like(scales).uniform_(0.5, 1.5)  # also below the scale bound
    ref = RefGaussian(None)
    ref.update_scale_table(get_scale_table())
    ours = GaussianConditional(None)
    ours.load_state_dict(ref.state_dict(), strict=True)
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    assert torch.equal(ours.build_indexes(scales), ref.build_indexes(scales))
    for training in (False, True):
        for m in (None, means):
            torch.manual_seed(2)
            ref_hat, ref_lik = ref(x, scales, m, training=training)
            torch.manual_seed(2)
            our_hat, our_lik = ours(x, scales, m, training=training)
            torch.testing.assert_close(our_hat, ref_hat, atol=1e-5, rtol=0)
            torch.testing.assert_close(our_lik, ref_lik, atol=1e-5, rtol=0)


def test_table_buffers_of_another_size_load_into_updated_model(fitted):
    ref, _ = fitted
    ours = EntropyBottleneck(3)
    with torch.no_grad():
        ours.quantiles.copy_(torch.tensor([-1.0, 0.0, 1.0]).repeat(3, 1, 1))
    ours.update()
    assert ours._quantized_cdf.shape != ref._quantized_cdf.shape
    ours.load_state_dict(ref.state_dict())
    assert torch.equal(ours._quantized_cdf, ref._quantized_cdf)
    gaussian = GaussianConditional(get_scale_table(0.5, 8, 8))
    gaussian.update()
    reference = RefGaussian(None)
    reference.update_scale_table(get_scale_table())
    gaussian.load_state_dict(reference.state_dict())
    assert gaussian.scale_table.shape == (64,) and torch.equal(gaussian._cdf_length, reference._cdf_length)


# -- round trips and rates ------------------------------------------------------------------------


def test_bottleneck_round_trip_exact_and_rate_matches_compressai(fitted, kodim):
    ref, _ = fitted
    ours = _lnc_copy(ref)
    ours.update(force=True)
    x = torch.cat([_residuals(kodim, 7), _residuals(kodim, 19)]) * 0.9
    strings = ours.compress(x)
    assert len(strings) == 2
    x_hat = ours.decompress(strings, x.shape[2:])
    assert torch.equal(x_hat, ours(x)[0])
    medians = ours.broadcast_medians(4)
    assert torch.equal(ours.quantize(x_hat, "symbols", medians), ours.quantize(x, "symbols", medians))
    our_bytes = sum(map(len, strings))
    ref_bytes = sum(map(len, ref.compress(x)))
    assert our_bytes == pytest.approx(ref_bytes, rel=0.01)
    symbols = ours.quantize(x, "symbols", medians)
    ideal = _table_bits(ours, symbols, ours._channel_indexes(x.shape)) / 8
    assert ideal <= our_bytes <= ideal * 1.005 + 16


def test_bottleneck_escapes_round_trip(fitted):
    ours = _lnc_copy(fitted[0])
    x = torch.tensor([0.0, 3e6, -7e5, 1e9, -2.0e9, 1.0]).reshape(1, 3, 2)
    assert torch.equal(ours.decompress(ours.compress(x), (2,)), ours(x)[0])


@pytest.mark.parametrize("model_class", [GaussianConditional, LaplaceConditional])
def test_conditional_round_trip_exact(model_class, kodim):
    x, means, scales = _conditional_source(kodim, 5)
    x[0, 0, 0, :4] = torch.tensor([1e4, -3e5, 2.0e9, -2.0e9])  # far outside any table: escapes
    model = model_class(get_scale_table())
    assert model.update() and not model.update()
    indexes = model.build_indexes(scales)
    assert float(scales.min()) == pytest.approx(0.11) and float(scales.max()) == 64  # both ends covered
    strings = model.compress(x, indexes, means)
    x_hat = model.decompress(strings, indexes, means=means)
    assert torch.equal(x_hat, model.quantize(x, "dequantize", means))
    assert torch.equal(x_hat, model(x, scales, means, training=False)[0])


@pytest.mark.parametrize("table", [get_scale_table(), get_scale_table(max=64.0, levels=48), torch.tensor([0.5, 1.0, 8.0])])
def test_compiled_table_indexes_are_the_torch_expressions(table):
    """The coder's one-pass table search finds what ``searchsorted`` (clamped) does, also one ulp
    either side of an entry, below the first, beyond the last and for NaN; the offset bins are
    ``floor((mean - round(mean) + 1/2) K)`` with ties to even, as torch computes them."""
    generator = torch.Generator().manual_seed(0)
    scales = torch.cat([
        torch.exp(torch.empty(200_000).uniform_(-4, 7, generator=generator)),
        table, torch.nextafter(table, torch.zeros(1)), torch.nextafter(table, torch.full((1,), 1e9)),
        torch.tensor([1e-3, 1e9, float("inf"), float("nan")]),
    ])
    expected = torch.searchsorted(table, scales).clamp_(max=len(table) - 1)
    assert torch.equal(torch.from_numpy(coder.table_indexes(scales, table)).long(), expected)
    means = torch.cat([torch.empty(len(scales) - 6).uniform_(-40, 40, generator=generator),
                       torch.tensor([0.5, 1.5, -2.5, 0.4999999, 3.0625, -0.03125])])
    bins = (means - torch.round(means)).add(0.5).mul(16).floor().clamp(0, 15).long()
    indexes = torch.from_numpy(coder.table_indexes(scales, table, means, 16)).long()
    assert torch.equal(indexes, expected * 16 + bins)


def test_mean_offsets_code_integers_with_the_means_fraction(kodim):
    """With ``mean_offsets`` the values are rounded to integers, not around the means; the tables of
    each scale follow the mean's fractional offset, so the stream costs what the likelihoods say, and
    less than coding the same integers around rounded means."""
    x, means, scales = _conditional_source(kodim, 5)
    x, means, scales = x / 16, means / 16, (scales / 16).clamp(0.11, 64)  # scales where offsets matter
    x[0, 0, 0, :2] = torch.tensor([3e5, -2.0e9])  # escapes
    table = get_scale_table(max=64.0, levels=48)
    model = GaussianConditional(table, mean_offsets=16)
    assert model.update() and model._quantized_cdf.shape[0] == 48 * 16
    indexes = model.build_indexes(scales, means)
    strings = model.compress(x, indexes, means)
    x_hat = model.decompress(strings, indexes, means=means)
    assert torch.equal(x_hat, torch.round(x)) and torch.equal(x_hat, model(x, scales, means, training=False)[0])
    nbytes = sum(map(len, strings))
    inside = torch.ones_like(x, dtype=torch.bool)
    inside[0, 0, 0, :2] = False
    likelihoods = model(x, scales, means, training=False)[1]
    estimate = float(-torch.log2(likelihoods[inside]).sum()) / 8
    assert estimate <= nbytes <= estimate * 1.01
    # The same integers coded around their rounded means (one table per scale) cost more.
    plain = GaussianConditional(table)
    plain.update()
    rounded = torch.round(means)
    plain_bytes = sum(map(len, plain.compress(x_hat, plain.build_indexes(scales), rounded)))
    assert nbytes < 0.9 * plain_bytes, (nbytes, plain_bytes)
    with pytest.raises(ValueError, match="means"):
        model.build_indexes(scales)


def test_gaussian_rate_matches_compressai(kodim):
    x, means, scales = _conditional_source(kodim, 11)
    x = torch.cat([x, _conditional_source(kodim, 21)[0]])
    means = torch.cat([means, _conditional_source(kodim, 21)[1]])
    scales = torch.cat([scales, _conditional_source(kodim, 21)[2]])
    ours, ref = GaussianConditional(get_scale_table()), RefGaussian(None)
    ours.update()
    ref.update_scale_table(get_scale_table())
    indexes = ours.build_indexes(scales)
    our_bytes = sum(map(len, ours.compress(x, indexes, means)))
    ref_bytes = sum(map(len, ref.compress(x, indexes, means)))
    assert our_bytes == pytest.approx(ref_bytes, rel=0.01)
    ideal = _table_bits(ours, ours.quantize(x, "symbols", means), indexes) / 8
    assert ideal <= our_bytes <= ideal * 1.005 + 32


def test_laplace_rate_is_its_tables_and_likelihoods(kodim):
    x, means, scales = _conditional_source(kodim, 11)
    model = LaplaceConditional(get_scale_table())
    model.update()
    indexes = model.build_indexes(scales)
    nbytes = sum(map(len, model.compress(x, indexes, means)))
    ideal = _table_bits(model, model.quantize(x, "symbols", means), indexes) / 8
    assert ideal <= nbytes <= ideal * 1.005 + 16
    # Snapping scales up to the table costs little against the exact likelihoods.
    estimate = float(-torch.log2(model(x, scales, means, training=False)[1]).sum()) / 8
    assert estimate <= nbytes <= estimate * 1.03


def test_laplace_likelihood_is_the_laplace_mass():
    model = LaplaceConditional(get_scale_table(), likelihood_bound=0)
    y, mean, b = torch.tensor([3.0, -40.0, 0.0]), torch.tensor([0.5, 0.0, 0.2]), torch.tensor([2.0, 1.5, 0.3])
    y_hat, lik = model(y, b, mean, training=False)

    def cdf(v: float, m: float, s: float) -> float:
        return 0.5 * math.exp((v - m) / s) if v < m else 1 - 0.5 * math.exp(-(v - m) / s)

    expected = [cdf(v + 0.5, m, s) - cdf(v - 0.5, m, s) for v, m, s in zip(y_hat.tolist(), mean.tolist(), b.tolist())]
    # Relative precision everywhere, also 26 scales out in the tail (a mass of ~1e-12).
    torch.testing.assert_close(lik, torch.tensor(expected), rtol=1e-4, atol=0)


# -- tables: update semantics and errors ----------------------------------------------------------


def test_coding_without_tables_is_an_error():
    model = EntropyBottleneck(2)
    with pytest.raises(RuntimeError, match="update"):
        model.compress(torch.zeros(1, 2, 4, 4))
    gaussian = GaussianConditional(None)
    with pytest.raises(RuntimeError, match="update"):
        gaussian.decompress([b""], torch.zeros(1, 2, dtype=torch.int32))
    # Without a scale table, update() takes CompressAI's default one, as its models' update() does.
    assert gaussian.update() and gaussian.has_tables
    assert torch.equal(gaussian.scale_table, compressai_scale_table())
    explicit = GaussianConditional(get_scale_table())
    assert explicit.update()
    for name in ("_quantized_cdf", "_cdf_length", "_offset"):
        assert torch.equal(getattr(gaussian, name), getattr(explicit, name)), name


def test_update_is_idempotent_and_deterministic(fitted):
    a, b = _lnc_copy(fitted[0]), _lnc_copy(fitted[0])
    assert a.update(force=True) and not a.update()
    tables = [t.clone() for t in (a._quantized_cdf, a._cdf_length, a._offset)]
    assert a.update(force=True) and b.update(force=True)
    for t, u, v in zip(tables, (a._quantized_cdf, a._cdf_length, a._offset), (b._quantized_cdf, b._cdf_length, b._offset)):
        assert torch.equal(t, u) and torch.equal(t, v)
    g = GaussianConditional(get_scale_table())
    assert g.update() and not g.update_scale_table(get_scale_table(0.2, 10, 8))
    first = g._quantized_cdf.clone()
    assert g.update(force=True) and torch.equal(first, g._quantized_cdf)
    assert g.update_scale_table(get_scale_table(0.2, 10, 8), force=True) and g._quantized_cdf.size(0) == 8


def test_update_quantiles_by_bisection_matches_compressai(fitted):
    ref, data = fitted
    ours = _lnc_copy(ref)
    with torch.no_grad():
        ours.quantiles.copy_(torch.tensor([-10.0, 0.0, 10.0]).repeat(3, 1, 1))  # untrained quantiles
    ours.update(force=True, update_quantiles=True)
    torch.testing.assert_close(ours.quantiles, ref.quantiles, atol=2e-3, rtol=1e-4)
    assert float(ours.loss().detach()) < 0.1 * 3 * 3  # every quantile within ~0.1 logits of its target
    strings = ours.eval().compress(data)
    assert torch.equal(ours.decompress(strings, data.shape[2:]), ours(data)[0])


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        GaussianConditional([1.0, 0.5])
    with pytest.raises(ValueError):
        EntropyBottleneck(2, training_quantization="round")
    with pytest.raises(ValueError):
        EntropyBottleneck(2).quantize(torch.zeros(2), "floor")
    model = GaussianConditional(get_scale_table())
    model.update()
    strings = model.compress(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(ValueError):
        model.decompress(strings[:1], torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(ValueError):
        model.compress(torch.zeros(2, 3), torch.full((2, 3), 64, dtype=torch.int32))


# -- training-mode quantisers ---------------------------------------------------------------------


def test_noise_and_ste_training_modes(fitted):
    ref, data = fitted
    model = _lnc_copy(ref).train()
    x = (data * 0.37).requires_grad_()
    noisy, _ = model(x)
    offset = (noisy - x).detach()
    assert float(offset.abs().max()) <= 0.5 and float(offset.std()) == pytest.approx(12**-0.5, rel=0.02)
    assert not torch.equal(noisy, model(x)[0])  # fresh noise per call

    model.training_quantization = "ste"
    rounded, likelihoods = model(x)
    means = model.broadcast_medians(4)
    assert torch.equal(rounded.detach(), model.quantize(x.detach(), "dequantize", means))
    rounded.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))  # straight through
    x.grad = None
    (-torch.log2(likelihoods).sum()).backward()
    assert x.grad.abs().sum() > 0 and model.biases[0].grad is not None

    gaussian = GaussianConditional(None, training_quantization="ste")
    y = torch.randn(2, 4, 8, 8).mul(3).requires_grad_()
    mu = torch.randn(2, 4, 8, 8).requires_grad_()
    y_hat, _ = gaussian(y, torch.ones_like(y), mu)
    assert torch.equal(y_hat.detach(), torch.round(y - mu).add(mu).detach())
    y_hat.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y)) and torch.equal(mu.grad, torch.zeros_like(mu))
    assert torch.equal(gaussian(y, torch.ones_like(y), mu, training=False)[0], y_hat)
