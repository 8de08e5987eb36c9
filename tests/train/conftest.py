"""Shared by the training tests: the shipped configs, shrunk to run on a CPU in seconds."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "image"


def shrink_config(directory: Path, name: str, checkpoint_every: int) -> Path:
    """``configs/image/NAME`` with a 16-channel codec on 64² McMaster crops, CPU, fp32, one Kodak image
    (at two quality points for variable rate), a checkpoint every ``checkpoint_every`` steps."""
    config = yaml.safe_load((CONFIGS / name).read_text())
    config["trainer"].update(
        accelerator="cpu", precision="32-true", log_every_n_steps=1, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    config["model"]["codec"]["init_args"].update(N=16, M=16)
    config["data"]["init_args"].update(
        train_dirs=["train/images/mcmaster18"], crop_size=64, batch_size=4, num_workers=0
    )
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["every_n_train_steps"] = checkpoint_every
        if callback["class_path"].endswith("RealRate"):
            variable = config["model"]["codec"]["init_args"].get("rate_points", 0)
            callback["init_args"].update(images=1, qualities=[1.0, float(variable)] if variable else None)
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def shrunk_config() -> Callable[[Path, str, int], Path]:
    """:func:`shrink_config`, for tests and fixtures of any scope."""
    return shrink_config

