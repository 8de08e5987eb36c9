"""Strided convolutions that resample by exactly their stride, in 1-D, 2-D or 3-D."""
from __future__ import annotations

from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _check(dim: int) -> None:
    if dim not in _CONV:
        raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2, dim: int = 2) -> nn.Module:
    """Convolution that downsamples by ``stride`` with 'same' padding (odd ``kernel_size``)."""
    _check(dim)
    return _CONV[dim](in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2, dim: int = 2) -> nn.Module:
    """Transposed convolution that upsamples exactly by ``stride``."""
    _check(dim)
    return _DECONV[dim](
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=kernel_size // 2,
        output_padding=stride - 1,
    )
