"""Video through the CLI: real clips to ``.lnc`` and back with the P-frame codec (its residual
weights taken from the shipped image default, saved as a weights file), closed loop, every output
format, odd sizes, and bad input as one line and exit 2."""
from __future__ import annotations

import io
import shutil
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from lnc.codecs.registry import load_codec_file
from lnc.entropy.chunked import ChunkReader
from lnc.tools.cli import main
from lnc.tools.eval.video import ClipFrames
from lnc.tools.io.video import VideoReader, VideoWriter
from lnc.tools.pipeline.video import decode_video_frames, encode_video_to

CLIP = "video/BasketballPass_416x240_64f"


@pytest.fixture(scope="module", autouse=True)
def single_thread(one_thread) -> None:
    """Codecs run on one thread anyway."""


@pytest.fixture(scope="module")
def clip(data_dir, tmp_path_factory) -> Path:
    """The first 6 frames of BasketballPass as a PNG folder."""
    folder = tmp_path_factory.mktemp("clip") / "basketball6"
    folder.mkdir()
    for n in range(1, 7):
        shutil.copy(data_dir / CLIP / f"f{n:03d}.png", folder / f"f{n:03d}.png")
    return folder


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_closed_loop_decoder_reconstructs_what_the_encoder_predicted_from(video_model, clip) -> None:
    codec = load_codec_file(video_model)
    out, seen = io.BytesIO(), []
    with VideoReader(str(clip), fps=50) as reader:
        size = encode_video_to(out, reader, codec, quality=3, intra_period=4, on_frame=seen.append)
        sources = list(reader.frames())
    data = out.getvalue()
    assert size == len(data)
    decoded = list(decode_video_frames(ChunkReader(io.BytesIO(data), len(data)), codec))
    assert len(decoded) == len(seen) == 6
    assert all(np.array_equal(a, b) for a, b in zip(decoded, seen))
    psnrs = [_psnr(d, s) for d, s in zip(decoded, sources)]
    assert min(psnrs) > 27
    reader = ChunkReader(io.BytesIO(data), len(data))
    bits = [8 * sum(len(p) for p in items[0].streams.values()) for items in reader.chunks()]
    assert [codec.is_intra(items[0]) for items in ChunkReader(io.BytesIO(data), len(data)).chunks()] == \
        [True, False, False, False, True, False]
    assert max(bits[1:4]) < 0.7 * bits[0]  # predicted frames pay


def test_cli_round_trip_in_every_output_format(video_model, clip, tmp_path, capsys) -> None:
    coded = tmp_path / "clip.lnc"
    assert main(["encode", str(clip), "-o", str(coded), "-m", str(video_model), "--fps", "50", "-q", "2",
                 "--intra-period", "-1", "-v"]) == 0
    assert "6 frames" in capsys.readouterr().err
    outputs = {"y4m": tmp_path / "clip.y4m", "mkv": tmp_path / "clip.mkv", "png": tmp_path / "frames"}
    decoded = {}
    for fmt, path in outputs.items():
        assert main(["decode", str(coded), "-o", str(path), "-m", str(video_model)]) == 0
        with VideoReader(str(path), fps=50 if fmt == "png" else None) as reader:
            assert (reader.info.width, reader.info.height, reader.info.frames) == (416, 240, 6)
            assert reader.info.fps == 50
            decoded[fmt] = list(reader.frames())
    assert all(np.array_equal(a, b) for a, b in zip(decoded["mkv"], decoded["png"]))  # both lossless
    assert _psnr(decoded["y4m"][5], decoded["png"][5]) > 35  # y4m is 4:2:0
    assert main(["info", str(coded)]) == 0
    text = capsys.readouterr().out
    assert "frames          6" in text and "fps             50" in text and "frame 5" in text


def test_odd_sized_raw_yuv_is_padded_and_cropped_back(video_model, data_dir, tmp_path) -> None:
    """The 4:2:0 QCIF foreman (176×144, not a multiple of 64) as raw .yuv, cropped to 175×143 y4m."""
    odd = tmp_path / "odd.y4m"
    with VideoReader(str(data_dir / "video/foreman_qcif_176x144_10f.yuv"), (176, 144), 30) as reader, \
            open(odd, "wb") as f, VideoWriter(f, 175, 143, 30, "y4m") as writer:
        frames = list(reader.frames())[:3]
        for frame in frames:
            writer.write(frame[:143, :175])
    coded, back = tmp_path / "odd.lnc", tmp_path / "back.y4m"
    assert main(["encode", str(odd), "-o", str(coded), "-m", str(video_model), "-q", "5"]) == 0
    assert main(["decode", str(coded), "-o", str(back), "-m", str(video_model)]) == 0
    with VideoReader(str(back)) as reader:
        assert (reader.info.width, reader.info.height, reader.info.frames) == (175, 143, 3)
        assert min(_psnr(a, b[:143, :175]) for a, b in zip(reader.frames(), frames)) > 28


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lnc: error: "), err
    return err[0]


def test_bad_video_input_is_one_line_and_exit_2(video_model, clip, data_dir, tmp_path, capsys) -> None:
    capsys.readouterr()
    yuv = data_dir / "video/foreman_qcif_176x144_10f.yuv"
    ragged = tmp_path / "ragged.yuv"
    ragged.write_bytes(yuv.read_bytes()[:-100])
    empty = tmp_path / "empty.yuv"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.avi"  # a real H.264 clip cut in half (truncated mp4s: tests/tools/io)
    cut.write_bytes((data_dir / "train/video/pedestrians_720p_clip/vtest_h264_1280x720.avi").read_bytes()[:1_500_000])
    deep = tmp_path / "deep.y4m"
    deep.write_bytes(b"YUV4MPEG2 W16 H16 F25:1 C420p10\nFRAME\n" + bytes(16 * 16 * 3))
    cases = [
        (["encode", str(ragged), "--size", "176x144", "--fps", "30"], "ragged"),
        (["encode", str(empty), "--size", "176x144", "--fps", "30"], "empty"),
        (["encode", str(yuv)], "size"),
        (["encode", str(deep)], "10-bit"),
        (["encode", str(cut)], "cut.avi"),
        (["encode", str(yuv), "--size", "176by144", "--fps", "30"], "WIDTHxHEIGHT"),
        (["encode", str(clip), "--intra-period", "0"], "intra period"),
        (["encode", str(clip), "-m", "he2021-checkerboard-exact-vr"], "video"),
    ]
    for args, words in cases:
        out = tmp_path / "out.lnc"
        assert main([*args, "-o", str(out), "-m", str(video_model)] if "-m" not in args else [*args, "-o", str(out)]) == 2
        assert words in _error(capsys)
        assert not out.exists()
    coded = tmp_path / "clip.lnc"
    assert main(["encode", str(clip), "-o", str(coded), "-m", str(video_model), "--intra-period", "3"]) == 0
    data = coded.read_bytes()
    for name, broken in (("cut", data[: len(data) * 2 // 3]), ("flip", data[:300] + bytes([data[300] ^ 1]) + data[301:])):
        bad = tmp_path / f"{name}.lnc"
        bad.write_bytes(broken)
        out = tmp_path / f"{name}.y4m"
        assert main(["decode", str(bad), "-o", str(out), "-m", str(video_model)]) == 2
        _error(capsys)
        assert not out.exists()
    # An image model cannot decode a video file.
    assert main(["decode", str(coded), "-o", str(tmp_path / "x.y4m"), "-m", "he2021-checkerboard-exact-vr"]) == 2
    _error(capsys)


def test_shipped_model_reproduces_its_recorded_frames(data_dir) -> None:
    """The shipped ``blockmc-residual-vr`` on the first 4 frames of BasketballPass, intra period 32:
    the same bits and PSNR per frame as its recorded 64-frame evaluation (coding is causal and
    deterministic, so the first frames of a longer run are these)."""
    import json

    from lnc.codecs.registry import DEFAULT_VIDEO_MODEL, load

    results = Path(__file__).resolve().parents[2] / "docs" / "results"
    recorded = json.loads((results / "video-hevc-d-lnc-blockmc-residual-vr.json").read_text())
    sequence = recorded["per-image"]["BasketballPass_416x240_64f"]
    codec = load(DEFAULT_VIDEO_MODEL)
    for k in (0, 3):  # the lowest rate point and a middle one
        quality = sequence["quality"][k]
        out, frames = io.BytesIO(), []
        with VideoReader(str(data_dir / CLIP), fps=50) as reader:
            four = ClipFrames(replace(reader.info, frames=4), list(islice(reader.frames(), 4)))
        encode_video_to(out, four, codec, quality, 32, on_frame=frames.append)
        sources = four.rgb
        data = out.getvalue()
        bits = [8 * sum(len(p) for p in items[0].streams.values()) for items in ChunkReader(io.BytesIO(data), len(data)).chunks()]
        assert bits == sequence["frame-bits"][k][:4]
        psnrs = [_psnr(a, b) for a, b in zip(frames, sources)]
        assert np.allclose(psnrs, sequence["frame-psnr-rgb"][k][:4], atol=1e-6)
