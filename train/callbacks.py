"""Training callbacks: weight averaging, real-file rate checks on Kodak, and the training-curve plot."""
from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities import rank_zero_only

from lnc.tools.io.image import read_rgb
from lnc.train.data import resolve_data_path
from lnc.train.losses import bits_per_pixel, psnr


class EMA(Callback):
    """Exponential moving average of the codec's parameters (Polyak & Juditsky 1992).

    The average is updated after every training step, swapped in for validation (so the val loop
    and :class:`RealRate` measure it) and kept in the checkpoint under the callback's state, where
    ``lnc export`` picks it up. The training weights themselves are never replaced.
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] | None = None
        self._backup: dict[str, torch.Tensor] | None = None

    def _params(self, pl_module: LightningModule) -> dict[str, torch.nn.Parameter]:
        return dict(pl_module.codec.named_parameters())

    def _shadow(self, params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
        """The average, started from the current weights or (after a restore) moved to their device."""
        if self.shadow is None:
            self.shadow = {k: p.detach().float().clone() for k, p in params.items()}
        elif any(self.shadow[k].device != p.device for k, p in params.items()):
            self.shadow = {k: v.to(params[k].device) for k, v in self.shadow.items()}
        return self.shadow

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        params = self._params(pl_module)
        shadow = self._shadow(params)
        current = [p.detach().float() for p in params.values()]
        torch._foreach_lerp_([shadow[k] for k in params], current, 1.0 - self.decay)

    @torch.no_grad()
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.shadow is None or trainer.sanity_checking:
            return
        params = self._params(pl_module)
        shadow = self._shadow(params)
        self._backup = {name: p.detach().clone() for name, p in params.items()}
        for name, p in params.items():
            p.copy_(shadow[name])

    @torch.no_grad()
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._backup is None:
            return
        for name, p in self._params(pl_module).items():
            p.copy_(self._backup[name])
        self._backup = None

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.decay = state_dict["decay"]
        self.shadow = state_dict["shadow"]


class RealRate(Callback):
    """After each validation epoch, code a few Kodak images into real ``.lnc`` files and back.

    Logs the actual file size in bpp (8·bytes / (H·W)) and the PSNR of the decoded image next to the
    rate and PSNR the training objective estimates for the same image, per quality point. Runs on
    global rank 0 only, on a copy of the codec, so the training codec's tables stay untouched.

    Args:
        images: how many images of ``directory`` to code (sorted, from the first).
        directory: evaluation images, relative to the data root. Evaluation only: never train on them.
        qualities: quality points (default: every rate point of a variable-rate codec).
    """

    def __init__(self, images: int = 2, directory: str = "kodak", qualities: list[float] | None = None) -> None:
        self.images = images
        self.directory = directory
        self.qualities = qualities
        self._rgb: list[np.ndarray] | None = None

    def _load(self) -> list[np.ndarray]:
        if self._rgb is None:
            files = sorted(p for p in resolve_data_path(self.directory).iterdir() if p.suffix.lower() == ".png")
            self._rgb = [read_rgb(p) for p in files[: self.images]]
        return self._rgb

    @torch.no_grad()
    def measure(self, codec: torch.nn.Module, rgb: np.ndarray, quality: float | None) -> dict[str, float]:
        """Real and estimated bpp and PSNR of one image at one quality."""
        from lnc.tools.pipeline.image import decode_bytes, encode_array

        height, width = rgb.shape[:2]
        data = encode_array(rgb, codec, quality)
        decoded = decode_bytes(data, codec)
        real_mse = np.mean((decoded.astype(np.float64) - rgb.astype(np.float64)) ** 2) / 255.0**2

        x = torch.tensor(rgb).permute(2, 0, 1)[None].float().div(255).to(next(codec.parameters()).device)
        step = codec.downsampling
        padded = F.pad(x, (0, -width % step, 0, -height % step), mode="replicate")
        out = codec(padded, quality)
        est_mse = (out["x_hat"][..., :height, :width].clamp(0, 1) - x).pow(2).mean()
        return {
            "bpp_real": 8.0 * len(data) / (height * width),
            "psnr_real": float(psnr(torch.tensor(real_mse))),
            "bpp_est": float(bits_per_pixel(out["likelihoods"], height * width)[0]),
            "psnr_est": float(psnr(est_mse)),
        }

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        codec = copy.deepcopy(pl_module.codec).float().eval()
        codec.update(force=True)
        variable = bool(codec.rate_points)
        qualities = self.qualities or (codec.quality_points if variable else [None])
        for q in qualities:
            rows = [self.measure(codec, rgb, q) for rgb in self._load()]
            suffix = f"_q{q:g}" if variable else ""
            for key in rows[0]:
                value = sum(r[key] for r in rows) / len(rows)
                pl_module.log(f"kodak/{key}{suffix}", value, rank_zero_only=True)


class PlotCurves(Callback):
    """Plot the logged training and validation curves to ``curves.png`` in the logger's folder."""

    def __init__(self, metrics: tuple[str, ...] = ("train/loss", "val/loss", "train/bpp", "train/psnr")) -> None:
        self.metrics = metrics

    @rank_zero_only
    def plot(self, trainer: Trainer) -> Path | None:
        """Write the plot from the CSV logger's ``metrics.csv``; None when there is nothing to plot."""
        if trainer.logger is None or trainer.logger.log_dir is None:
            return None
        trainer.logger.save()
        table = Path(trainer.logger.log_dir) / "metrics.csv"
        if not table.is_file():
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        series: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in self.metrics}
        with table.open() as f:
            for row in csv.DictReader(f):
                for m in self.metrics:
                    if row.get(m):
                        series[m][0].append(float(row["step"]))
                        series[m][1].append(float(row[m]))
        shown = [m for m in self.metrics if series[m][0]]
        if not shown:
            return None
        fig, axes = plt.subplots(len(shown), 1, figsize=(7, 2.2 * len(shown)), sharex=True, squeeze=False)
        for ax, m in zip(axes[:, 0], shown):
            ax.plot(*series[m], lw=1)
            ax.set_ylabel(m)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        out = Path(trainer.logger.log_dir) / "curves.png"
        fig.savefig(out, dpi=100)
        plt.close(fig)
        return out

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.plot(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.plot(trainer)
