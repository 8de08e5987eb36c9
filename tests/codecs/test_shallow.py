"""Shallow decoders (Yang & Mandt 2023, arXiv:2304.06244): Kodak crops through the range coder and
back, the paper's parameter and FLOP counts, and ``lnc models --flops``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_lightning import Trainer
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from lnc.codecs.costs import decode_costs
from lnc.codecs.image import MeanScaleHyperprior, ShallowJPEGLike, ShallowTwoLayer
from lnc.codecs.registry import ARCHITECTURES, shipped_models
from lnc.entropy.errors import InputError
from lnc.tools.cli import main
from lnc.tools.eval import image_metrics as metrics
from lnc.train.module import RDModule, load_initial_weights

SHALLOW = (ShallowJPEGLike, ShallowTwoLayer)


def _image(kodim, n: int, height: int, width: int) -> torch.Tensor:
    rgb = np.ascontiguousarray(kodim(n)[:height, :width])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def paper_size() -> dict[str, dict]:
    """decode_costs of the paper's three decoders at M=320 (the baseline with N=192, z included)."""
    torch.manual_seed(0)
    codecs = {"mbt2018-mean": MeanScaleHyperprior(192, 320), **{cls.architecture: cls() for cls in SHALLOW}}
    return {name: decode_costs(codec.eval(), size=64) for name, codec in codecs.items()}


@pytest.mark.parametrize("cls", SHALLOW)
def test_kodak_crop_decodes_to_what_the_encoder_reconstructed(kodim, cls):
    torch.manual_seed(0)
    codec = cls(N=32, M=48, analysis_width=32, rate_points=4).eval()
    codec.update(force=True)
    assert ARCHITECTURES[cls.architecture] is cls and codec.grows_from == {"mbt2018-mean": ("g_s.",)}
    x = _image(kodim, 7, 192, 256)
    with torch.no_grad():
        out = codec.compress(x, 2.5)
        x_hat = codec.decompress(out, 2.5)
        estimate = codec(x, 2.5)
    assert set(out.streams) == {"z", "y"} and out.streams["y"].shape == (12, 16)
    assert x_hat.shape == x.shape == estimate["x_hat"].shape
    torch.testing.assert_close(x_hat, estimate["x_hat"].clamp(0, 1), rtol=0, atol=1e-5)
    # Every pixel is synthesised from the latent, the borders too (no rows of bias alone).
    y = torch.randn(1, 48, 12, 16)
    with torch.no_grad():
        moved = (codec.g_s(y) - codec.g_s(torch.zeros_like(y))).abs().amax(1)
    assert bool((moved > 0).all())


def test_paper_parameter_counts():
    two_layer, jpeg_like = ShallowTwoLayer(), ShallowJPEGLike()
    assert two_layer.config == {"rate_points": 0, "N": 320, "M": 320, "analysis_width": 192}
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    # Two 13×13 kernels 320 → 12 with biases, IGDN's β and γ, the 5×5 kernel 12 → 3: the paper's ≈ 1.3 M.
    assert count(two_layer.g_s) == 2 * (320 * 12 * 13 * 13 + 12) + 12 + 12 * 12 + 12 * 3 * 5 * 5 + 3 == 1_299_003
    assert count(jpeg_like.g_s) == 320 * 3 * 18 * 18 + 3


def test_flop_counter_counts_transposed_convolutions_by_hand(paper_size):
    deconv = torch.nn.ConvTranspose2d(5, 7, 13, stride=8, padding=3, output_padding=1)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        assert deconv(torch.zeros(2, 5, 4, 6)).shape == (2, 7, 32, 48)
    # Each of the 2·4·6 inputs of 5 channels meets 7·13² weights: one multiply-add, two FLOPs.
    assert counter.get_total_flops() == 2 * (2 * 4 * 6) * 5 * 7 * 13 * 13
    jpeg_like = paper_size["yang2023-shallow-jpeglike"]["synthesis"]
    assert jpeg_like["flops_per_pixel"] == 2 * 320 * 3 * 18 * 18 / 16**2 == 2 * jpeg_like["macs_per_pixel"]


def test_shallow_decoders_cost_a_fifth_of_the_hyperprior(paper_size):
    decode = {name: costs["decode"]["flops_per_pixel"] for name, costs in paper_size.items()}
    assert decode["yang2023-shallow-2layer"] <= 0.20 * decode["mbt2018-mean"]
    assert decode["yang2023-shallow-jpeglike"] <= 0.16 * decode["mbt2018-mean"]
    # The paper's decoding FLOPs per pixel (synthesis + hyper-synthesis), two per multiply-add.
    paper = {"mbt2018-mean": 217.9e3, "yang2023-shallow-2layer": 41.0e3, "yang2023-shallow-jpeglike": 32.8e3}
    for name, flops in paper.items():
        assert decode[name] == pytest.approx(flops, rel=0.01), name
    # Counts per pixel do not depend on the image size.
    larger = decode_costs(ShallowTwoLayer(32, 48, 32), size=128)["decode"]["flops_per_pixel"]
    assert larger == decode_costs(ShallowTwoLayer(32, 48, 32), size=64)["decode"]["flops_per_pixel"]


@pytest.mark.filterwarnings("ignore:You defined a `validation_step`")
def test_trains_with_the_rd_module(kodim, tmp_path):
    torch.manual_seed(0)
    codec = ShallowTwoLayer(16, 16, 16, rate_points=2, mixed_quantization=True)
    before = {name: p.detach().clone() for name, p in codec.named_parameters()}
    crops = [_image(kodim, n, 64, 64)[0] for n in (1, 2, 3, 4)]
    trainer = Trainer(
        accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path,
    )
    trainer.fit(RDModule(codec, lmbdas=[0.01, 0.02], lr=1e-3), DataLoader(crops, batch_size=2))
    for part in ("g_a.", "g_s.hidden.", "g_s.residual.", "g_s.output.", "h_s."):
        assert any(not torch.equal(p, before[n]) for n, p in codec.named_parameters() if n.startswith(part)), part


def test_models_flops_lists_every_shipped_image_model_and_the_paper_sizes(capsys):
    assert main(["models", "--flops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    images = [m.name for m in shipped_models() if ARCHITECTURES[m.architecture].modality == "image"]
    assert "walloc-stereo-vr" not in images
    for name in images + ["mbt2018-mean", *(cls.architecture for cls in SHALLOW)]:
        assert any(line.split()[:1] == [name] for line in lines), name
    shallow = next(line for line in lines if line.split()[:1] == ["yang2023-shallow-jpeglike"])
    assert shallow.split()[-1] == "32.8"  # decoding K FLOPs per pixel


def test_gdn_analysis_grows_from_the_shipped_mean_scale_model():
    """The CPU configuration: mbt2018-mean-vr's encoder and hyperprior, a new synthesis."""
    from lnc.codecs import load

    torch.manual_seed(0)
    source = load("mbt2018-mean-vr")
    codec = ShallowTwoLayer(N=64, M=128, analysis_width=64, analysis="gdn", rate_points=8)
    fresh = {k: v.clone() for k, v in codec.g_s.state_dict().items()}
    provenance = load_initial_weights(codec, "mbt2018-mean-vr", None)
    assert provenance["grown_from"] == "mbt2018-mean" and codec.config["analysis"] == "gdn"
    for key, value in source.state_dict().items():
        if not key.startswith("g_s."):
            assert torch.equal(codec.state_dict()[key], value), key
    assert all(torch.equal(codec.g_s.state_dict()[k], v) for k, v in fresh.items())
    # ELIC's analysis shares nothing with it: refused in one line, not half loaded.
    with pytest.raises(InputError, match="does not fit"):
        load_initial_weights(ShallowTwoLayer(N=64, M=128, analysis_width=64, rate_points=8), "mbt2018-mean-vr", None)
    with pytest.raises(ValueError, match="analysis must be"):
        ShallowTwoLayer(analysis="resnet")


def test_shipped_shallow_model_decodes_kodak_as_recorded_and_deterministically(kodak_paths, recorded, tmp_path, capsys):
    """The shipped two-layer model through the CLI (``-m`` on both sides) on kodim15 at its lowest and
    highest rate points: rate and PSNR are what its card records, and two decodes are identical."""
    name = "yang2023-shallow-2layer-vr"
    source = kodak_paths[14]
    rgb = np.asarray(Image.open(source).convert("RGB"))
    for quality in 1.0, 8.0:
        coded = tmp_path / f"q{quality}.lnc"
        assert main(["encode", str(source), "-o", str(coded), "-m", name, "-q", str(quality)]) == 0
        decoded = []
        for n in range(2):
            out = tmp_path / f"q{quality}.{n}.png"
            assert main(["decode", str(coded), "-o", str(out), "-m", name]) == 0
            decoded.append(np.asarray(Image.open(out)))
        assert np.array_equal(decoded[0], decoded[1])
        point = recorded(name, source.name, quality)
        assert 8 * coded.stat().st_size / (rgb.shape[0] * rgb.shape[1]) <= point["bpp"] * 1.002
        assert metrics.psnr(decoded[0], rgb) > point["psnr-rgb"] - 0.01
    capsys.readouterr()
