"""lnc's codecs built from CompressAI state dicts match CompressAI's outputs and bitstream sizes."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from compressai.zoo import bmshj2018_factorized, bmshj2018_hyperprior, mbt2018_mean

from lnc.codecs import from_compressai
from lnc.tools.pipeline.common import padded

ZOO = {
    "bmshj2018-factorized": bmshj2018_factorized,
    "bmshj2018-hyperprior": bmshj2018_hyperprior,
    "mbt2018-mean": mbt2018_mean,
}


@functools.lru_cache(maxsize=None)
def _reference(name: str):
    """A CompressAI model of the zoo architecture (quality 1: N=128, M=192), random init + tables."""
    torch.manual_seed(0)
    model = ZOO[name](quality=1, pretrained=False).eval()
    # Move the quantiles off their initial values so the compared tables are not trivial.
    with torch.no_grad():
        model.entropy_bottleneck.quantiles.add_(torch.randn_like(model.entropy_bottleneck.quantiles) * 0.3)
    model.update(force=True)
    return model


def _image(kodim, size: int = 256) -> torch.Tensor:
    rgb = kodim(23)[:size, :size]
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255).unsqueeze(0)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_forward_matches_compressai(name, kodim):
    reference = _reference(name)
    codec = from_compressai(name, reference.state_dict())
    x = _image(kodim)
    with torch.no_grad():
        ours, theirs = codec(x), reference(x)
    torch.testing.assert_close(ours["x_hat"], theirs["x_hat"], atol=1e-5, rtol=0)
    for key, value in theirs["likelihoods"].items():
        torch.testing.assert_close(ours["likelihoods"][key], value, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_bitstream_size_within_one_percent(name, kodim):
    reference = _reference(name)
    codec = from_compressai(name, reference.state_dict())
    codec.update(force=True)
    x = _image(kodim, 256)
    assert padded(256, codec.downsampling) == 256
    with torch.no_grad():
        ours = codec.compress(x)
        theirs = reference.compress(x)
        x_hat = codec.decompress(ours)
        reference_hat = reference.decompress(theirs["strings"], theirs["shape"])["x_hat"]
    assert ours.batch == 1 and len(ours.streams) == len(theirs["strings"])
    our_bytes = sum(len(s.strings[0]) for s in ours.streams.values())
    their_bytes = sum(len(s[0]) for s in theirs["strings"])
    assert abs(our_bytes - their_bytes) <= 0.01 * their_bytes, (our_bytes, their_bytes)
    # Same quantised latents → the same reconstruction as CompressAI's decoder.
    torch.testing.assert_close(x_hat, reference_hat, atol=1e-5, rtol=0)
