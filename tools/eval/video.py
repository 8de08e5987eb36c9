"""Video rate–distortion: clips through a codec's real path, RGB frames → coded bits → RGB frames.

Rate is ``bpp`` = coded bits / (frames·H·W) and ``bitrate`` in kbit/s = bits·fps / frames / 1000,
from every byte of the ``.lnc`` file for learned codecs and from every byte of the elementary
stream's packets (no container) for the classical ones of :mod:`lnc.tools.eval.video_baselines`.
Distortion is measured per frame on RGB by :mod:`lnc.tools.eval.video_metrics` and averaged over a
clip's frames, then over clips, as DCVC reports it. Every codec codes the same first frames of a
clip, read once, with the same intra period (DCVC's test conditions: 32, or -1 for the first frame
only); ``encoding_fps`` and ``decoding_fps`` time the codec alone, the colour conversion included.
"""
from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lnc.entropy.chunked import open_reader
from lnc.entropy.errors import InputError, LncError
from lnc.tools.eval import image_metrics, results, video_metrics
from lnc.tools.eval.datasets import data_root, dataset_name
from lnc.tools.eval.image import LearnedCodec
from lnc.tools.pipeline import DEFAULT_INTRA_PERIOD

if TYPE_CHECKING:
    from lnc.tools.io.video import VideoInfo

KEYS = ("bpp", "bitrate", "psnr-rgb", "psnr-y", "psnr-u", "psnr-v", "psnr-yuv", "ms-ssim-rgb",
        "encoding_fps", "decoding_fps", "quality")
FRAME_KEYS = ("frame-psnr-rgb", "frame-bits")
"""Per-sequence lists, one value per frame in display order, kept with ``per_sequence``."""
VIDEO_SETS = {
    "hevc-d": ("BasketballPass_416x240_64f",),
    "yuv": ("*.yuv",),
    "video": ("BasketballPass_416x240_64f", "*.yuv"),
}
"""Named sets of ``$LNC_DATA/video`` as glob patterns: ``hevc-d`` is HEVC class D's BasketballPass
(416x240, its first 64 frames as PNG), ``yuv`` the raw 4:2:0 clips, their geometry in their names."""
CLIP_FPS = {"BasketballPass_416x240_64f": 50.0}
"""Frame rates of the sets' folders of PNG frames, which record none (HEVC class D runs at 50 fps)."""


@dataclass(frozen=True)
class Clip:
    """A clip to read: a video file, a raw ``.yuv`` file (then ``size`` = (W, H)) or a folder of frames."""

    path: Path
    size: tuple[int, int] | None = None
    fps: float | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ClipFrames:
    """A clip's first frames in memory, read once for every codec and quality; like a
    :class:`~lnc.tools.io.video.VideoReader` it has ``info`` and ``frames()``."""

    info: VideoInfo
    rgb: list[np.ndarray]

    def frames(self) -> Iterator[np.ndarray]:
        return iter(self.rgb)


@dataclass
class CodedVideo:
    """A coded clip: what its decoder reads (a ``.lnc`` file, or a stream's packets in decoding
    order) and the bits of each frame in display order."""

    units: list[bytes]
    frame_bits: list[int]

    @property
    def size(self) -> int:
        """Bytes counted as the rate: all of them."""
        return sum(len(unit) for unit in self.units)


class VideoRateCodec(Protocol):
    """What ``evaluate`` needs of a video codec: a label, rate points, and a frames round trip."""

    label: str
    qualities: tuple[float, ...]
    description: str

    def check_quality(self, quality: float) -> None: ...
    def encode(self, clip: ClipFrames, quality: float, intra_period: int) -> CodedVideo: ...
    def decode(self, coded: CodedVideo) -> list[np.ndarray]: ...


class LearnedVideoCodec:
    """A learned video codec run through the ``.lnc`` file path of ``lnc encode`` / ``lnc decode``."""

    def __init__(self, learned: LearnedCodec) -> None:
        self.codec = learned.codec
        self.label, self.qualities, self.description = learned.label, learned.qualities, learned.description
        self.check_quality = learned.check_quality

    def encode(self, clip: ClipFrames, quality: float, intra_period: int) -> CodedVideo:
        from lnc.tools.pipeline.video import encode_video_to

        out = io.BytesIO()
        encode_video_to(out, clip, self.codec, quality, intra_period)
        data = out.getvalue()
        with open_reader(data) as reader:  # one chunk per frame: its payloads are the frame's bits
            frame_bits = [8 * sum(len(s) for item in chunk for s in item.streams.values()) for chunk in reader.chunks()]
        return CodedVideo([data], frame_bits)

    def decode(self, coded: CodedVideo) -> list[np.ndarray]:
        from lnc.tools.pipeline.video import decode_video_frames

        with open_reader(coded.units[0]) as reader:
            return list(decode_video_frames(reader, self.codec))


def _clip(path: Path) -> Clip:
    from lnc.tools.io.video import yuv_clip_geometry

    if path.suffix.lower() != ".yuv":
        return Clip(path, fps=CLIP_FPS.get(path.name))
    geometry = yuv_clip_geometry(path)
    if geometry is None:
        raise InputError(f"{path.name}: a raw .yuv clip's name must give its size, like foreman_352x288.yuv")
    width, height, fps = geometry
    return Clip(path, (width, height), fps)


def video_clips(dataset: str, limit: int | None = None) -> tuple[list[Clip], str]:
    """The clips of ``dataset`` (a name of :data:`VIDEO_SETS`, a video file, a ``.yuv`` file or a
    folder of frames), the first ``limit`` of them if given, and how results name them."""
    if dataset in VIDEO_SETS:
        folder = data_root() / "video"
        paths = [path for pattern in VIDEO_SETS[dataset] for path in sorted(folder.glob(pattern))]
        if not paths:
            raise InputError(f"video set {dataset!r}: no clips in {folder} (set LNC_DATA)")
        name = dataset
    else:
        path = Path(dataset)
        if not path.exists():
            raise InputError(f"dataset {dataset!r} not found: neither {', '.join(VIDEO_SETS)} nor a clip or folder")
        paths, name = [path], dataset_name(path)
    return [_clip(path) for path in paths[:limit]], name


def read_clip(clip: Clip, frames: int | None = None) -> ClipFrames:
    """The first ``frames`` frames of ``clip`` (all if ``None``) as uint8 RGB arrays."""
    from lnc.tools.io.video import VideoReader

    with VideoReader(str(clip.path), clip.size, clip.fps) as reader:
        rgb = list(islice(reader.frames(), frames))
        info = reader.info
    if not rgb:
        raise InputError(f"{clip.name}: no frames")
    return ClipFrames(replace(info, frames=len(rgb)), rgb)


def measure(
    codec: VideoRateCodec, clip: ClipFrames, quality: float, intra_period: int
) -> dict[str, float | list[float]]:
    """One clip at one quality: the rate of all coded bytes, the clip's mean per-frame metrics,
    frames per second of encoding and decoding, and per-frame PSNR-RGB and bits."""
    info = clip.info
    start = time.perf_counter()
    coded = codec.encode(clip, quality, intra_period)
    encoded = time.perf_counter()
    decoded = codec.decode(coded)
    done = time.perf_counter()
    if len(decoded) != info.frames:
        raise LncError(f"{codec.label} decoded {len(decoded)} frames of {info.frames}")
    means, frame_psnr = video_metrics.clip_metrics(clip.rgb, decoded)
    bits = 8.0 * coded.size
    return {
        "bpp": bits / (info.frames * info.height * info.width),
        "bitrate": bits * info.fps / info.frames / 1000.0,
        **means,
        "encoding_fps": info.frames / (encoded - start),
        "decoding_fps": info.frames / (done - encoded),
        "quality": float(quality),
        "frame-psnr-rgb": frame_psnr,
        "frame-bits": coded.frame_bits,
    }


def _period(intra_period: int) -> str:
    return "first frame only" if intra_period == -1 else str(intra_period)


def evaluate(
    codec: VideoRateCodec, clips: list[Clip], qualities: tuple[float, ...], intra_period: int = DEFAULT_INTRA_PERIOD,
    frames_limit: int | None = None, per_sequence: bool = False, dataset: str = "",
) -> results.RDCurve:
    """The codec's RD curve over ``clips``: per-clip values averaged per quality, sorted by bpp.

    ``ms-ssim-rgb`` is averaged only when every clip is large enough for MS-SSIM; per-sequence
    values keep it where a clip has it.
    """
    from tqdm import tqdm

    sequences: dict[str, dict[str, list]] = {}
    frames = 0
    with tqdm(total=0, unit="frame", desc=codec.label, file=sys.stderr, leave=False) as bar:
        for clip in clips:
            source = read_clip(clip, frames_limit)
            bar.total += source.info.frames * len(qualities)
            bar.refresh()
            rows = []
            for quality in qualities:
                rows.append(measure(codec, source, quality, intra_period))
                bar.update(source.info.frames)
            sequences[clip.name] = {key: [row[key] for row in rows] for key in (*KEYS, *FRAME_KEYS) if key in rows[0]}
            frames += source.info.frames
    keys = [key for key in KEYS if all(key in values for values in sequences.values())]
    means = {key: np.mean([values[key] for values in sequences.values()], axis=0) for key in keys}
    order = np.argsort(means["bpp"], kind="stable")
    small = [name for name, values in sequences.items() if "ms-ssim-rgb" not in values]
    note = f"; no MS-SSIM: {', '.join(small)} under {image_metrics.MS_SSIM_MIN_SIDE} px" if small else ""
    curve = results.RDCurve(
        name=codec.label,
        description=(
            f"{codec.description}. Intra period {_period(intra_period)}; {dataset}: {len(clips)} "
            f"clip{'s' * (len(clips) != 1)}, {frames} frames; per-frame metrics averaged over each clip, "
            f"then over clips{note}"
        ),
        results={key: [float(means[key][i]) for i in order] for key in keys},
    )
    if per_sequence:
        curve.per_image = {name: {key: [v[i] for i in order] for key, v in values.items()}
                           for name, values in sequences.items()}
    return curve


def summary_table(curve: results.RDCurve) -> str:
    """A fixed-width table of the averaged results, one row per rate point."""
    columns = [("quality", "quality", "{:g}"), ("bpp", "bpp", "{:.4f}"), ("bitrate", "kbit/s", "{:.1f}"),
               ("psnr-rgb", "PSNR-RGB", "{:.3f}"), ("psnr-y", "PSNR-Y", "{:.3f}"), ("psnr-u", "PSNR-U", "{:.3f}"),
               ("psnr-v", "PSNR-V", "{:.3f}"), ("psnr-yuv", "PSNR-YUV", "{:.3f}"),
               ("ms-ssim-rgb", "MS-SSIM", "{:.5f}"), ("encoding_fps", "enc fps", "{:.1f}"),
               ("decoding_fps", "dec fps", "{:.1f}")]
    columns = [column for column in columns if column[0] in curve.results]
    rows = [[title for _, title, _ in columns]]
    rows += [[fmt.format(curve.results[key][i]) for key, _, fmt in columns] for i in range(len(curve.results["bpp"]))]
    return results.text_table(rows)
