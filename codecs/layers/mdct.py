"""The modified discrete cosine transform (Princen, Johnson & Bradley 1987), the front end of the
transform audio codecs of the field (MP3's hybrid bank, AAC, Opus CELT, Vorbis).

Frames of ``2H`` samples overlap by half and each gives ``H`` coefficients, so the transform is
critically sampled; with the sine window the basis is orthonormal and the aliasing of neighbouring
frames cancels (TDAC), so the inverse is the transposed convolution with the same basis. The signal is
taken as periodic over its length (the first and last frames wrap around): ``T`` samples give exactly
``T / H`` frames and reconstruct exactly, without the extra frame that zero padding at the edges
costs. Runs as one strided convolution each way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def mdct_basis(hop: int) -> Tensor:
    """``[hop, 2·hop]`` float64: the sine-windowed, orthonormal MDCT basis, one row per coefficient."""
    n = torch.arange(2 * hop, dtype=torch.float64)
    k = torch.arange(hop, dtype=torch.float64)
    window = torch.sin(math.pi * (n + 0.5) / (2 * hop))
    phase = math.pi / hop * (n[None, :] + 0.5 + hop / 2) * (k[:, None] + 0.5)
    return math.sqrt(2.0 / hop) * window[None, :] * torch.cos(phase)


class MDCT(nn.Module):
    """MDCT with hop ``H`` (frames of ``2H``) on ``[B, C, T]`` (``T`` a multiple of ``H``): forward
    gives ``[B, C·H, T/H]`` (channel-major coefficients), :meth:`inverse` undoes it exactly."""

    def __init__(self, hop: int) -> None:
        super().__init__()
        if hop < 2 or hop % 2:
            raise ValueError(f"the MDCT hop must be even and at least 2, got {hop}")
        self.hop = hop
        self.register_buffer("basis", mdct_basis(hop).to(torch.float32)[:, None, :], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        # In float32 whatever the autocast: bfloat16 would cap the transform at about 50 dB.
        with torch.autocast(x.device.type, enabled=False):
            return self._forward(x.float())

    def _forward(self, x: Tensor) -> Tensor:
        batch, channels, length = x.shape
        if length % self.hop:
            raise ValueError(f"the MDCT needs a multiple of {self.hop} samples, got {length}")
        half = self.hop // 2
        x = x.reshape(batch * channels, 1, length)
        x = torch.cat([x[..., length - half:], x, x[..., :half]], dim=-1)  # periodic extension
        coefficients = F.conv1d(x, self.basis.to(x.dtype), stride=self.hop)
        return coefficients.reshape(batch, channels * self.hop, -1)

    def inverse(self, coefficients: Tensor) -> Tensor:
        """``[B, C·H, F]`` → ``[B, C, F·H]``: overlap-add of the windowed basis, wrapped around."""
        with torch.autocast(coefficients.device.type, enabled=False):
            return self._inverse(coefficients.float())

    def _inverse(self, coefficients: Tensor) -> Tensor:
        batch, bands, frames = coefficients.shape
        channels, half = bands // self.hop, self.hop // 2
        length = frames * self.hop
        y = F.conv_transpose1d(coefficients.reshape(batch * channels, self.hop, frames),
                               self.basis.to(coefficients.dtype), stride=self.hop)
        # y covers [-H/2, T + H/2): fold the two overhangs back onto the other end.
        out = y[..., half:half + length]
        out = out + F.pad(y[..., length + half:], (0, length - half)) + F.pad(y[..., :half], (length - half, 0))
        return out.reshape(batch, channels, length)


class InverseMDCT(nn.Module):
    """The inverse of an :class:`MDCT` as a layer (for the end of a synthesis ``Sequential``)."""

    def __init__(self, mdct: MDCT) -> None:
        super().__init__()
        self.transform = [mdct]  # a plain list: the analysis owns the module and its basis

    def forward(self, coefficients: Tensor) -> Tensor:
        return self.transform[0].inverse(coefficients)
