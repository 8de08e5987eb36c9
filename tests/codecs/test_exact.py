"""The exact entropy path (lnc.codecs.layers.exact): sums that are integers in all but name, so
the table indexes do not depend on summation order (channel order, thread count), where the float
path's do; trained through with straight-through rounding; and a model whose decoder computes its
tables differently from the encoder stops with an error instead of decoding garbage."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from lnc.codecs.layers import exact
from lnc.codecs.layers.exact import ACTIVATION_BITS, WEIGHT_BITS, exact_forward, portable_exp
from lnc.codecs.registry import build_codec, load
from lnc.entropy.errors import BitstreamError
from lnc.tools.pipeline.image import decode_bytes, encode_array

QUALITY = 5.0


@pytest.fixture(scope="module")
def pair():
    """The shipped float checkerboard model and its exact twin (the same tensors)."""
    base = load("he2021-checkerboard-vr")
    twin = build_codec(base.architecture, **{**base.config, "exact_entropy": True})
    twin.load_state_dict(base.state_dict())
    twin.eval().name = "exact-twin"
    return base, twin


@pytest.fixture(scope="module")
def latents(pair, kodim):
    """ẑ scaled for h_s, and the h_s features, of a 256² Kodak crop."""
    base, twin = pair
    x = torch.from_numpy(kodim(1)[:256, :256].copy()).permute(2, 0, 1)[None].float() / 255
    q = torch.tensor([QUALITY])
    with torch.no_grad():
        z = base.analyse(x, q)["z"]
        z_hat = base.entropy_bottleneck.quantize(z, "dequantize", base.entropy_bottleneck.broadcast_medians(4))
        z_in = twin.hyper_input(z_hat, q)
    return z_in


def _permuted_h_s(h_s: nn.Sequential, perm: torch.Tensor) -> nn.Sequential:
    """The same function with its input channels in the order ``perm`` (a transposed convolution's
    weight is stored [in, out, ...])."""
    other = copy.deepcopy(h_s)
    other[0].weight.data = h_s[0].weight.data[perm].clone()
    return other


def test_portable_exp_is_exp() -> None:
    x = torch.linspace(-20, 20, 40_001, dtype=torch.float64)
    assert torch.allclose(portable_exp(x), torch.exp(x), rtol=1e-12, atol=0)


def test_exact_indexes_do_not_depend_on_channel_order_where_float_ones_do(pair, latents) -> None:
    base, twin = pair
    perm = torch.randperm(latents.shape[1], generator=torch.Generator().manual_seed(0))
    h_s, shuffled = base.h_s, _permuted_h_s(base.h_s, perm)
    with torch.no_grad():
        float_a, float_b = h_s(latents), shuffled(latents[:, perm])
        exact_a, exact_b = exact_forward(h_s, latents), exact_forward(shuffled, latents[:, perm])
    # Float: the same function summed in another order differs in the last bits...
    assert not torch.equal(float_a, float_b)
    assert torch.allclose(float_a, float_b, rtol=1e-4, atol=1e-4)
    # ... exact: the same bits, hence the same tables.
    assert torch.equal(exact_a, exact_b)
    scales = exact_a.chunk(2, 1)[0]
    indexes = twin.gaussian_conditional.build_indexes(scales)
    assert torch.equal(indexes, twin.gaussian_conditional.build_indexes(exact_b.chunk(2, 1)[0]))
    assert len(indexes.unique()) > 10  # the scales span many tables


def test_exact_path_does_not_depend_on_thread_count(pair, latents, monkeypatch) -> None:
    base, twin = pair
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(exact, "usable_threads", lambda n=threads: n)
        with torch.no_grad():
            hyper = exact_forward(base.h_s, latents)
            anchors = torch.round(hyper[:, 128:] * 4) / 4  # stand-ins for decoded anchors
            ctx = exact_forward(base.context_prediction, anchors)
            results.append(torch.cat([hyper, ctx, exact_forward(base.context_fusion, torch.cat([hyper, ctx], 1))], 1))
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_exact_sums_equal_integer_arithmetic(pair, latents) -> None:
    """The 1×1 convolutions of the context fusion, as int64 matrix products of the grid integers."""
    base, _ = pair
    layer = base.context_fusion[0]
    with torch.no_grad():
        hyper = exact_forward(base.h_s, latents)
        x = torch.cat([hyper, hyper.flip(1)], 1)  # 4M channels on the activation grid
        got = exact_forward(layer, x)
        w = torch.round(layer.weight[:, :, 0, 0].double() * 2**WEIGHT_BITS).long()
        b = torch.round(layer.bias.double() * 2 ** (WEIGHT_BITS + ACTIVATION_BITS)).long()
        a = torch.round(x.double() * 2**ACTIVATION_BITS).long()
        sums = torch.einsum("oc,nchw->nohw", w, a) + b[None, :, None, None]
        # The float path's exact sums, rounded to the activation grid like exact_forward's output.
        expected = torch.round(sums.double() / 2**WEIGHT_BITS) / 2**ACTIVATION_BITS
    assert torch.equal(got.double(), expected.clamp(-exact.ACTIVATION_LIMIT, exact.ACTIVATION_LIMIT))


def test_weights_too_large_for_exact_sums_are_refused() -> None:
    layer = nn.Conv2d(256, 4, 5).eval()
    nn.init.constant_(layer.weight, 4.0)  # 6400 inputs · 4 · 2048 > 2^25
    with pytest.raises(ValueError, match="too large for exact sums"):
        exact_forward(layer, torch.zeros(1, 256, 8, 8))


def test_training_runs_through_the_grid(pair, latents) -> None:
    base, _ = pair
    h_s = copy.deepcopy(base.h_s).train()
    out = exact_forward(h_s, latents.clone().requires_grad_(True))
    assert torch.equal(out.detach(), torch.round(out.detach() * 2**ACTIVATION_BITS) / 2**ACTIVATION_BITS)
    out.square().mean().backward()
    grads = [p.grad for p in h_s.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_exact_codec_round_trip_matches_its_reconstruction(pair, kodim) -> None:
    _, twin = pair
    rgb = kodim(4)[:256, :384].copy()
    data = encode_array(rgb, twin, QUALITY)
    decoded = decode_bytes(data, twin)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = twin(x, QUALITY)["x_hat"].clamp(0, 1)[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1


def _named_like(codec, other):
    """``codec`` under ``other``'s name and weights hash, so that it accepts ``other``'s files."""
    twin = copy.copy(codec)
    twin.name, twin.file_hash = other.name, other.weights_hash
    return twin


def test_float_twin_never_decodes_an_exact_file_to_wrong_pixels(pair, kodim) -> None:
    """The float path computes tables a few ulps off the exact one's: some index differs, and the
    decoder stops (desynchronised stream or checksum) instead of returning other pixels."""
    base, twin = pair
    data = encode_array(kodim(1).copy(), twin, QUALITY)
    with pytest.raises(BitstreamError):
        decode_bytes(data, _named_like(base, twin))


def test_one_table_off_is_caught_by_the_checksum(pair, kodim, monkeypatch) -> None:
    """A decoder that picks the neighbouring table for the last latent it reads still reaches the end
    of the stream with every byte used; only the checksum of the indexes tells."""
    _, twin = pair
    data = encode_array(kodim(1)[:128, :128].copy(), twin, QUALITY)
    build = type(twin.gaussian_conditional).build_indexes
    calls = []

    def last_one_off(self, scales, means=None):
        indexes = build(self, scales, means)
        calls.append(1)
        if len(calls) == 2:  # the second checkerboard pass: the last symbols of the stream
            flat = indexes.view(-1)
            flat[-1] += 1 if int(flat[-1]) == 0 else -1
        return indexes

    monkeypatch.setattr(type(twin.gaussian_conditional), "build_indexes", last_one_off)
    with pytest.raises(BitstreamError, match="checksum"):
        decode_bytes(data, twin)


@pytest.mark.parametrize("name", [None, "walloc-fast-vr"])
def test_shipped_exact_models_decode_alike_with_any_thread_count(name, kodim, monkeypatch) -> None:
    """The shipped default and the exact WaLLoC model (tables chosen by scale and mean offset)."""
    codec = load(name)
    assert codec.exact_entropy and codec.config["exact_entropy"] is True
    data = encode_array(kodim(23)[:192, :256].copy(), codec, 6.5)
    decoded = []
    for threads in (1, 2):
        monkeypatch.setattr(exact, "usable_threads", lambda n=threads: n)
        decoded.append(decode_bytes(data, codec))
    assert np.array_equal(decoded[0], decoded[1])
