"""The VQ-index codec: quantisers, codebook reduction, per-symbol (context) coding through the range
coder, the three index priors on one index map, and training with a discriminator."""
from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lnc.codecs import build_codec, load
from lnc.codecs.layers.vq import SimVQ, VectorQuantizer, kmeans, nearest, nearest_rows, usage
from lnc.entropy import coder
from lnc.entropy.categorical import CategoricalModel
from lnc.tools.cli import main
from lnc.tools.eval import image_metrics as metrics
from lnc.tools.pipeline.image import encode_array
from lnc.train.codebook_reduction import reduce_codebook
from lnc.train.discriminator import PatchDiscriminator
from lnc.train.module import RDModule

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"stem": 8, "channels": [16, 16, 32, 32], "dim": 8, "num_codes": 64, "context_hidden": 16}
"""A VQGAN small enough to train and reduce in seconds, f = 16."""


@pytest.fixture(scope="module")
def kodak_crop(kodim) -> torch.Tensor:
    """A 128×192 crop of kodim07, [1, 3, 128, 192] in [0, 1]."""
    rgb = np.ascontiguousarray(kodim(7)[128:256, 256:448])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


@pytest.fixture(scope="module")
def pixel_patches(kodim) -> torch.Tensor:
    """kodim01's non-overlapping 2×2 RGB patches as 12-vectors in [0, 1]: real data to cluster."""
    rgb = torch.from_numpy(kodim(1).copy()).float().div(255)  # [512, 768, 3]
    return rgb.reshape(256, 2, 384, 2, 3).permute(0, 2, 1, 3, 4).reshape(-1, 12)


def test_nearest_entry_and_straight_through_gradients(pixel_patches):
    z = pixel_patches[:600].T.reshape(1, 12, 20, 30).clone().requires_grad_(True)
    quantizer = VectorQuantizer(32, 12)
    with torch.no_grad():
        quantizer.embedding.copy_(pixel_patches[::997][:32])
    z_q, indices, loss = quantizer(z)
    brute = torch.cdist(z.detach().reshape(12, -1).T, quantizer.embedding.detach()).argmin(1)
    assert torch.equal(indices.flatten(), brute)
    assert torch.allclose(z_q, quantizer.lookup(indices))
    (z_q.sum() + loss).backward()
    assert z.grad is not None and bool((z.grad != 0).any())
    assert quantizer.embedding.grad is not None  # the codebook loss reaches the entries


def test_nearest_entries_are_found_in_float32_under_bf16_autocast(pixel_patches):
    # bfloat16 distances tie for most entries, and ties go to index 0: a collapsed codebook.
    z = pixel_patches[:2048].T.reshape(1, 12, 32, 64)
    book = pixel_patches[1::61][:256]
    exact = nearest(z, book)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nearest(z, book), exact)
    assert exact.unique().numel() > 100


def test_normalized_quantizer_compares_directions(pixel_patches):
    quantizer = VectorQuantizer(64, 12, normalize=True)
    z = pixel_patches[:600].T.reshape(1, 12, 20, 30) - 0.5
    z_q, indices, _ = quantizer(z * 7.0)  # the scale of a latent does not matter, its direction does
    assert torch.equal(indices, quantizer.assign(z))
    assert torch.allclose(z_q.norm(dim=1), torch.ones(()), atol=1e-5)


def test_simvq_trains_only_its_projection_and_every_entry_moves(pixel_patches):
    quantizer = SimVQ(256, 12)
    z = pixel_patches[:4096].T.reshape(1, 12, 64, 64)
    _, indices, loss = quantizer(z)
    loss.backward()
    assert [name for name, p in quantizer.named_parameters()] == ["projection.weight"]
    before = quantizer.codebook().detach().clone()
    with torch.no_grad():
        quantizer.projection.weight -= 0.1 * quantizer.projection.weight.grad
    moved = (quantizer.codebook().detach() - before).norm(dim=1)
    assert usage(indices, 256)["used"] < 1.0 and bool((moved > 0).all())  # unused entries move too


def test_usage_counts_entries_and_perplexity():
    stats = usage(torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]), 8)
    assert stats["used"] == 0.5 and stats["perplexity"] == pytest.approx(4.0)


def test_weighted_kmeans_beats_the_most_used_entries(pixel_patches):
    book = pixel_patches[::97][:512]
    counts = torch.bincount(nearest_rows(pixel_patches, book), minlength=512).double()

    def distortion(centres: torch.Tensor) -> float:
        return float((torch.cdist(book.double(), centres.double()).min(1).values.pow(2) * counts).sum())

    centres = kmeans(book, counts, 16)
    assert centres.shape == (16, 12)
    assert distortion(centres) < 0.5 * distortion(book[counts.argsort(descending=True)[:16]])


def test_portable_tables_are_tight_and_sum_to_the_total(kodim):
    # Real skewed distributions: kodim01's pixel-value histogram in each of its 64 rows of 8 lines.
    values = torch.from_numpy(kodim(1)[..., 1].copy()).long().reshape(64, -1)
    pmfs = torch.stack([torch.bincount(row, minlength=256) for row in values]).double() + 0.01
    portable = coder.pmf_to_quantized_cdf(pmfs.numpy(), 16, portable=True)
    optimal = coder.pmf_to_quantized_cdf(pmfs.numpy(), 16)
    assert (portable[:, -1] == 1 << 16).all() and (np.diff(portable, axis=1) >= 1).all()
    p = (pmfs / pmfs.sum(1, keepdim=True)).numpy()

    def cross_entropy(cdf: np.ndarray) -> float:
        return float(-(p * np.log2(np.diff(cdf, axis=1) / 65536)).sum(1).mean())

    assert cross_entropy(portable) < cross_entropy(optimal) * 1.01
    assert np.array_equal(portable, coder.pmf_to_quantized_cdf(pmfs.numpy(), 16, portable=True))


def test_per_symbol_distributions_round_trip_at_their_cross_entropy(kodim):
    # Each pixel of a kodim01 row coded with the histogram of the row above it: a context prior.
    green = torch.from_numpy(kodim(1)[..., 1].copy()).long()
    rows = green[1:65]
    pmfs = torch.stack([torch.bincount(r, minlength=256) for r in green[:64]]).double() + 0.5
    pmfs = pmfs[:, None, :].expand(64, rows.size(1), 256).unsqueeze(0)
    model = CategoricalModel(256)
    encoder = coder.RangeEncoder()
    model.compress_into([encoder], rows[None], pmfs=pmfs)
    data = encoder.flush()
    decoder = coder.RangeDecoder(data)
    assert torch.equal(model.decompress_from([decoder], tuple(rows.shape), pmfs=pmfs)[0], rows)
    decoder.finish()
    p = pmfs[0] / pmfs[0].sum(-1, keepdim=True)
    entropy = float(-torch.log2(p.gather(-1, rows[..., None])).sum())
    assert 8 * len(data) < entropy * 1.01 + 64


def test_alphabets_beyond_the_coder_are_refused():
    CategoricalModel(65535)
    with pytest.raises(ValueError, match="65535"):
        CategoricalModel(65536)


def _small_codec(**config):
    torch.manual_seed(0)
    return build_codec("vqgan", **{**SMALL, **config}).eval()


def test_every_prior_codes_the_same_indices(kodak_crop):
    codec = _small_codec()
    codec.update()
    with torch.no_grad():
        # Give the context prior something to predict: fit the factorized one to the crop's indices.
        indices = codec.indices(kodak_crop)
        counts = torch.bincount(indices.flatten(), minlength=64).float() + 0.5
        codec.index_models[0].logits.copy_((counts / counts.sum()).log()[None])
        codec.update(force=True)
        expected = codec.g_s(codec.quantizer.lookup(indices)).clamp(0, 1)
        sizes = {}
        for prior in ("uniform", "factorized", "context"):
            codec.index_prior = prior
            compressed = codec.compress(kodak_crop)
            assert torch.equal(codec.decompress(compressed), expected)
            sizes[prior] = len(compressed.streams["indices"].strings[0])
    assert sizes["uniform"] == pytest.approx(indices.numel() * math.log2(64) / 8, abs=2)
    assert sizes["factorized"] < sizes["uniform"]


def test_training_with_a_discriminator_then_reduction(kodak_crop, tmp_path):
    codec = _small_codec().train()
    module = RDModule(codec, distortion="mse", lmbda=1.5e-5, lr=1e-3,
                      discriminator=PatchDiscriminator(width=8, layers=2), adversarial_start=1)
    batches = [kodak_crop[..., :128, :128].repeat(2, 1, 1, 1)] * 3
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    before = [p.detach().clone() for p in module.discriminator.parameters()]
    trainer.fit(module, DataLoader(batches, batch_size=None))
    assert trainer.global_step == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, module.discriminator.parameters()))
    codec.eval()
    reduced, record = reduce_codebook(codec, [4, 16], dirs=["train/images/mcmaster18"], crop=64,
                                      crops_per_image=1, prior_steps=20, log=lambda _: None)
    assert reduced.quantizer.sizes == [4, 16] and reduced.rate_points == 2
    # 20 steps of an untrained model's context prior: about uniform, not yet better.
    assert record["bits"]["4"] < 2.0 + 0.5 and record["bits"]["16"] < 4.0 + 0.5
    with torch.no_grad():
        for q in (1, 2):
            compressed = reduced.compress(kodak_crop, q)
            assert reduced.decompress(compressed, q).shape == kodak_crop.shape
    with pytest.raises(Exception, match="whole number"):
        reduced.compress(kodak_crop, 1.5)


@pytest.mark.parametrize("name", ["vq-f16-vr"])
def test_shipped_vq_codes_kodak_as_recorded_and_its_context_prior_pays(name, kodak_paths, recorded, tmp_path, capsys):
    """A shipped VQ model through the CLI on kodim15 at its lowest and highest rate points: rate and
    PSNR are what its card records; the context prior codes the same indices in fewer bytes than
    the factorized one and that in fewer than uniform coding, at least 15 % fewer at the lowest
    point (the card: 40.5 % on all of Kodak there, 11.5 % at the top, whole files)."""
    codec = load(name)
    source = kodak_paths[14]
    rgb = np.asarray(Image.open(source).convert("RGB"))
    for quality in codec.quality_points[0], codec.quality_points[-1]:
        coded, decoded = tmp_path / f"q{quality}.lnc", tmp_path / f"q{quality}.png"
        assert main(["encode", str(source), "-o", str(coded), "-m", name, "-q", str(quality)]) == 0
        assert main(["decode", str(coded), "-o", str(decoded)]) == 0
        point = recorded(name, source.name, quality)
        assert 8 * coded.stat().st_size / (rgb.shape[0] * rgb.shape[1]) <= point["bpp"] * 1.002
        assert metrics.psnr(np.asarray(Image.open(decoded)), rgb) > point["psnr-rgb"] - 0.01
    for quality in codec.quality_points[0], codec.quality_points[-1]:
        sizes = {}
        for prior in ("uniform", "factorized", "context"):
            codec.index_prior = prior
            sizes[prior] = len(encode_array(rgb, codec, quality))
        assert sizes["context"] < sizes["factorized"] < sizes["uniform"], (quality, sizes)
        assert quality > codec.quality_points[0] or sizes["context"] <= 0.85 * sizes["uniform"], sizes
    capsys.readouterr()


def test_cli_refuses_what_it_cannot_do_in_one_line(kodak_paths, tmp_path, capsys):
    cases = [
        (["reduce-codebook", "walloc-fast-vr", "--sizes", "16", "-o", str(tmp_path / "r.safetensors")], "not a VQ codec"),
        (["reduce-codebook", "vq-f16-vr", "--sizes", "16", "-o", str(tmp_path / "r.safetensors")], "already has reduced codebooks"),
        (["grid", str(kodak_paths[0]), "--panel", "vq-f16-vr:1.5", "-o", str(tmp_path / "g.png")], "whole number"),
        (["grid", str(kodak_paths[0]), "--panel", "vq-f16-vr:0", "-o", str(tmp_path / "g.png")], "quality must lie in"),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("lnc: error:") and words in err[0], err
    assert not any(tmp_path.iterdir())


def test_grid_of_a_kodak_crop(kodak_paths, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["grid", str(kodak_paths[22]), "--panel", "vq-f16-vr:7", "--panel", "jpeg:5", "--crop", "64", "-o", str(out)]) == 0
    assert Image.open(out).size == (3 * 64, 64 + 16)
    assert "vq-f16-vr q7" in capsys.readouterr().out
