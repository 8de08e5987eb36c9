"""Benchmarks that print ratios against a peer measured in the same run."""
from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lnc.tools.io.image import read_rgb
from lnc.tools.pipeline.common import padded


def dataset_parser(description: str, default_model: str, kind: str) -> argparse.ArgumentParser:
    """The options of a benchmark over a dataset's images: model, dataset, rate points, a limit."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-m", "--model", default=default_model, help=f"a {kind} model name or .safetensors path")
    parser.add_argument("--dataset", default="kodak", help="kodak, clic or a folder of images")
    parser.add_argument("-q", "--quality", type=float, nargs="+", help="rate points (default: every one)")
    parser.add_argument("--limit", type=int, help="only the first N images")
    return parser


def padded_image(rgb: np.ndarray, multiple: int) -> Tensor:
    """An 8-bit RGB array as ``[1, 3, H, W]`` in [0, 1], padded (replicating edges) to multiples of
    ``multiple`` as the image pipeline pads a tile: for images of one tile (Kodak) the codec sees
    what the file's encoder saw."""
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    h, w = x.shape[2:]
    return F.pad(x, (0, padded(w, multiple) - w, 0, padded(h, multiple) - h), mode="replicate")


def dataset_images(paths: Sequence[Path], multiple: int) -> Iterator[tuple[int, Path, np.ndarray, Tensor]]:
    """``(j, path, rgb, x)`` for each image: its 8-bit RGB array and :func:`padded_image` of it."""
    for j, path in enumerate(paths):
        rgb = read_rgb(path)
        yield j, path, rgb, padded_image(rgb, multiple)
