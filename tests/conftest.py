"""Shared fixtures: the real data under LNC_DATA (default ../shared/data beside the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
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
