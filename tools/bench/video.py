"""Encode and decode speed and peak memory of the learned video codec next to x264, at 416x240 and 1080p.

    python -m lnc.tools.bench.video [-m MODEL] [-q 4] [--crf 28] [--frames 16] [--hd-frames 3]
                                    [--hd-size 1920x1080] [--intra-period 32] [--threads 2] [--repeat 1]
                                    [--no-memory] [--json OUT]

Two clips, each held in memory as RGB frames and coded by both codecs through the same path as
``lnc eval`` (:class:`lnc.tools.eval.video.LearnedVideoCodec` and
:mod:`lnc.tools.eval.video_baselines`; colour conversion included): the first ``--frames`` frames of
HEVC class D's BasketballPass (416x240), and a ``--hd-size`` clip of ``--hd-frames`` frames made from
RaceHorses (832x480, 2 frames) scaled bicubic; frames past its two real ones are its last frame
shifted a few pixels per frame (real content, synthetic motion). Prints frames per second (best of
``--repeat``), each as a multiple of x264's measured in the same run, and bits per pixel.

Peak memory (Linux): each (codec, clip, direction) runs again in a fresh Python process, which
imports, loads the model, warms it up on a tiny clip, reads its input (the frames, or the coded
clip) and then codes; the table gives that process's peak resident set while coding (``VmHWM``,
reset just before) and its increase over the resident set just before coding, so encode and
decode are measured apart and the model's own memory shows in the first, not the second.

``--threads`` sets torch's threads and x264's; lnc codes on one thread by design
(:func:`lnc.codecs.base.single_threaded`: a file must decode to the same pixels on every machine).
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from lnc.codecs.registry import DEFAULT_VIDEO_MODEL
from lnc.entropy.errors import InputError, LncError
from lnc.tools.eval import video_baselines
from lnc.tools.eval.datasets import data_root
from lnc.tools.eval.image import LearnedCodec
from lnc.tools.eval.results import text_table
from lnc.tools.eval.video import (
    CLIP_FPS, Clip, ClipFrames, CodedVideo, LearnedVideoCodec, VideoRateCodec, read_clip, video_clips,
)
from lnc.tools.io.video import VideoInfo
from lnc.tools.pipeline import DEFAULT_INTRA_PERIOD
from lnc.tools.pipeline.video import check_intra_period

SD_CLIP = "BasketballPass_416x240_64f"
HD_SOURCE = "C_RaceHorses_2frames_832x480_30Hz_8bit_P420.yuv"
HD_SHIFT = (2, 1)
"""Pixels right and down per frame of the HD frames made by shifting RaceHorses' last frame."""
WARM_UP_SIDE = 64
"""Side of the 2-frame crop every codec codes once before it is timed or measured."""


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a frame size is WIDTHxHEIGHT, like 1920x1080, not {text!r}") from None
    if width < 2 or height < 2:
        raise argparse.ArgumentTypeError(f"frame size {text} is too small")
    return width, height


def sd_clip(frames: int) -> tuple[ClipFrames, str]:
    """The first ``frames`` frames of BasketballPass, and how the table describes them."""
    clip = read_clip(Clip(data_root() / "video" / SD_CLIP, fps=CLIP_FPS[SD_CLIP]), frames)
    return clip, f"BasketballPass, its first {clip.info.frames} frames"


def _shifted(rgb: np.ndarray, right: int, down: int) -> np.ndarray:
    """``rgb`` moved ``right`` and ``down`` pixels, the uncovered edge replicated."""
    height, width = rgb.shape[:2]
    return np.pad(rgb, ((down, 0), (right, 0), (0, 0)), mode="edge")[:height, :width]


def hd_clip(size: tuple[int, int], frames: int) -> tuple[ClipFrames, str]:
    """``frames`` frames of RaceHorses scaled bicubic to ``size`` = (W, H), its last real frame
    shifted by :data:`HD_SHIFT` per frame for the frames it lacks, and how the table describes them."""
    [clip], _ = video_clips(str(data_root() / "video" / HD_SOURCE))
    source = read_clip(clip, frames)
    width, height = size
    rgb = [np.array(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC)) for frame in source.rgb]
    real = len(rgb)
    right, down = HD_SHIFT
    rgb += [_shifted(rgb[-1], k * right, k * down) for k in range(1, frames - real + 1)]
    note = (f"RaceHorses {source.info.width}x{source.info.height}, {real} real frame{'s' * (real != 1)} "
            f"scaled bicubic to {width}x{height}")
    if frames > real:
        made = frames - real
        note += (f", then its last frame shifted {right} px right and {down} px down per frame: "
                 f"{made} frame{'s' * (made != 1)} of real content with synthetic motion")
    return ClipFrames(dataclasses.replace(source.info, width=width, height=height, frames=frames), rgb), note


def x264(threads: int) -> video_baselines.VideoBaseline:
    """x264 as ``lnc eval`` runs it, with ``threads`` encoder threads."""
    codec = video_baselines.get("x264")
    if "threads=2" not in codec.params:
        raise LncError(f"x264's parameters set no 'threads=2' to replace: {codec.params}")
    return dataclasses.replace(codec, params=codec.params.replace("threads=2", f"threads={threads}"))


def learned(model: str | None) -> LearnedVideoCodec:
    """The learned video codec ``model`` (default: the shipped video default) on ``lnc eval``'s path."""
    codec = LearnedCodec(model or DEFAULT_VIDEO_MODEL)
    if codec.codec.modality != "video":
        raise InputError(f"{codec.codec.name} is an {codec.codec.modality} model, not a video one")
    return LearnedVideoCodec(codec)


def corner(clip: ClipFrames) -> ClipFrames:
    """The top-left :data:`WARM_UP_SIDE` square of the first two frames of ``clip``."""
    side = WARM_UP_SIDE
    rgb = [np.ascontiguousarray(frame[:side, :side]) for frame in clip.rgb[:2]]
    return ClipFrames(dataclasses.replace(clip.info, width=side, height=side, frames=len(rgb)), rgb)


def warm_up(codec: VideoRateCodec, small: ClipFrames, quality: float) -> None:
    """Code ``small`` once, so that what a codec loads or builds on first use is neither timed nor
    counted as coding memory."""
    decoded(codec, codec.encode(small, quality, DEFAULT_INTRA_PERIOD), small.info.frames)


def decoded(codec: VideoRateCodec, coded: CodedVideo, frames: int) -> list[np.ndarray]:
    """``coded`` decoded, checked to hold ``frames`` frames."""
    rgb = codec.decode(coded)
    if len(rgb) != frames:
        raise LncError(f"{codec.label} decoded {len(rgb)} frames of {frames}")
    return rgb


def _save_frames(clip: ClipFrames, path: Path) -> None:
    np.save(path, np.stack(clip.rgb))


def _load_frames(path: str, fps: float) -> ClipFrames:
    """Frames saved by :func:`_save_frames`; ``np.load`` reads them straight into one array, so loading
    leaves no transient peak above what is then held."""
    frames = np.load(path)
    count, height, width = frames.shape[:3]
    return ClipFrames(VideoInfo(width, height, fps, count), list(frames))


def _resident_kib() -> tuple[int, int]:
    """This process's resident set now and its peak since the last :func:`_reset_peak`, in KiB."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        raise LncError("peak memory is read from Linux's /proc/self/status; run with --no-memory") from None
    now, peak = (int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M)[1]) for key in ("VmRSS", "VmHWM"))
    return now, peak


def _reset_peak() -> None:
    """Start the peak resident set (``VmHWM``) over from the present one."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:
        raise LncError(f"cannot reset the peak resident set ({exc}); run with --no-memory") from None


def _measure_memory(spec: str) -> None:
    """The body of a memory-measuring process. ``spec`` (JSON) names the codec, the direction and the
    input files; prints ``{"baseline_kib": …, "peak_kib": …}``: the resident set just before coding
    (after imports, model load, warm-up and reading the input) and its peak while coding.

    Not ``ru_maxrss``: on Linux a process started by another inherits that one's peak through
    ``fork``/``exec``, and it keeps the peak of imports and model loading, which can hide the coding's."""
    job = json.loads(spec)
    torch.set_num_threads(job["threads"])
    codec: VideoRateCodec = learned(job["model"]) if job["codec"] == "lnc" else x264(job["threads"])
    warm_up(codec, _load_frames(job["corner"], job["fps"]), job["quality"])
    if job["direction"] == "encode":
        clip = _load_frames(job["frames"], job["fps"])
        gc.collect()
        _reset_peak()
        before = _resident_kib()[0]
        codec.encode(clip, job["quality"], job["intra_period"])
    else:
        coded = pickle.loads(Path(job["coded"]).read_bytes())
        gc.collect()
        _reset_peak()
        before = _resident_kib()[0]
        decoded(codec, coded, job["count"])
    print(json.dumps({"baseline_kib": before, "peak_kib": _resident_kib()[1]}))


def peak_memory(job: dict[str, Any]) -> tuple[float, float]:
    """Peak resident MiB of a fresh process while it codes ``job`` (:func:`_measure_memory`), and its
    increase over the same process just before coding."""
    command = "import sys; from lnc.tools.bench.video import _measure_memory; _measure_memory(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", command, json.dumps(job)], capture_output=True, text=True)
    if done.returncode:
        raise LncError(f"the memory process for {job['codec']} {job['direction']} failed:\n{done.stderr.strip()}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["peak_kib"] / 1024, (result["peak_kib"] - result["baseline_kib"]) / 1024


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_clip(
    name: str, clip: ClipFrames, codecs: list[tuple[str, str, VideoRateCodec, float]], args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """One row per codec of ``codecs`` (key, label, codec, quality) for ``clip``: frames per second of
    encoding and decoding (best of ``args.repeat``, the codecs taking turns, so that a slow phase of the
    machine slows them alike), each over the last codec's, bpp, and with ``args.memory`` the peak
    memory of each direction."""
    info = clip.info
    frames, pixels = info.frames, info.frames * info.width * info.height
    encode_s, decode_s, coded = [float("inf")] * len(codecs), [float("inf")] * len(codecs), [None] * len(codecs)
    for _ in range(args.repeat):
        for k, (key, _, codec, quality) in enumerate(codecs):
            start = time.perf_counter()
            coded[k] = codec.encode(clip, quality, args.intra_period)
            encoded = time.perf_counter()
            decoded(codec, coded[k], frames)
            encode_s[k] = min(encode_s[k], encoded - start)
            decode_s[k] = min(decode_s[k], time.perf_counter() - encoded)
            _progress(f"{name} {key}: {frames} frames, encode {encode_s[k]:.2f} s, decode {decode_s[k]:.2f} s")
    rows = [{"size": name, "codec": label, "quality": quality, "frames": frames,
             "encoding_fps": frames / enc, "decoding_fps": frames / dec, "bpp": 8 * data.size / pixels}
            for (_, label, _, quality), enc, dec, data in zip(codecs, encode_s, decode_s, coded)]
    if args.memory:
        with tempfile.TemporaryDirectory(prefix="lnc-bench-video-") as work:
            folder = Path(work)
            _save_frames(clip, folder / "frames.npy")
            _save_frames(corner(clip), folder / "corner.npy")
            for row, (key, _, _, quality), data in zip(rows, codecs, coded):
                (folder / f"{key}.coded").write_bytes(pickle.dumps(data))
                for direction in ("encode", "decode"):
                    job = {"codec": key, "model": args.model, "threads": args.threads, "quality": quality,
                           "intra_period": args.intra_period, "direction": direction, "fps": info.fps,
                           "count": frames, "corner": str(folder / "corner.npy"),
                           "frames": str(folder / "frames.npy"), "coded": str(folder / f"{key}.coded")}
                    peak, increase = peak_memory(job)
                    row[f"{direction}_peak_mib"], row[f"{direction}_increase_mib"] = peak, increase
                    _progress(f"{name} {key} {direction}: peak {peak:.0f} MiB, +{increase:.0f} MiB")
    peer = rows[-1]
    for row in rows:
        row["encoding_vs_x264"] = row["encoding_fps"] / peer["encoding_fps"]
        row["decoding_vs_x264"] = row["decoding_fps"] / peer["decoding_fps"]
    return rows


COLUMNS = (("size", "size", "{}"), ("codec", "codec", "{}"), ("frames", "frames", "{}"),
           ("encoding_fps", "enc fps", "{:.2f}"), ("decoding_fps", "dec fps", "{:.2f}"),
           ("encoding_vs_x264", "enc ×x264", "{:#.3g}"), ("decoding_vs_x264", "dec ×x264", "{:#.3g}"),
           ("bpp", "bpp", "{:.4f}"),
           ("encode_peak_mib", "enc peak MiB", "{:.0f}"), ("encode_increase_mib", "enc +MiB", "{:.0f}"),
           ("decode_peak_mib", "dec peak MiB", "{:.0f}"), ("decode_increase_mib", "dec +MiB", "{:.0f}"))


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width table; the memory columns only when measured."""
    columns = [column for column in COLUMNS if column[0] in rows[0]]
    cells = [[title for _, title, _ in columns]]
    cells += [[fmt.format(row[key]) for key, _, fmt in columns] for row in rows]
    return text_table(cells, left=2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", help=f"video model name or .safetensors path (default {DEFAULT_VIDEO_MODEL})")
    parser.add_argument("-q", "--quality", type=float, default=4.0, help="the learned codec's rate point")
    parser.add_argument("--crf", type=int, default=28, help="x264's CRF")
    parser.add_argument("--frames", type=int, default=16, help="frames of the 416x240 clip (at most 64)")
    parser.add_argument("--hd-frames", type=int, default=3, help="frames of the HD clip")
    parser.add_argument("--hd-size", type=_size, default=(1920, 1080), metavar="WxH", help="the HD clip's frame size")
    parser.add_argument("--intra-period", type=int, default=DEFAULT_INTRA_PERIOD,
                        help="frames from one intra frame to the next (-1: the first frame only)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads and x264's encoder threads")
    parser.add_argument("--repeat", type=int, default=1, help="time each codec this many times, keep the best")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the peak-memory processes (two per codec and clip)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the rows and settings as JSON")
    args = parser.parse_args(argv)
    for option in ("frames", "hd_frames", "threads", "repeat"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    check_intra_period(args.intra_period)

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        lnc, peer = learned(args.model), x264(args.threads)
        lnc.check_quality(args.quality)
        peer.check_quality(args.crf)
        clips = [sd_clip(args.frames), hd_clip(args.hd_size, args.hd_frames)]
        codecs = [("lnc", f"lnc {lnc.label} q{args.quality:g}", lnc, args.quality),
                  ("x264", f"x264 {peer.preset} crf{args.crf}", peer, args.crf)]
        for _, _, codec, quality in codecs:
            warm_up(codec, corner(clips[0][0]), quality)
        rows = []
        for clip, _ in clips:
            name = f"{clip.info.width}x{clip.info.height}"
            rows += bench_clip(name, clip, codecs, args)
    finally:
        torch.set_num_threads(threads)

    period = "first frame only" if args.intra_period == -1 else str(args.intra_period)
    notes = [
        f"threads: torch {args.threads}, x264 encoder {args.threads}, FFmpeg h264 decoder 2 "
        f"(as lnc.tools.eval.video_baselines sets it); lnc's coding is single-threaded by design "
        f"(lnc.codecs.base.single_threaded)",
        f"intra period {period}; best of {args.repeat}; frames/s of the whole path (colour conversion included); "
        f"×x264 = frames/s over x264's in this run",
        *(f"{clip.info.width}x{clip.info.height}: {note}" for clip, note in clips),
    ]
    if args.memory:
        notes.append("memory: peak resident set while coding, of a fresh process per codec, size and direction "
                     "(MiB); +MiB = over that process just before coding (imports, model, warm-up and input loaded)")
    print("\n".join(notes))
    print(table(rows))
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        settings.update(hd_size=list(args.hd_size), lnc=lnc.description, x264=peer.description,
                        notes=notes, model=lnc.codec.name)
        args.json.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
