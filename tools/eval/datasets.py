"""Where evaluation data and published RD curves live.

Data sits beside the repository (``<repo>/../shared/data``, or ``$LNC_DATA``) and is never
copied into it or downloaded; named datasets are folders inside it.
"""
from __future__ import annotations

import os
from pathlib import Path

from lnc.entropy.errors import InputError

NAMED = {"kodak": "kodak", "clic": "clic"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")

_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """``$LNC_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("LNC_DATA") or _REPO.parent / "shared" / "data")


def anchors_root() -> Path:
    """``$LNC_ANCHORS``, else ``<repo>/../shared/anchors``: published RD curves in CompressAI's format."""
    return Path(os.environ.get("LNC_ANCHORS") or _REPO.parent / "shared" / "anchors")


def resolve(dataset: str) -> Path:
    """Folder of a dataset given by name (kodak, clic) or as a path."""
    if dataset in NAMED:
        folder = data_root() / NAMED[dataset]
        if not folder.is_dir():
            raise InputError(
                f"dataset {dataset!r} not found: {folder} is not a folder "
                f"(set LNC_DATA to the folder holding {NAMED[dataset]}/)"
            )
        return folder
    folder = Path(dataset)
    if not folder.is_dir():
        raise InputError(f"dataset {dataset!r} not found: neither {', '.join(NAMED)} nor a folder")
    return folder


def image_paths(dataset: str, limit: int | None = None) -> list[Path]:
    """The images of a dataset in name order, the first ``limit`` of them if given."""
    folder = resolve(dataset)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise InputError(f"dataset {dataset!r}: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return paths[:limit] if limit else paths


def dataset_name(folder: Path) -> str:
    """How results name a dataset folder: relative to the data root when inside it (``kodak``), else
    the folder's own name, never a machine's absolute path."""
    try:
        return str(folder.resolve().relative_to(data_root().resolve()))
    except ValueError:
        return folder.name
