"""Training data for video codecs: short clips cropped from frame folders and video files.

A source is a folder of frames (a Vimeo-90k septuplet: ``im1.png`` … ``im7.png``) or a video file
(read through :mod:`lnc.tools.io.video`, scaled down by ``video_scale`` so that a lossy source's
artefacts shrink below what the codec learns). Everything is decoded once into RAM as uint8; a
sample is ``clip_length`` frames at a random temporal stride (forwards or backwards) and position,
``[3, T, crop, crop]``, made float on the device.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lnc.entropy.errors import InputError
from lnc.tools.io.image import read_rgb
from lnc.train.data import EightBitDataModule, center_window, random_window, resolve_data_path

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


def _frame_folders(root: Path) -> list[Path]:
    """Every folder below ``root`` (itself included) that directly holds frames."""
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    return [f for f in folders if any(p.suffix.lower() in FRAME_SUFFIXES for p in f.iterdir())]


def _natural(path: Path) -> tuple:
    """Sort key that puts ``im2`` before ``im10``."""
    digits = "".join(c for c in path.stem if c.isdigit())
    return (int(digits) if digits else -1, path.name)


def _scaled(frame: np.ndarray, factor: int) -> np.ndarray:
    """An ``H×W×3`` uint8 frame box-filtered down by ``factor``."""
    if factor == 1:
        return frame
    pixels = torch.from_numpy(np.array(frame)).permute(2, 0, 1).unsqueeze(0).float()
    return F.avg_pool2d(pixels, factor).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()


def load_sequences(sources: Sequence[str | os.PathLike], video_scale: int = 1) -> list[np.ndarray]:
    """Each source's frame sequences as uint8 arrays ``[T, H, W, 3]``."""
    from lnc.tools.io.video import VIDEO_SUFFIXES, VideoReader

    sequences = []
    for source in sources:
        path = resolve_data_path(source)
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            with VideoReader(str(path)) as reader:
                sequences.append(np.stack([_scaled(frame, video_scale) for frame in reader.frames()]))
        elif path.is_dir():
            for folder in _frame_folders(path):
                files = sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural)
                sequences.append(np.stack([read_rgb(p) for p in files]))
        else:
            raise InputError(f"video training source not found (a frame folder or a video file): {path}")
    if not sequences:
        raise InputError(f"no frames in {list(sources)}")
    return sequences


class VideoClips(Dataset):
    """Clips ``[3, T, crop, crop]`` (uint8) of the sequences: random start, stride (1..``max_stride``),
    direction, position and horizontal flip in training; the first frames, centred, for validation."""

    def __init__(
        self, sequences: Sequence[np.ndarray], clip_length: int, crop_size: int, train: bool,
        max_stride: int = 1, repeats: int = 1,
    ) -> None:
        self.sequences = [s for s in sequences if len(s) >= clip_length and min(s.shape[1:3]) >= crop_size]
        if not self.sequences:
            raise InputError(f"no sequence has {clip_length} frames of at least {crop_size} px")
        self.clip_length, self.crop_size, self.train = clip_length, crop_size, train
        self.max_stride, self.repeats = max_stride, repeats

    def __len__(self) -> int:
        return len(self.sequences) * self.repeats

    def __getitem__(self, index: int) -> Tensor:
        frames = self.sequences[index % len(self.sequences)]
        size = (self.crop_size, self.crop_size)
        if not self.train:
            window = center_window(frames.shape[1:3], size)
            clip = frames[: self.clip_length, window[0], window[1]]
            return torch.from_numpy(np.array(clip)).permute(3, 0, 1, 2).contiguous()
        stride = int(torch.randint(1, self.max_stride + 1, ()))
        stride = min(stride, (len(frames) - 1) // (self.clip_length - 1))
        span = stride * (self.clip_length - 1) + 1
        start = int(torch.randint(0, len(frames) - span + 1, ()))
        order = list(range(start, start + span, stride))
        if torch.rand(()) < 0.5:
            order.reverse()
        window = random_window(frames.shape[1:3], size)
        clip = torch.from_numpy(np.array(frames[order][:, window[0], window[1]])).permute(3, 0, 1, 2)
        if torch.rand(()) < 0.5:
            clip = clip.flip(-1)
        return clip.contiguous()


class VideoClipDataModule(EightBitDataModule):
    """Clips of frame folders and video files for training; the first ``val_sequences`` sequences
    (a fixed choice) are held out for validation.

    Args:
        sources: frame folders (searched recursively for folders of frames) and video files,
            relative to the data root or absolute.
        clip_length: frames per clip: one intra frame and ``clip_length − 1`` predicted ones.
        crop_size: side of the square crops; a multiple of 64.
        max_stride: clips skip up to ``max_stride − 1`` frames between their frames (faster motion).
        video_scale: video files are box-filtered down by this factor.
        val_sequences: sequences held out for validation.
        repeats: clips drawn per sequence and epoch.
    """

    def __init__(
        self,
        sources: list[str],
        clip_length: int = 3,
        crop_size: int = 256,
        batch_size: int = 4,
        val_batch_size: int | None = None,
        max_stride: int = 2,
        video_scale: int = 2,
        val_sequences: int = 2,
        repeats: int = 16,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if clip_length < 2 or crop_size <= 0 or batch_size <= 0 or max_stride < 1 or video_scale < 1:
            raise InputError("clip_length ≥ 2; crop_size, batch_size, max_stride and video_scale positive")
        self.save_hyperparameters()
        self.train_set: VideoClips | None = None
        self.val_set: VideoClips | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        sequences = load_sequences(hp.sources, hp.video_scale)
        # Hold out sequences no longer than the median (septuplets), never a long video that most clips come from.
        median = sorted(len(t) for t in sequences)[len(sequences) // 2]
        short = [i for i, t in enumerate(sequences) if len(t) <= median]
        order = torch.randperm(len(short), generator=torch.Generator().manual_seed(0)).tolist()
        held = {short[k] for k in order[: hp.val_sequences]}
        train = [s for i, s in enumerate(sequences) if i not in held]
        val = [s for i, s in enumerate(sequences) if i in held]
        self.train_set = VideoClips(train, hp.clip_length, hp.crop_size, True, hp.max_stride, hp.repeats)
        self.val_set = VideoClips(val, hp.clip_length, hp.crop_size, False)
