"""Training data shared by every modality: paths under the data root and crop windows.

Paths in configs are relative to the data root (``LNC_DATA``, else ``<repo>/../shared/data``), so a
config names ``train/images/sunhays80_hr`` and runs unchanged on any machine with the shared data.
The data modules are per modality: :mod:`lnc.train.image_data`, :mod:`lnc.train.audio_data`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lnc.entropy.errors import InputError
from lnc.tools.eval.datasets import data_root


def resolve_data_path(path: str | os.PathLike) -> Path:
    """An absolute path as is; a relative one below :func:`data_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_root() / p


def list_files(dirs: Sequence[str | os.PathLike], suffixes: Sequence[str], kind: str) -> list[Path]:
    """All files with one of ``suffixes`` below ``dirs`` (recursive, sorted); a missing folder or one
    without such files is an error naming the ``kind`` of data."""
    files: list[Path] = []
    for d in dirs:
        root = resolve_data_path(d)
        if not root.is_dir():
            raise InputError(f"{kind} folder not found: {root}")
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not found:
            raise InputError(f"no {kind} files ({', '.join(suffixes)}) below {root}")
        files.extend(found)
    return files


def random_window(
    shape: Sequence[int], size: Sequence[int], generator: torch.Generator | None = None
) -> tuple[slice, ...]:
    """Slices of a uniformly placed window of ``size`` inside the leading axes ``shape``.

    One helper for image crops (H, W), video clips (T, H, W) and audio segments (T,).
    """
    starts = (int(torch.randint(0, n - s + 1, (1,), generator=generator)) for n, s in zip(shape, size))
    return tuple(slice(a, a + s) for a, s in zip(starts, size))


def center_window(shape: Sequence[int], size: Sequence[int]) -> tuple[slice, ...]:
    """Slices of the centred window of ``size`` inside the leading axes ``shape`` (for validation)."""
    return tuple(slice((n - s) // 2, (n - s) // 2 + s) for n, s in zip(shape, size))


class EightBitDataModule(LightningDataModule):
    """What the image and video data modules share: loaders over the ``train_set`` and ``val_set``
    their ``setup`` makes (hyperparameters ``batch_size``, ``val_batch_size``, ``num_workers``).
    Samples leave the workers as uint8 and become float in [0, 1] on the device: four times less to
    copy and pin than float32."""

    train_set: Dataset | None
    val_set: Dataset | None

    def _loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.val_batch_size or self.hparams.batch_size, train=False)

    def on_after_batch_transfer(self, batch: Tensor, dataloader_idx: int) -> Tensor:
        return batch.float().div_(255.0)
