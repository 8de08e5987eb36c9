"""``python -m lnc.tools.bench.video`` on a few small frames with the P-frame codec (its residual
weights taken from the shipped image default): the table's rows, ratios against x264 from the same
run and the real bpp; the peak memory of one fresh process. No timing is asserted."""
from __future__ import annotations

import io
import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from lnc.tools.bench import video
from lnc.tools.pipeline.video import encode_video_to

pytestmark = pytest.mark.usefixtures("one_thread")


def _table(out: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the printed table, cells split on runs of two or more spaces."""
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("size "))
    header, *rows = (re.split(r" {2,}", line.strip()) for line in lines[start:])
    return header, rows


def test_table_gives_both_sizes_with_ratios_to_x264_and_the_real_bpp(video_model, tmp_path, capsys) -> None:
    out_json = tmp_path / "bench.json"
    video.main(["-m", str(video_model), "--frames", "2", "--hd-frames", "3", "--hd-size", "256x144", "--threads", "1",
                "--no-memory", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert "lnc's coding is single-threaded by design" in out and "x264 encoder 1" in out
    assert "256x144: RaceHorses 832x480, 2 real frames scaled bicubic" in out
    assert "1 frame of real content with synthetic motion" in out
    header, rows = _table(out)
    assert header == ["size", "codec", "frames", "enc fps", "dec fps", "enc ×x264", "dec ×x264", "bpp"]
    assert [row[:3] for row in rows] == [
        ["416x240", "lnc blockmc-test q4", "2"], ["416x240", "x264 medium crf28", "2"],
        ["256x144", "lnc blockmc-test q4", "3"], ["256x144", "x264 medium crf28", "3"],
    ]
    for row in rows:
        numbers = [float(cell) for cell in row[3:]]
        assert all(math.isfinite(number) and number > 0 for number in numbers), row
    assert [row[5:7] for row in rows[1::2]] == [["1.00", "1.00"]] * 2

    saved = json.loads(out_json.read_text())
    assert saved["settings"]["model"] == "blockmc-test" and saved["settings"]["hd_size"] == [256, 144]
    assert [row["codec"] for row in saved["rows"]] == [row[1] for row in rows]
    for lnc, x264 in (saved["rows"][:2], saved["rows"][2:]):  # ×x264: lnc's frames/s over x264's
        for key in ("encoding", "decoding"):
            assert lnc[f"{key}_vs_x264"] == pytest.approx(lnc[f"{key}_fps"] / x264[f"{key}_fps"])
    for printed, row in zip(rows, saved["rows"]):
        ratios = [f"{row[f'{key}_vs_x264']:#.3g}" for key in ("encoding", "decoding")]
        assert printed[5:] == [*ratios, f"{row['bpp']:.4f}"]
    # The bpp is every byte of the .lnc file that the encoder writes for these frames.
    clip, _ = video.sd_clip(2)
    coded = io.BytesIO()
    encode_video_to(coded, clip, video.learned(str(video_model)).codec, 4.0, 32)
    assert saved["rows"][0]["bpp"] == pytest.approx(8 * len(coded.getvalue()) / (2 * 416 * 240))


def test_hd_clip_is_racehorses_scaled_then_shifted(data_dir) -> None:
    clip, note = video.hd_clip((320, 180), 4)
    assert (clip.info.width, clip.info.height, clip.info.frames) == (320, 180, 4)
    assert [frame.shape for frame in clip.rgb] == [(180, 320, 3)] * 4
    right, down = video.HD_SHIFT
    for k in (1, 2):  # frames past the 2 real ones: the last real one moved k shifts, edges replicated
        assert np.array_equal(clip.rgb[1 + k][k * down:, k * right:], clip.rgb[1][: 180 - k * down, : 320 - k * right])
    assert not np.array_equal(clip.rgb[0], clip.rgb[1])  # two real frames
    assert "2 frames of real content with synthetic motion" in note


def test_peak_memory_is_measured_in_a_fresh_process_per_direction(video_model, tmp_path) -> None:
    clip, _ = video.sd_clip(2)
    small = video.corner(clip)
    video._save_frames(small, tmp_path / "frames.npy")
    (tmp_path / "coded").write_bytes(pickle.dumps(video.learned(str(video_model)).encode(small, 4.0, 32)))
    job = {"codec": "lnc", "model": str(video_model), "threads": 1, "quality": 4.0, "intra_period": 32, "fps": 50.0,
           "count": 2, "corner": str(tmp_path / "frames.npy"), "frames": str(tmp_path / "frames.npy"),
           "coded": str(tmp_path / "coded")}
    peak, increase = video.peak_memory({**job, "direction": "decode"})
    # The process holds torch and the model (hundreds of MiB); decoding two 64x64 frames adds little.
    assert 100 < peak < 8192 and 0 <= increase < peak / 2
