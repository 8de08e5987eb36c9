"""Encoder-side latent refinement: more encoder time for fewer bits at the same quality.

The analysis transform is amortised: one network guesses the latents of every picture. For one
given picture better latents exist for the same decoder, and Yang, Bamler & Mandt 2020
("Improving Inference for Neural Image Compression", arXiv:2006.04240) find them by gradient
descent on the codec's own objective, bpp + λ·255²·MSE at the λ the rate point was trained for,
with rounding relaxed by stochastic Gumbel annealing (:func:`lnc.entropy.base.annealed_round`) so
that a latent can cross a rounding boundary. Only the encoder changes: the bitstream format and
the decoder stay as they are. Each step costs one forward and one backward pass of the codec;
where the hardware has bfloat16 the transforms run in it (the entropy models always compute in
float32), and the final choice between refined and plain latents is made in float32 on rounded
values, which is what gets coded.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from lnc.codecs.base import ImageCodec
from lnc.entropy.base import EntropyModel
from lnc.entropy.errors import LncError
from lnc.entropy.rate import bits_per_pixel

LEARNING_RATE = 1e-2
"""Adam's step on the latents (latent units are quantisation bins)."""
TEMPERATURE = 0.5
"""SGA temperature at the first step; it decays as ``exp(-DECAY · step / steps)``."""
DECAY = 1.33
"""Annealing speed: the temperature ends near 0.13, soft enough to keep moving latents to the last
step (measured on kodim01 at 100 steps: better than decaying to 0.01, the paper's end point)."""


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 convolutions in hardware (AVX512-BF16/AMX CPUs, GPUs since
    Ampere), where the refinement's passes run under bf16 autocast; elsewhere bf16 is emulated,
    slower than float32, and they stay in float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()


def training_lambda(codec: ImageCodec, quality: float) -> float:
    """The λ (of D = 255²·MSE) the codec was trained with at ``quality``, read from its weights
    file; between two rate points it is interpolated geometrically, as the gains are."""
    config = json.loads((getattr(codec, "metadata", None) or {}).get("lnc.train.config", "{}"))
    if config.get("distortion", "mse") != "mse":
        raise LncError(f"refinement needs an MSE-trained model, not one trained for {config['distortion']!r}")
    lmbdas = config.get("lmbdas") if codec.rate_points else [config.get("lmbda")]
    if not lmbdas or None in lmbdas or len(lmbdas) != max(codec.rate_points, 1):
        raise LncError(f"model {codec.name!r} does not record the λ it was trained with; give lmbda=…")
    if not codec.rate_points:
        return float(lmbdas[0])
    return float(np.exp(np.interp(quality, np.arange(1, codec.rate_points + 1), np.log(lmbdas))))


@contextmanager
def _annealed_quantisation(codec: ImageCodec) -> Iterator[list[EntropyModel]]:
    """The codec's entropy models in training mode with SGA rounding, restored afterwards."""
    models = [m for m in codec.modules() if isinstance(m, EntropyModel)]
    saved = [(m.training, m.training_quantization, m.sga_temperature) for m in models]
    try:
        for m in models:
            m.train()
            m.training_quantization = "sga"
        yield models
    finally:
        for m, (training, mode, temperature) in zip(models, saved):
            m.train(training)
            m.training_quantization = mode
            m.sga_temperature = temperature


def _objective(codec: ImageCodec, latents: dict[str, Tensor], x: Tensor, q: Tensor, lmbda: float,
               masks: Tensor) -> Tensor:
    """bpp + λ·255²·MSE of each picture of the batch, over its own pixels only (not the padding)."""
    out = codec.forward_latents(latents, q)
    pixels = masks.flatten(1).sum(1)
    mse = ((out["x_hat"].float() - x).pow(2) * masks).flatten(1).sum(1) / (3 * pixels)
    return bits_per_pixel(out["likelihoods"], pixels) + lmbda * 255.0**2 * mse


def refine_latents(
    codec: ImageCodec,
    x: Tensor,
    quality: float,
    steps: int,
    *,
    lmbda: float | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
) -> dict[str, Tensor]:
    """Latents for ``x`` ``[B, 3, H, W]`` that code it better than ``codec.analyse(x)``.

    Args:
        quality: the rate point; ``lmbda`` defaults to the one it was trained with.
        steps: gradient steps (each a forward and backward pass).
        sizes: each picture's height and width inside its padded ``H × W`` (default: all of it).
        seed: the annealing noise is drawn from this seed, so an encode is repeatable.
        progress: called after every step.

    Per picture, the refined latents are kept only when their rounded objective is lower than
    the analysis transform's, so refining never makes a picture worse by the codec's own measure.
    """
    if lmbda is None:
        lmbda = training_lambda(codec, quality)
    device = x.device
    noise_devices = [device] if device.type == "cuda" else []
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(noise_devices):
        torch.manual_seed(seed)
        x = x.detach().clone().float()
        q = codec.quality_tensor(quality, x.shape[0], device)
        masks = torch.zeros_like(x[:, :1])
        for mask, (h, w) in zip(masks, sizes or [x.shape[-2:]] * x.shape[0]):
            mask[..., :h, :w] = 1
        with torch.no_grad():
            start = codec.analyse(x, q)
        latents = {k: v.clone().requires_grad_() for k, v in start.items()}
        optimizer = torch.optim.Adam(latents.values(), lr=LEARNING_RATE)
        fast = bf16_is_native(device)
        with _annealed_quantisation(codec) as models:
            for step in range(steps):
                for m in models:
                    m.sga_temperature = TEMPERATURE * math.exp(-DECAY * step / steps)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                    loss = _objective(codec, latents, x, q, lmbda, masks).sum()
                grads = torch.autograd.grad(loss, list(latents.values()))  # the weights stay untouched
                for value, grad in zip(latents.values(), grads):
                    value.grad = grad
                optimizer.step()
                if progress is not None:
                    progress()
        with torch.no_grad():
            refined = {k: v.detach() for k, v in latents.items()}
            better = _objective(codec, refined, x, q, lmbda, masks) < _objective(codec, start, x, q, lmbda, masks)
            keep = better.view(-1, 1, 1, 1)
            return {k: torch.where(keep, v, start[k]) for k, v in refined.items()}
