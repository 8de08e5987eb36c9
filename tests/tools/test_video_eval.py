"""Video evaluation on real clips: per-frame PSNR-RGB/Y/U/V/YUV and MS-SSIM, the x264 / x265 / SVT-AV1
baselines coding BasketballPass's first frames with keyframes where the intra period puts them, and
``lnc eval --codec x264`` to a results JSON that ``lnc bdrate`` reads."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from lnc.codecs import build_codec, save_codec
from lnc.entropy.errors import InputError
from lnc.tools.cli import main
from lnc.tools.eval import results, video, video_baselines
from lnc.tools.eval.image import LearnedCodec
from lnc.tools.eval.video_metrics import frame_metrics, psnr_yuv

LOW_HIGH = {"x264": (34, 22), "x265": (34, 22), "svtav1": (55, 35)}  # CRF: fewer bits, then more


@pytest.fixture(scope="module", autouse=True)
def single_thread(one_thread) -> None:
    """torch (MS-SSIM) on one thread, like the rest of this machine's small work."""


@pytest.fixture(scope="module")
def basketball(data_dir) -> video.ClipFrames:
    """The first 8 frames of BasketballPass (416x240, 50 fps)."""
    clips, _ = video.video_clips("hevc-d")
    return video.read_clip(clips[0], 8)


def test_identical_frames_have_infinite_psnr_and_ms_ssim_one(basketball) -> None:
    frame = basketball.rgb[0]
    row = frame_metrics(frame, frame.copy())
    assert all(math.isinf(row[key]) for key in ("psnr-rgb", "psnr-y", "psnr-u", "psnr-v", "psnr-yuv"))
    assert row["ms-ssim-rgb"] == pytest.approx(1.0)


def test_psnr_of_known_noise_and_the_6_1_1_weighting(basketball) -> None:
    sigma = 4.0
    source = np.clip(basketball.rgb[3], 24, 231)  # far enough from 0 and 255 that no noise is clipped
    noise = np.random.default_rng(0).normal(0.0, sigma, source.shape)
    noisy = np.rint(source + noise).astype(np.uint8)
    row = frame_metrics(source, noisy)
    expected = 10 * math.log10(255**2 / (sigma**2 + 1 / 12))  # rounding adds a uniform ±0.5 error
    assert row["psnr-rgb"] == pytest.approx(expected, abs=0.05)
    assert row["psnr-yuv"] == pytest.approx(psnr_yuv(row["psnr-y"], row["psnr-u"], row["psnr-v"]))
    assert row["psnr-yuv"] == pytest.approx((6 * row["psnr-y"] + row["psnr-u"] + row["psnr-v"]) / 8)
    assert row["psnr-y"] > row["psnr-rgb"] and row["ms-ssim-rgb"] < 1.0  # Y averages the RGB noise


@pytest.mark.parametrize("name", video_baselines.CODECS)
def test_baseline_rate_falls_with_crf_and_keyframes_follow_the_intra_period(name, basketball) -> None:
    codec = video_baselines.get(name)
    low, high = (video.measure(codec, basketball, crf, intra_period=4) for crf in LOW_HIGH[name])
    assert low["bpp"] < high["bpp"] and low["psnr-rgb"] < high["psnr-rgb"]
    assert low["psnr-yuv"] < high["psnr-yuv"] and low["psnr-rgb"] > 25.0
    pixels = 8 * 416 * 240
    for row in (low, high):
        assert row["bpp"] == pytest.approx(sum(row["frame-bits"]) / pixels)  # every packet byte, each frame's own
        assert row["bitrate"] == pytest.approx(row["bpp"] * 416 * 240 * 50 / 1000)
        assert len(row["frame-psnr-rgb"]) == 8 and row["psnr-rgb"] == pytest.approx(np.mean(row["frame-psnr-rgb"]))

    for period, keyframes in ((4, [0, 4]), (-1, [0])):
        packets = codec.packets(basketball, LOW_HIGH[name][0], period)
        assert sorted(p.pts for p in packets) == list(range(8))
        assert sorted(p.pts for p in packets if p.is_keyframe) == keyframes
    with pytest.raises(InputError, match="integer CRF"):
        codec.check_quality(99)


def test_yuv_set_geometry_from_names_and_ms_ssim_left_out_for_qcif(data_dir) -> None:
    clips, name = video.video_clips("yuv")
    geometry = {clip.name: (clip.size, clip.fps) for clip in clips}
    assert name == "yuv" and geometry["CiscoVT2people_320x192_12fps.yuv"] == ((320, 192), 12.0)
    curve = video.evaluate(video_baselines.get("x264"), clips, (30,), 4, 2, per_sequence=True, dataset=name)
    assert "ms-ssim-rgb" not in curve.results and "foreman_qcif_176x144_10f.yuv under 161 px" in curve.description
    assert "ms-ssim-rgb" in curve.per_image["foreman_cif_352x288_2f.yuv"]
    assert curve.results["psnr-rgb"][0] == pytest.approx(np.mean([v["psnr-rgb"][0] for v in curve.per_image.values()]))


def test_eval_command_writes_results_that_bdrate_compares(data_dir, tmp_path, capsys) -> None:
    paths = {}
    for name, crfs in (("x264", ("22", "30", "38")), ("x265", ("22", "30", "38"))):
        paths[name] = tmp_path / f"{name}.json"
        argv = ["eval", "--codec", name, "--dataset", "hevc-d", "--frames", "4", "-q", *crfs,
                "--intra-period", "4", "--json", str(paths[name])]
        assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "PSNR-YUV" in stdout and "x265 on hevc-d (1 clips)" in stdout
    curve = results.load(paths["x264"])
    assert set(video.KEYS) <= set(curve.results) and curve.results["quality"] == [38.0, 30.0, 22.0]
    assert "Intra period 4; hevc-d: 1 clip, 4 frames" in curve.description

    assert main(["bdrate", str(paths["x264"]), str(paths["x265"]), "--metric", "psnr-yuv", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["test"] == "x265" and math.isfinite(row["bd_rate"])
    assert main(["eval", "--codec", "jpeg", "--dataset", "kodak", "--frames", "4"]) == 2
    assert "apply to video codecs only" in capsys.readouterr().err


def test_learned_codec_is_rated_on_its_whole_file_and_each_frame_on_its_chunk(basketball, tmp_path) -> None:
    """An untrained P-frame codec around the shipped intra model: the path, not the quality, is tested."""
    path = tmp_path / "tiny-video.safetensors"
    save_codec(build_codec("blockmc-residual", N=16, M=16, rate_points=8, search=16), path)
    codec = video.LearnedVideoCodec(LearnedCodec(str(path)))
    clip = video.ClipFrames(replace(basketball.info, frames=3), basketball.rgb[:3])
    coded = codec.encode(clip, codec.qualities[0], intra_period=2)
    assert len(coded.units) == 1 and len(coded.frame_bits) == 3
    assert 0 < sum(coded.frame_bits) < 8 * coded.size  # chunk payloads, without the container around them
    row = video.measure(codec, clip, codec.qualities[0], intra_period=2)
    assert row["bpp"] == pytest.approx(8 * coded.size / (3 * 416 * 240))
    assert row["frame-bits"] == coded.frame_bits and row["frame-psnr-rgb"][0] > 25.0  # the intra frame
