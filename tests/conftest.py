"""Shared fixtures: the real data under LNC_DATA (default ../shared/data beside the repo)."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LNC_DATA", REPO.parent / "shared" / "data"))
KODAK = DATA / "kodak"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"test data missing: {DATA} (set LNC_DATA)"
    return DATA


@pytest.fixture(scope="session")
def kodak_paths(data_dir: Path) -> list[Path]:
    paths = sorted((data_dir / "kodak").glob("kodim*.png"))
    assert len(paths) == 24, "expected the 24 Kodak images"
    return paths


@pytest.fixture(scope="session")
def kodim(kodak_paths: list[Path]):
    """kodim(n) → the n-th Kodak image as an RGB uint8 array."""
    cache: dict[int, np.ndarray] = {}

    def get(n: int) -> np.ndarray:
        if n not in cache:
            cache[n] = np.asarray(Image.open(kodak_paths[n - 1]).convert("RGB"))
        return cache[n]

    return get


def recorded_results(model: str) -> dict:
    """The per-image Kodak results a shipped model's card records (``Recorded results: `…json```),
    so quality floors follow the shipped weights instead of constants copied into the tests."""
    card = (REPO / "codecs" / "weights" / f"{model}.md").read_text()
    match = re.search(r"Recorded results[^`]*`([^`]+\.json)`", card)
    assert match, f"the model card of {model} names no recorded results"
    return json.loads((REPO / match[1]).read_text())


def recorded_point(model: str, image: str, quality: float) -> dict[str, float]:
    """bpp, PSNR and MS-SSIM that the card's results record for ``image`` at ``quality``."""
    per_image = recorded_results(model)["per-image"][image]
    k = per_image["quality"].index(float(quality))
    return {key: values[k] for key, values in per_image.items()}


@pytest.fixture(scope="session")
def recorded():
    """:func:`recorded_point`: a shipped model's recorded result for one Kodak image and quality."""
    return recorded_point


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for small models: they gain nothing from two, and two OpenMP
    threads on a machine whose other core is busy slow every small op down by orders of magnitude."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def video_model(tmp_path_factory) -> Path:
    """A ``blockmc-residual`` weights file whose residual codec is the shipped image default (not
    trained for video): the video path's tests need a real model, not a trained one."""
    from lnc.codecs.registry import save_codec
    from lnc.codecs.video import BlockMotionResidual
    from lnc.train.module import load_initial_weights

    codec = BlockMotionResidual()
    load_initial_weights(codec, "he2021-checkerboard-exact-vr")
    codec.eval().update(force=True)
    codec.intra  # pins the intra model's hash into the weights
    path = tmp_path_factory.mktemp("video-model") / "blockmc-test.safetensors"
    save_codec(codec, path, {"lnc.name": "blockmc-test"})
    return path
