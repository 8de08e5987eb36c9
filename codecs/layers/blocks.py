"""Small building blocks of the transforms, for 1-D and 2-D signals."""
from __future__ import annotations

from torch import Tensor, nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d}
"""Convolution classes by signal dimension."""


class ResidualBlock(nn.Module):
    """``x + conv(SiLU(conv(x)))`` at the latent resolution, ``hidden`` channels inside; the second
    convolution starts at zero, so the block starts as the identity."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dim: int) -> None:
        super().__init__()
        conv = CONV[dim]
        self.expand = conv(channels, hidden, kernel_size, padding=kernel_size // 2)
        self.activation = nn.SiLU()
        self.project = conv(hidden, channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.activation(self.expand(x)))


class Scale(nn.Module):
    """Multiplies by a constant (not a weight)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"{self.factor:g}"
