"""Generalised divisive normalisation (GDN/IGDN) for signals of any dimension."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnc.entropy.bound_ops import LowerBound

_POINTWISE = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class NonNegative(nn.Module):
    """Parametrise a non-negative tensor as ``max(p, sqrt(min + o²))² - o²`` (Ballé 2018).

    The pedestal ``o²`` keeps the square root's gradient finite near zero. Buffer names match
    CompressAI's ``NonNegativeParametrizer`` so its GDN state dicts load unchanged.
    """

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18) -> None:
        super().__init__()
        self.register_buffer("pedestal", torch.tensor([reparam_offset**2]))
        self.lower_bound = LowerBound((minimum + reparam_offset**2) ** 0.5)

    def init(self, value: Tensor) -> Tensor:
        """The raw parameter whose parametrised value is ``value``."""
        return torch.sqrt(torch.clamp_min(value + self.pedestal, float(self.pedestal)))

    def forward(self, raw: Tensor) -> Tensor:
        return self.lower_bound(raw) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalised divisive normalisation, ``y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)``.

    Ballé, Laparra & Simoncelli 2016 (arXiv:1511.06281); ``inverse=True`` gives IGDN, which
    multiplies by the square root instead, for synthesis transforms. Works on ``[B, C, ...]`` of any
    number of trailing dimensions (audio, images, video).
    """

    def __init__(
        self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1
    ) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        beta = self.beta_reparam(self.beta)
        spatial = x.dim() - 2
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, *([1] * spatial))
        norm = _POINTWISE[spatial](x * x, gamma, beta)  # β_i + Σ_j γ_ij x_j², a 1×1 convolution
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
