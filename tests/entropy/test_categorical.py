"""The categorical model: exact round trips of Kodak pixel values as a 256-symbol alphabet, rates
against the empirical entropy, learned and conditional likelihoods, and its errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lnc.entropy.categorical import CategoricalModel


def _symbols(kodim, n: int) -> torch.Tensor:
    """Kodak image ``n`` as 256-ary symbols ``[3, H * W]`` (one row per colour channel)."""
    return torch.from_numpy(kodim(n).astype(np.int64)).reshape(-1, 3).T.contiguous()


def _entropy_bits(symbols: torch.Tensor, num_symbols: int = 256) -> float:
    """Total empirical (zeroth-order) entropy of ``symbols`` in bits."""
    counts = torch.bincount(symbols.reshape(-1), minlength=num_symbols).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * torch.log2(p)).sum()) * symbols.numel()


def test_million_kodak_pixels_round_trip_at_their_entropy(kodim):
    indices = _symbols(kodim, 1).reshape(1, -1)[:, :1_000_000]
    model = CategoricalModel(256, probs=torch.bincount(indices.reshape(-1), minlength=256).double())
    assert model.update() and not model.update()
    strings = model.compress(indices)
    assert len(strings) == 1
    assert torch.equal(model.decompress(strings, (1_000_000,)), indices)
    entropy = _entropy_bits(indices) / 8
    assert entropy <= len(strings[0]) <= entropy * 1.002 + 16
    likelihood_bits = float(-torch.log2(model(indices)).sum()) / 8
    assert likelihood_bits == pytest.approx(entropy, rel=1e-6)


@pytest.mark.slow
def test_ten_million_kodak_pixels_round_trip(kodim):
    indices = torch.stack([_symbols(kodim, n).reshape(-1) for n in range(1, 10)])  # 9 x 1179648
    model = CategoricalModel(256, probs=torch.bincount(indices.reshape(-1), minlength=256).double() + 1)
    model.update()
    strings = model.compress(indices)
    assert len(strings) == 9
    assert torch.equal(model.decompress(strings, indices.shape[1:]), indices)
    assert sum(map(len, strings)) <= _entropy_bits(indices) / 8 * 1.01


def test_learned_tables_per_channel_fit_and_round_trip(kodim):
    train = _symbols(kodim, 4)[:, ::32]  # [3, 12288], one table per colour channel
    channel = torch.arange(3)[:, None]
    model = CategoricalModel(256, num_tables=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.3)
    for _ in range(80):
        optimizer.zero_grad()
        bits = -torch.log2(model(train, table_indexes=channel)).sum()
        bits.backward()
        optimizer.step()
    fitted = sum(_entropy_bits(row) for row in train)
    assert float(bits.detach()) <= fitted * 1.01 < 8 * train.numel()  # the tables learned each channel

    model.update()
    images = torch.stack([_symbols(kodim, 4), _symbols(kodim, 5)])  # [2, 3, H * W]
    strings = model.compress(images, table_indexes=channel[None])
    assert len(strings) == 2
    assert torch.equal(model.decompress(strings, images.shape[1:], table_indexes=channel[None]), images)
    with torch.no_grad():
        likelihood_bits = float(-torch.log2(model(images, table_indexes=channel[None])).sum())
    assert sum(map(len, strings)) * 8 == pytest.approx(likelihood_bits, rel=0.01)


def test_conditional_logits_give_softmax_likelihoods_with_gradients():
    torch.manual_seed(0)
    model = CategoricalModel(16)
    indices = torch.randint(0, 16, (2, 5, 7))
    logits = torch.randn(2, 5, 7, 16, requires_grad=True)
    likelihoods = model(indices, logits=logits)
    expected = torch.softmax(logits, -1).gather(-1, indices[..., None])[..., 0]
    torch.testing.assert_close(likelihoods, expected)
    likelihoods.log().sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    with pytest.raises(ValueError):
        model(indices, logits=logits[..., :8])


def test_zero_probability_symbols_stay_codable():
    probs = torch.tensor([0.5, 0.0, 0.25, 0.25, 0.0])
    model = CategoricalModel(5, probs=probs)
    model.update()
    indices = torch.tensor([[0, 2, 3, 1, 4, 0, 0, 2]])
    assert torch.equal(model.decompress(model.compress(indices), (8,)), indices)
    assert float(model(indices)[0, 3]) == pytest.approx(1e-9)  # bounded, finite rate


def test_indices_outside_the_alphabet_are_value_errors():
    model = CategoricalModel(8, num_tables=2)
    model.update()
    for bad in (torch.tensor([[0, 8]]), torch.tensor([[-1, 0]])):
        with pytest.raises(ValueError, match="indices"):
            model.compress(bad)
        with pytest.raises(ValueError, match="indices"):
            model(bad)
    with pytest.raises(ValueError, match="integer"):
        model.compress(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="table"):
        model.compress(torch.tensor([[0, 1]]), table_indexes=torch.tensor(2))
    with pytest.raises(ValueError):
        CategoricalModel(3, probs=torch.tensor([0.5, -0.1, 0.6]))


def test_coding_needs_tables():
    model = CategoricalModel(8)
    with pytest.raises(RuntimeError, match="update"):
        model.compress(torch.zeros(1, 4, dtype=torch.int64))
    learned = F.softmax(model.logits.detach(), -1)
    assert torch.allclose(learned, torch.full((1, 8), 1 / 8))  # starts uniform
