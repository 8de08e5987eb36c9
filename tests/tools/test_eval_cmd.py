"""``lnc eval`` on real images: CompressAI's JSON format, bpp from real bytes, and the JPEG anchor."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.interpolate import PchipInterpolator

from lnc.codecs import build_codec, save_codec
from lnc.tools.eval import image as eval_cmd
from lnc.tools.eval import image_baselines as baselines, image_metrics as metrics, results
from lnc.tools.pipeline import image as image_pipeline
from lnc.tools.cli import main
from lnc.tools.eval.datasets import anchors_root, data_root, image_paths
from lnc.tools.io.image import read_rgb as load_rgb

ANCHORS = anchors_root() / "compressai" / "image" / "kodak"


@pytest.fixture(autouse=True)
def no_lpips_backbone(tmp_path, monkeypatch) -> None:
    """Torch's cache is pointed at an empty folder, so LPIPS is certainly unavailable and skipped."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


@pytest.fixture
def crops(kodim, tmp_path) -> Path:
    """A folder of two 256x256 Kodak crops and a file that is not an image."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for n in (3, 21):
        Image.fromarray(kodim(n)[128:384, 256:512]).save(folder / f"kodim{n:02d}_crop.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_json_has_the_anchor_keys_per_image_values_and_bpp_from_the_bytes(tmp_path, capsys) -> None:
    out = tmp_path / "jpeg.json"
    argv = ["eval", "--codec", "jpeg", "--dataset", "kodak", "--limit", "2", "-q", "60", "20",
            "--json", str(out), "--per-image"]
    assert main(argv) == 0
    stdout, stderr = capsys.readouterr()
    assert "lnc: LPIPS skipped: ImageNet backbone weights for alex not found" in stderr
    assert "PSNR-RGB" in stdout and "MS-SSIM dB" in stdout

    written = json.loads(out.read_text())
    anchor = json.loads((ANCHORS / "jpeg.json").read_text())
    assert set(anchor) <= set(written) and set(anchor["results"]) <= set(written["results"])
    assert written["name"] == "JPEG" and "Pillow" in written["description"]
    res = written["results"]
    assert res["quality"] == [20.0, 60.0]  # sorted by bpp
    assert res["bpp"][0] < res["bpp"][1] and res["psnr-rgb"][0] < res["psnr-rgb"][1]
    assert all(len(v) == 2 for v in res.values())

    per_image = written["per-image"]
    assert sorted(per_image) == ["kodim01.png", "kodim02.png"]
    jpeg = baselines.get("jpeg")
    for name, values in per_image.items():
        rgb = load_rgb(data_root() / "kodak" / name)
        for i, quality in enumerate(res["quality"]):
            data = jpeg.encode(rgb, quality)
            assert values["bpp"][i] == 8 * len(data) / (rgb.shape[0] * rgb.shape[1])
            assert values["psnr-rgb"][i] == pytest.approx(metrics.psnr(rgb, jpeg.decode(data)), abs=1e-12)
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time"):
        assert res[key] == pytest.approx(np.mean([v[key] for v in per_image.values()], axis=0), abs=1e-12)
    assert res["ms-ssim-rgb-db"] == pytest.approx(metrics.ms_ssim_db(np.array(res["ms-ssim-rgb"])))


def test_a_folder_dataset_with_the_default_sweep(crops, tmp_path, capsys) -> None:
    out = tmp_path / "webp.json"
    assert main(["eval", "--codec", "webp", "--dataset", str(crops), "--limit", "1", "--json", str(out)]) == 0
    curve = results.load(out)
    assert sorted(curve.results["quality"]) == list(baselines.get("webp").qualities)
    assert np.all(np.diff(curve.results["bpp"]) > 0)
    assert curve.description.endswith(f"1 images from {crops.name}") and not curve.per_image  # no local path


def test_missing_dataset_is_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LNC_DATA", str(tmp_path))
    assert main(["eval", "--codec", "jpeg", "--dataset", "kodak"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lnc: error: dataset 'kodak' not found")
    assert main(["eval", "--codec", "jpeg", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["eval", "--codec", "jpeg", "--dataset", str(tmp_path)]) == 2  # a folder without images
    assert "no images" in capsys.readouterr().err


def test_a_quality_outside_the_codec_range_is_one_error_line_before_any_work(capsys) -> None:
    assert main(["eval", "--codec", "jpeg", "--dataset", "kodak", "-q", "50", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnc: error: JPEG quality must lie in [1, 100]") and err.endswith("got 0\n")
    assert err.count("\n") == 1  # no LPIPS note, no progress bar: nothing ran


def test_learned_codec_runs_through_real_lnc_files(crops, tmp_path, capsys) -> None:
    # An untrained, tiny variable-rate model: the point is the file path and the accounting, not quality.
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_codec(build_codec("mbt2018-mean", N=16, M=24, rate_points=2), weights, {"lnc.name": "tiny"})
    out = tmp_path / "tiny.json"
    argv = ["eval", "-m", str(weights), "--dataset", str(crops), "--limit", "1", "--json", str(out)]
    assert main(argv) == 0
    curve = results.load(out)
    assert curve.name == "tiny" and curve.results["quality"] == [1.0, 2.0]
    assert main(["eval", "-m", str(weights), "--dataset", str(crops), "-q", "3"]) == 2
    assert "quality must lie in [1, 2]" in capsys.readouterr().err

    model = eval_cmd.LearnedCodec(str(weights))
    rgb = load_rgb(image_paths(str(crops))[0])
    pixels = rgb.shape[0] * rgb.shape[1]
    for i, quality in enumerate(curve.results["quality"]):
        data = image_pipeline.encode_array(rgb, model.codec, quality)
        assert curve.results["bpp"][i] == 8 * len(data) / pixels
        payload = 8 * image_pipeline.payload_bytes(data) / pixels
        assert curve.results["bpp-payload"][i] == payload < curve.results["bpp"][i]
        decoded = image_pipeline.decode_bytes(data, model.codec)
        assert curve.results["psnr-rgb"][i] == pytest.approx(metrics.psnr(rgb, decoded), abs=1e-9)


def _assert_jpeg_matches_compressai_anchor(qualities: tuple[int, ...]) -> None:
    """Our JPEG on all of Kodak vs CompressAI's Pillow JPEG anchor, at matched bpp.

    The anchor is interpolated at our rates (pchip over log bpp). The encoder gives the anchor's
    bytes (bpp within 0.2%); the decoder does not quite give its pixels: Pillow 11's libjpeg-turbo 3
    decodes about 0.1 dB closer to the original than Pillow 7.1.2 did (decoders differ in chroma
    upsampling and colour conversion; ffmpeg's is 0.1-0.2 dB further off still), which MS-SSIM in
    dB magnifies to about 0.3 dB.
    """
    curve = eval_cmd.evaluate(baselines.get("jpeg"), image_paths("kodak"), qualities)
    anchor = results.load(ANCHORS / "jpeg.json")
    # CompressAI swept q = 5, 10, ..., 95: the same quality must give the anchor's rate.
    anchor_bpp = np.asarray(anchor.results["bpp"])[[q // 5 - 1 for q in qualities]]
    np.testing.assert_allclose(curve.results["bpp"], anchor_bpp, rtol=0.005)
    for metric, tolerance in (("psnr-rgb", 0.3), ("ms-ssim-rgb-db", 0.4)):
        bpp, value = anchor.points(metric)
        ours_bpp, ours = curve.points(metric)
        gap = ours - PchipInterpolator(np.log(bpp), value)(np.log(ours_bpp))
        assert np.all(np.abs(gap) < tolerance), f"{metric} off by {np.round(gap, 3)} at {np.round(ours_bpp, 3)} bpp"


def test_jpeg_on_kodak_reproduces_compressai_pillow_anchor_at_three_qualities() -> None:
    _assert_jpeg_matches_compressai_anchor((10, 50, 90))


@pytest.mark.slow
def test_jpeg_on_kodak_reproduces_compressai_pillow_anchor_over_the_whole_sweep() -> None:
    _assert_jpeg_matches_compressai_anchor(tuple(range(5, 100, 5)))
