"""Training data for image codecs: random crops from image folders (uint8 until the device,
:class:`~lnc.train.data.EightBitDataModule`)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lnc.entropy.errors import InputError
from lnc.tools.io.image import read_rgb
from lnc.train.data import EightBitDataModule, center_window, list_files, random_window

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
SmallImages = Literal["upscale", "skip"]


def list_images(dirs: Sequence[str | os.PathLike]) -> list[Path]:
    """All image files below ``dirs`` (recursive, sorted); a missing or empty folder is an error."""
    return list_files(dirs, IMAGE_SUFFIXES, "image")


def load_rgb(path: Path, min_side: int) -> np.ndarray:
    """``path`` as an H×W×3 uint8 array (:func:`lnc.tools.io.image.read_rgb`) whose short side is at
    least ``min_side`` (bicubic upscale)."""
    rgb = read_rgb(path)
    short = min(rgb.shape[:2])
    if short >= min_side:
        return rgb
    scale = min_side / short
    size = (max(min_side, round(rgb.shape[1] * scale)), max(min_side, round(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def short_side(path: Path) -> int:
    """The short side of an image, read from its header only."""
    with Image.open(path) as im:
        return min(im.size)


class ImageCrops(Dataset):
    """Crops of ``crop_size`` from image files: random position and horizontal flip, or centred for validation.

    With ``cache`` the decoded uint8 images are kept in RAM, decoded once in the main process so that
    forked workers share them; otherwise every sample decodes its file.
    """

    def __init__(
        self, files: Sequence[Path], crop_size: int, train: bool, cache: bool = False, repeats: int = 1
    ) -> None:
        self.files = list(files)
        self.crop_size = crop_size
        self.train = train
        self.repeats = repeats
        self.images: list[np.ndarray] | None = None
        if cache:
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                self.images = list(pool.map(lambda p: load_rgb(p, crop_size), self.files))

    def __len__(self) -> int:
        return len(self.files) * self.repeats

    def __getitem__(self, index: int) -> Tensor:
        i = index % len(self.files)
        image = self.images[i] if self.images is not None else load_rgb(self.files[i], self.crop_size)
        size = (self.crop_size, self.crop_size)
        window = random_window(image.shape[:2], size) if self.train else center_window(image.shape[:2], size)
        crop = torch.from_numpy(np.array(image[window])).permute(2, 0, 1)
        if self.train and torch.rand(()) < 0.5:
            crop = crop.flip(-1)
        return crop.contiguous()


class ImageFolderDataModule(EightBitDataModule):
    """Random crops from PNG/JPEG folders for training, centred crops of held-out images for validation.

    Args:
        train_dirs: image folders (searched recursively), relative to the data root or absolute.
        val_dirs: held-out folders; if not given, ``val_fraction`` of the training images is held out
            (a fixed, seeded choice, so a resumed run validates on the same images).
        crop_size: side of the square crops; a multiple of 64 for the image codecs.
        small_images: what happens to images whose short side is under ``crop_size``: ``"upscale"``
            (bicubic, to a short side of ``crop_size``) or ``"skip"``.
        repeats: crops drawn per training image and epoch (the dataset length is ``files × repeats``).
        cache_images: keep the decoded uint8 images in RAM (decoding a 1024×768 PNG per crop is slow).
    """

    def __init__(
        self,
        train_dirs: list[str],
        val_dirs: list[str] | None = None,
        val_fraction: float = 0.05,
        crop_size: int = 256,
        batch_size: int = 16,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        cache_images: bool = False,
        small_images: SmallImages = "upscale",
        repeats: int = 1,
    ) -> None:
        super().__init__()
        if crop_size <= 0 or batch_size <= 0 or repeats <= 0:
            raise InputError("crop_size, batch_size and repeats must be positive")
        if val_dirs is None and not 0.0 < val_fraction < 1.0:
            raise InputError(f"val_fraction must lie in (0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.train_set: ImageCrops | None = None
        self.val_set: ImageCrops | None = None

    def _files(self) -> tuple[list[Path], list[Path]]:
        hp = self.hparams
        train = list_images(hp.train_dirs)
        if hp.val_dirs:
            val = list_images(hp.val_dirs)
        else:
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0)).tolist()
            n_val = max(1, round(len(train) * hp.val_fraction))
            held = set(order[:n_val])
            val = [f for i, f in enumerate(train) if i in held]
            train = [f for i, f in enumerate(train) if i not in held]
        if hp.small_images == "skip":
            train = [f for f in train if short_side(f) >= hp.crop_size]
            val = [f for f in val if short_side(f) >= hp.crop_size]
        if not train or not val:
            raise InputError(f"no training or validation images of at least {hp.crop_size} px left")
        return train, val

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        train, val = self._files()
        self.train_set = ImageCrops(train, hp.crop_size, train=True, cache=hp.cache_images, repeats=hp.repeats)
        self.val_set = ImageCrops(val, hp.crop_size, train=False, cache=hp.cache_images)
