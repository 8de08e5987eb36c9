"""The estimated rate of a batch: what an entropy model's likelihoods say the coder will spend."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def bits_per_pixel(likelihoods: Mapping[str, Tensor], num_pixels: int | Tensor) -> Tensor:
    """Estimated rate of each sample, shape [B]: −Σ log2 p over all latents divided by ``num_pixels``
    (a number, or one per sample)."""
    bits = sum(torch.log2(lik.float()).flatten(1).sum(1) for lik in likelihoods.values())
    return -bits / num_pixels
