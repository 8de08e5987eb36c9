"""Latent codecs compose: channel groups conditioned on earlier groups write one stream per item,
decode to what the encoder reconstructed, and cost what their likelihoods say."""
from __future__ import annotations

import torch

from lnc.codecs.latent import ChannelGroupsLatentCodec, GaussianConditionalLatentCodec
from lnc.entropy.coder import RangeDecoder, RangeEncoder
from lnc.entropy.gaussian import GaussianConditional

GROUPS = (2, 2, 4)


def _correlated_latent(batch: int = 2) -> torch.Tensor:
    """Channel groups that repeat the first one plus small noise: earlier groups predict later ones."""
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(batch, 2, 16, 16, generator=generator) * 6
    noise = lambda c: torch.randn(batch, c, 16, 16, generator=generator) * 0.7  # noqa: E731
    return torch.cat([first, first + noise(2), first.repeat(1, 2, 1, 1) + noise(4)], 1)


def _codec(use_context: bool) -> ChannelGroupsLatentCodec:
    conditional = GaussianConditional(None)
    conditional.update()
    gaussian = GaussianConditionalLatentCodec(conditional, "y")

    def parameters(k: int, side: None, decoded: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (decoded[0].shape[0], GROUPS[k], 16, 16) if decoded else (2, GROUPS[k], 16, 16)
        if not decoded or not use_context:
            return torch.full(shape, 6.0), torch.zeros(shape)
        mean = decoded[0].repeat(1, GROUPS[k] // GROUPS[0], 1, 1)  # the first group predicts the rest
        return torch.full(shape, 0.7), mean

    return ChannelGroupsLatentCodec(GROUPS, [gaussian] * len(GROUPS), parameters)


def _compress(codec: ChannelGroupsLatentCodec, y: torch.Tensor) -> tuple[list[bytes], torch.Tensor]:
    encoders = {"y": [RangeEncoder() for _ in range(y.shape[0])]}
    y_hat = codec.compress(y, None, encoders)
    return [e.flush() for e in encoders["y"]], y_hat


def test_groups_share_one_stream_and_decode_to_the_encoders_values():
    codec, y = _codec(use_context=True), _correlated_latent()
    strings, y_hat = _compress(codec, y)
    assert codec.streams == ("y",) and len(strings) == 2
    decoders = {"y": [RangeDecoder(s) for s in strings]}
    decoded = codec.decompress(decoders, {"y": (16, 16)}, None)
    for decoder in decoders["y"]:
        decoder.finish()  # every byte read: three groups in one stream, nothing left over
    assert torch.equal(decoded, y_hat) and torch.equal(y_hat, torch.round(y_hat))
    assert (y_hat - y).abs().max() <= 0.5 + 1e-5


def test_earlier_groups_make_later_ones_cheap_and_the_estimate_holds():
    y = _correlated_latent()
    costs = {}
    for use_context in (False, True):
        codec = _codec(use_context)
        codec.codecs[0].conditional.eval()
        strings, _ = _compress(codec, y)
        _, likelihoods = codec(y, None)
        estimate = -torch.log2(likelihoods["y"]).sum().item()
        actual = 8 * sum(len(s) for s in strings)
        assert likelihoods["y"].shape == y.shape
        assert abs(actual - estimate) < 0.01 * estimate + 64, (actual, estimate)
        costs[use_context] = actual
    assert costs[True] < 0.6 * costs[False], costs  # 6 of 8 channels predicted to within σ = 0.7
