"""Training data for audio codecs: random segments of waveforms from folders of audio files.

Files are decoded once at setup (through :mod:`lnc.tools.io.audio`, the one audio reader) into
float32 mono or multichannel arrays held in RAM, and segments are cut from them per step; a held-out
fraction of the files validates on fixed segments.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lnc.entropy.errors import InputError
from lnc.tools.io.audio import AUDIO_SUFFIXES, AudioReader
from lnc.train.data import list_files, random_window


def list_audio(dirs: list[str]) -> list[Path]:
    """All audio files below ``dirs`` (recursive, sorted); a missing or empty folder is an error."""
    return list_files(dirs, AUDIO_SUFFIXES, "audio")


def load_waveform(path: Path, channels: int, sample_rate: int | None) -> np.ndarray:
    """The file as float32 ``[channels, T]``: mono files are repeated, extra channels averaged away;
    resampled to ``sample_rate`` (torchaudio's windowed-sinc resampler) unless that is None."""
    with AudioReader(path) as reader:
        rate = reader.info.sample_rate
        wave = np.concatenate(list(reader.chunks(1 << 20)), axis=1)
    if sample_rate is not None and rate != sample_rate:
        from torchaudio.functional import resample

        wave = resample(torch.from_numpy(wave), rate, sample_rate).numpy()
    if wave.shape[0] == channels:
        return wave
    mono = wave.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0)


class AudioSegments(Dataset):
    """Segments of ``length`` samples: random in training (``repeats`` per file and epoch), the
    file's start in validation."""

    def __init__(self, waves: list[np.ndarray], length: int, train: bool, repeats: int = 1) -> None:
        self.waves = [w for w in waves if w.shape[1] >= length]
        if not self.waves:
            raise InputError(f"no audio file of at least {length} samples")
        self.length, self.train, self.repeats = length, train, repeats

    def __len__(self) -> int:
        return len(self.waves) * (self.repeats if self.train else 1)

    def __getitem__(self, index: int) -> Tensor:
        wave = self.waves[index % len(self.waves)]
        if self.train:
            (window,) = random_window(wave.shape[1:], (self.length,))
        else:
            window = slice(0, self.length)
        return torch.from_numpy(np.ascontiguousarray(wave[:, window]))


class AudioFolderDataModule(LightningDataModule):
    """Random segments from folders of audio files for training, a held-out fraction for validation.

    Args:
        train_dirs: audio folders (searched recursively), relative to the data root or absolute.
        val_fraction: fraction of the files held out (a fixed, seeded choice).
        segment: samples per segment; a multiple of the codec's downsampling.
        channels: channels per segment (the codec's input channels).
        sample_rate: resample files at another rate to this one (None: take every file as it is),
            e.g. for a mel distortion, which is defined at one rate.
        batch_size, repeats, num_workers: as for images.
    """

    def __init__(
        self,
        train_dirs: list[str],
        val_fraction: float = 0.05,
        segment: int = 16384,
        channels: int = 1,
        sample_rate: int | None = None,
        batch_size: int = 16,
        repeats: int = 8,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if segment <= 0 or batch_size <= 0 or repeats <= 0 or channels <= 0:
            raise InputError("segment, batch_size, repeats and channels must be positive")
        if not 0.0 < val_fraction < 1.0:
            raise InputError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.train_set: AudioSegments | None = None
        self.val_set: AudioSegments | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        files = list_audio(hp.train_dirs)
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(0)).tolist()
        held = set(order[: max(1, round(len(files) * hp.val_fraction))])
        waves = [load_waveform(f, hp.channels, hp.sample_rate) for f in files]
        self.train_set = AudioSegments([w for i, w in enumerate(waves) if i not in held], hp.segment, True, hp.repeats)
        self.val_set = AudioSegments([w for i, w in enumerate(waves) if i in held], hp.segment, False)

    def _loader(self, dataset: AudioSegments, train: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(dataset, batch_size=self.hparams.batch_size, shuffle=train, drop_last=train,
                          num_workers=workers, persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)
