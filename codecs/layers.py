"""Layers shared by lnc's codecs: strided convolutions and (inverse) GDN."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnc.entropy.bound_ops import LowerBound


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """Convolution that downsamples by ``stride`` with 'same' padding."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(
    in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2
) -> nn.ConvTranspose2d:
    """Transposed convolution that upsamples exactly by ``stride``."""
    return nn.ConvTranspose2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        output_padding=stride - 1,
    )


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
    multiplies by the square root instead, for synthesis transforms.
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
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
