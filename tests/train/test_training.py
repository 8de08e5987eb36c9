"""Training through ``lnc train`` (LightningCLI, in process) on real crops; export; the RD module's parts."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from lnc.codecs.image import CheckerboardMeanScale, FactorizedPrior, MeanScaleHyperprior
from lnc.codecs.registry import load_codec_file
from lnc.entropy.errors import InputError
from lnc.tools.cli import main as lnc_main
from lnc.train.callbacks import RealRate
from lnc.train.cli import main as train_main
from lnc.train.losses import bits_per_pixel
from lnc.train.module import COMPRESSAI_MSE_LAMBDAS, RDModule

STEPS = 40


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shrunk_config, one_thread) -> Path:
    """40 steps of the shrunk mean-scale hyperprior config, validated once at the end (estimated rate
    on held-out crops, a real file of one Kodak image), with an EMA of the weights; flags as a user
    would give them on the command line."""
    root = tmp_path_factory.mktemp("fit")
    config = shrunk_config(root, "mbt2018-mean.yaml", checkpoint_every=STEPS)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        train_main(
            ["--config", str(config), "--trainer.max_steps", str(STEPS), "--model.lr", "2e-3",
             "--trainer.val_check_interval", str(STEPS), "--trainer.limit_val_batches", "2",
             "--trainer.callbacks+=lnc.train.callbacks.EMA", "--trainer.callbacks.decay", "0.8"]
        )  # fmt: skip
    finally:
        os.chdir(cwd)
    return root / "runs" / "mbt2018-mean"


def read_metrics(run: Path) -> list[dict[str, str]]:
    with (run / "version_0" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_loss_falls_on_real_crops(tiny_run):
    losses = [float(r["train/loss"]) for r in read_metrics(tiny_run) if r.get("train/loss")]
    assert len(losses) == STEPS
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.6 * first, (first, last)


def test_validation_logs_estimated_and_real_rates(tiny_run):
    rows = read_metrics(tiny_run)
    val = [r for r in rows if r.get("val/loss")]
    kodak = [r for r in rows if r.get("kodak/bpp_real")]
    assert len(val) == 1 and len(kodak) == 1
    real, est = float(kodak[0]["kodak/bpp_real"]), float(kodak[0]["kodak/bpp_est"])
    # The .lnc file holds the estimated bits plus a small header and coder overhead.
    assert est * 0.95 < real < est * 1.1 + 0.01, (real, est)
    assert abs(float(kodak[0]["kodak/psnr_real"]) - float(kodak[0]["kodak/psnr_est"])) < 0.5
    assert (tiny_run / "version_0" / "curves.png").stat().st_size > 1000


def test_checkpoint_keeps_ema_and_step(tiny_run):
    ckpt = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == STEPS
    assert len(ckpt["optimizer_states"]) == 2  # RD objective and quantiles
    shadow = ckpt["callbacks"]["EMA"]["shadow"]
    weights = ckpt["state_dict"]["codec.g_a.0.weight"]
    assert shadow["g_a.0.weight"].shape == weights.shape and not torch.equal(shadow["g_a.0.weight"], weights)


def test_export_round_trip(tiny_run, tmp_path, kodim):
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    out = tmp_path / "tiny.safetensors"
    assert lnc_main(["export", str(ckpt), "-o", str(out)]) == 0
    assert lnc_main(["export", str(ckpt), "-o", str(out)]) == 2  # refuses to overwrite
    assert lnc_main(["export", str(ckpt), "-o", str(out), "--force", "--no-ema"]) == 0
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["lnc.train.steps"] == str(STEPS) and meta["lnc.train.ema"] == "false"
    assert '"crop_size": 64' in meta["lnc.train.data"] and '"lr": 0.002' in meta["lnc.train.config"]

    codec = load_codec_file(out)
    assert isinstance(codec, MeanScaleHyperprior) and codec.config == {"rate_points": 0, "N": 16, "M": 16}
    x = torch.from_numpy(np.array(kodim(5)[:128, :192])).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        coded = codec.compress(x)
        x_hat = codec.decompress(coded)
        estimate = codec(x)
    assert set(coded.streams) == {"z", "y"} and coded.batch == 1
    bits = 8 * sum(len(s) for stream in coded.streams.values() for s in stream.strings)
    est_bits = float(bits_per_pixel(estimate["likelihoods"], 1)[0])
    assert est_bits * 0.95 < bits < est_bits * 1.1 + 64, (bits, est_bits)
    assert torch.allclose(x_hat, estimate["x_hat"].clamp(0, 1), atol=1e-3)


def test_fine_tune_starts_from_exported_weights_and_counts_their_steps(tiny_run, tmp_path, shrunk_config):
    """``--model.init_weights`` loads an export (or grows a context model from it; refuses another
    config); a few more steps from it export with the steps of both runs and the start's provenance."""
    start = tmp_path / "start.safetensors"
    assert lnc_main(["export", str(tiny_run / "checkpoints" / "last.ckpt"), "-o", str(start)]) == 0
    source = load_codec_file(start)
    module = RDModule(MeanScaleHyperprior(16, 16), init_weights=str(start))
    for key, value in source.state_dict().items():
        assert torch.equal(module.codec.state_dict()[key], value), key
    for other in (MeanScaleHyperprior(24, 16), MeanScaleHyperprior(16, 24), FactorizedPrior(16, 16)):
        with pytest.raises(InputError, match="init_weights"):
            RDModule(other, init_weights=str(start))
    # A codec that grows from the architecture keeps the shared weights and adds its own layers.
    grown = RDModule(CheckerboardMeanScale(16, 16), init_weights=str(start))
    assert grown.hparams.init_from["grown_from"] == "mbt2018-mean"
    for key, value in source.state_dict().items():
        assert torch.equal(grown.codec.state_dict()[key], value), key

    config = shrunk_config(tmp_path, "mbt2018-mean.yaml", checkpoint_every=3)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        train_main(
            ["--config", str(config), "--trainer.max_steps", "3",
             "--trainer.limit_val_batches", "0", "--model.init_weights", str(start)]
        )  # fmt: skip
    finally:
        os.chdir(cwd)
    run = tmp_path / "runs" / "mbt2018-mean"
    out = tmp_path / "tuned.safetensors"
    assert lnc_main(["export", str(run / "checkpoints" / "last.ckpt"), "-o", str(out)]) == 0
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["lnc.train.steps"] == str(STEPS + 3)
    assert json.loads(meta["lnc.train.init"]) == {
        "weights": str(start), "hash": source.weights_hash.hex(), "steps": STEPS
    }  # fmt: skip


def test_growing_the_rate_range_keeps_the_trained_points_bit_exact(kodim):
    """configs/image/wide-range-vr.yaml on the shipped default: 13 rate points from 8; the 8 trained
    λ keep their gains, so the grown codec writes the source's bitstreams at those points."""
    import yaml

    from lnc.codecs.registry import DEFAULT_MODEL, load

    lmbdas = yaml.safe_load((Path(__file__).parents[2] / "configs/image/wide-range-vr.yaml").read_text())["model"]["lmbdas"]
    source = load(DEFAULT_MODEL).eval()
    trained = json.loads(source.metadata["lnc.train.config"])["lmbdas"]
    offset = lmbdas.index(trained[0])
    assert lmbdas[offset:offset + len(trained)] == trained
    codec = type(source)(**{**source.config, "rate_points": len(lmbdas)})
    module = RDModule(codec, lmbdas=lmbdas, init_weights=DEFAULT_MODEL)
    assert module.hparams.init_from["hash"] == source.weights_hash.hex()
    codec.eval().update()
    x = torch.from_numpy(kodim(1)[:128, :192].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        for q in (1, len(trained)):
            assert codec.compress(x, quality=q + offset) == source.compress(x, quality=q)
        # The new points extend the range: lower qualities code fewer bytes, higher ones more.
        sizes = [sum(len(s.strings[0]) for s in codec.compress(x, quality=q).streams.values())
                 for q in (1, offset + 1, offset + len(trained), len(lmbdas))]  # fmt: skip
    assert sizes == sorted(sizes) and len(set(sizes)) == 4, sizes


def test_variable_rate_draws_quality_and_lambda_per_item():
    module = RDModule(MeanScaleHyperprior(16, 16, rate_points=8))
    torch.manual_seed(0)
    quality, lmbda = module._rate_targets(400)
    assert set(quality.tolist()) == set(range(1, 9))
    assert torch.equal(lmbda, torch.tensor(COMPRESSAI_MSE_LAMBDAS)[quality.long() - 1])
    assert module.val_qualities == [float(q) for q in range(1, 9)]
    fixed = RDModule(FactorizedPrior(16, 16), lmbda=0.05)
    assert fixed._rate_targets(3)[0] is None and float(fixed._rate_targets(3)[1]) == pytest.approx(0.05)
    with pytest.raises(Exception, match="lmbdas"):
        RDModule(MeanScaleHyperprior(16, 16, rate_points=3))


def test_likelihoods_stay_float32_under_bf16_autocast(kodim):
    torch.manual_seed(0)
    codec = MeanScaleHyperprior(16, 16, rate_points=8).eval()
    x = torch.from_numpy(np.array(kodim(7)[:64, :64])).permute(2, 0, 1)[None].float().div(255)
    with torch.no_grad():
        reference = codec(x, 4.0)["likelihoods"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = codec(x, 4.0)
    assert mixed["x_hat"].dtype == torch.bfloat16  # the transforms did run in bf16
    for name, lik in mixed["likelihoods"].items():
        assert lik.dtype == torch.float32
        bpp_ref = bits_per_pixel({name: reference[name]}, 64 * 64)
        assert float(bits_per_pixel({name: lik}, 64 * 64)) == pytest.approx(float(bpp_ref), rel=0.05)


def test_real_rate_measure_matches_estimate_on_kodak(kodim):
    torch.manual_seed(0)
    codec = FactorizedPrior(16, 16, rate_points=2).eval()
    codec.update(force=True)
    rgb = np.array(kodim(2)[:100, :130])  # not a multiple of the codec's stride: padded
    row = RealRate().measure(codec, rgb, 2.0)
    assert row["bpp_est"] * 0.95 < row["bpp_real"] < row["bpp_est"] * 1.1 + 0.05, row
    assert abs(row["psnr_real"] - row["psnr_est"]) < 0.5, row


def test_lr_multipliers_give_added_layers_their_own_rate():
    module = RDModule(CheckerboardMeanScale(16, 16), lr=1e-4, lr_multipliers={"context_": 10.0})
    groups = module._main_parameter_groups()
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3])
    names = {id(p): n for n, p in module.codec.named_parameters()}
    fast = {names[id(p)] for p in groups[1]["params"]}
    assert fast == {n for n in names.values() if n.startswith(("context_prediction.", "context_fusion."))}
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in module.codec.main_parameters())  # each once, no quantiles
