"""The pieces of the learned audio codecs on real speech and music: the MDCT front end reconstructs
exactly, the residual VQ codes as it trains, and the stage-wise index prior codes and decodes the same
indices with every prior, fixed-length coding costing exactly log2 K bits an index."""
from __future__ import annotations

import math

import pytest
import torch

from lnc.codecs.audio import MDCTHyperprior, ResidualVQSpeech
from lnc.codecs.layers.mdct import MDCT, mdct_basis
from lnc.codecs.layers.vq import ResidualVectorQuantizer
from lnc.entropy.coder import RangeDecoder
from lnc.entropy.errors import LncError
from lnc.tools.io.audio import AudioReader

MUSIC = "librosa_Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
SPEECH = "vctk_p225_001_16k.wav"


@pytest.fixture(scope="module", autouse=True)
def single_thread(one_thread) -> None:
    """Small work on one thread."""


def excerpt(data_dir, name: str, frames: int) -> torch.Tensor:
    """The first ``frames`` sample frames of a real clip as ``[channels, 1, frames]`` float32."""
    with AudioReader(data_dir / "audio" / name) as reader:
        return torch.from_numpy(next(reader.chunks(frames)))[:, None]


def test_mdct_basis_is_orthonormal_and_tdac_reconstructs_real_music(data_dir) -> None:
    basis = mdct_basis(64)
    # A lapped orthogonal transform: orthonormal rows, orthogonal to the next frame's (shifted by H).
    assert torch.allclose(basis @ basis.T, torch.eye(64, dtype=torch.float64), atol=1e-12)
    assert float((basis[:, 64:] @ basis[:, :64].T).abs().max()) < 1e-12
    x = excerpt(data_dir, MUSIC, 512 * 40)
    mdct = MDCT(512)
    coefficients = mdct(x)
    assert coefficients.shape == (2, 512, 40)  # critically sampled: as many coefficients as samples
    energy_in, energy_out = x.double().pow(2).sum(), coefficients.double().pow(2).sum()
    assert float(energy_out / energy_in) == pytest.approx(1.0, abs=1e-5)
    assert float((mdct.inverse(coefficients) - x).abs().max()) < 1e-5


def test_mdct_keeps_float32_under_bf16_autocast(data_dir) -> None:
    x = excerpt(data_dir, SPEECH, 160 * 50)
    mdct = MDCT(160)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mdct.inverse(mdct(x))
    assert y.dtype == torch.float32 and float((y - x).abs().max()) < 1e-5


@pytest.mark.parametrize("hop", [0, 3, 7])
def test_mdct_refuses_odd_hops(hop) -> None:
    with pytest.raises(ValueError):
        MDCT(hop)


@torch.no_grad()
def test_residual_vq_assign_and_lookup_match_the_training_path(data_dir) -> None:
    torch.manual_seed(0)
    codec = ResidualVQSpeech(stage_counts=(1, 2, 4)).eval()
    z = codec.g_a(excerpt(data_dir, SPEECH, 16000)[:1]).detach()
    rvq: ResidualVectorQuantizer = codec.quantizer
    for count in (1, 2, 4):
        indices = rvq.assign(z, count)
        assert indices.shape == (1, count, 50)
        z_q, all_indices, _ = rvq(z, torch.tensor([count]))
        assert torch.equal(all_indices[:, :count], indices)
        assert torch.allclose(rvq.lookup(indices), z_q, atol=1e-5)


@pytest.mark.parametrize("prior", ["uniform", "factorized", "context"])
def test_stage_prior_round_trip_and_fixed_length_size(data_dir, prior) -> None:
    torch.manual_seed(0)
    codec = ResidualVQSpeech(stage_counts=(3, 6), index_prior=prior).eval()
    codec.update(force=True)
    x = excerpt(data_dir, SPEECH, 32000)[:1].repeat(2, 1, 1) * torch.tensor([1.0, 0.5])[:, None, None]
    compressed = codec.compress(x, 2.0)
    indices = codec.indices(x, 2.0)
    decoders = {"indices": [RangeDecoder(s) for s in compressed.streams["indices"].strings]}
    restored = codec.index_codec().decompress(decoders, {"indices": (100,)}, 6)
    assert torch.equal(restored, indices)
    x_hat = codec.decompress(compressed, 2.0)
    assert x_hat.shape == x.shape
    if prior == "uniform":
        bits = 6 * 100 * math.log2(1024)
        assert all(abs(8 * len(s) - bits) <= 32 for s in compressed.streams["indices"].strings)


def test_quality_of_a_stage_codec_is_a_whole_number() -> None:
    codec = ResidualVQSpeech(stage_counts=(3, 6))
    with pytest.raises(LncError, match="whole number"):
        codec.quality_tensor(1.5, 1, torch.device("cpu"))


def test_mdct_hyperprior_round_trip_is_deterministic(data_dir) -> None:
    torch.manual_seed(0)
    codec = MDCTHyperprior(N=32, M=16, hyper=8, rate_points=2).eval()
    codec.update(force=True)
    x = excerpt(data_dir, MUSIC, 512 * 32)
    first = codec.compress(x, 1.5)
    again = codec.compress(x, 1.5)
    assert [s for s in first.streams["y"].strings] == [s for s in again.streams["y"].strings]
    assert torch.equal(codec.decompress(first, 1.5), codec.decompress(again, 1.5))
