"""Two-pass checkerboard context (He et al. 2021, arXiv:2103.15306), both passes in one stream.

The latent is split into two interleaved halves like the squares of a checkerboard. Anchors are
coded first with the hyperprior alone; every other latent then also sees the decoded anchors around
it, which sharpens its mean and scale. Decoding takes two parallel passes instead of the H·W serial
steps of an autoregressive context. Both passes append to the same range encoder, so a tile costs one
stream (one termination) rather than two.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from lnc.codecs.base import Decoders, Encoders
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.latent.gaussian import GaussianConditionalLatentCodec, Parameters


def checkerboard_mask(height: int, width: int, device: torch.device | None = None) -> Tensor:
    """``[H, W]`` bool, True at the anchors: positions whose row + column is even."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return (rows + cols) % 2 == 0


class CheckerboardConv2d(nn.Conv2d):
    """A 'same' convolution (odd kernel) that reads only positions of the other checkerboard colour:
    from an anchor-only input it gives each non-anchor position a context of anchors."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        mask = ~checkerboard_mask(kernel_size, kernel_size)  # the centre (even) and its colour off
        self.register_buffer("mask", mask.to(self.weight.dtype)[None, None], persistent=False)

    @property
    def masked_weight(self) -> Tensor:
        """The kernel with the positions of the centre's colour zeroed: the one that is applied."""
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.masked_weight, self.bias)


class CheckerboardLatentCodec(LatentCodec):
    """``y`` conditioned on ``side``, the hyperprior's output (``2M`` channels: scale and mean
    features), and on the decoded anchors::

        hyper ──────────────────────────────────────┬─► hyper + context_fusion(hyper, ctx) ─► σ, μ
        decoded anchors ─context_prediction─► ctx ──┘      (ctx = 0 at the anchors themselves)

    Args:
        gaussian: codes each half given its scales and means.
        context_prediction: a :class:`CheckerboardConv2d` from the anchors to context features.
        context_fusion: maps ``[hyper, ctx]`` to a correction of ``hyper``.
        pass_streams: the separate streams of the two passes in files written before one stream
            carried both, still read.
        run: how a layer is applied (default: called); e.g. the codec's exact entropy path.
    """

    def __init__(
        self,
        gaussian: GaussianConditionalLatentCodec,
        context_prediction: nn.Module,
        context_fusion: nn.Module,
        pass_streams: tuple[str, str] = ("y_anchor", "y_other"),
        run: Callable[[nn.Module, Tensor], Tensor] | None = None,
    ) -> None:
        self.gaussian = gaussian
        self.context_prediction = context_prediction
        self.context_fusion = context_fusion
        self.streams = gaussian.streams
        self.pass_streams = pass_streams
        self.run = run or (lambda module, x: module(x))

    def parameters(self, hyper: Tensor, anchors: Tensor | None) -> Parameters:
        """Scales and means from the hyperprior and the anchors (zero elsewhere; None: none yet)."""
        if anchors is None:
            ctx = torch.zeros_like(hyper)
        else:
            others = ~checkerboard_mask(*hyper.shape[-2:], device=hyper.device)
            ctx = self.run(self.context_prediction, anchors) * others
        scales, means = (hyper + self.run(self.context_fusion, torch.cat([hyper, ctx], 1))).chunk(2, 1)
        return scales, means

    def forward(self, y: Tensor, side: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        anchor = checkerboard_mask(*y.shape[-2:], device=y.device)
        conditional = self.gaussian.conditional
        # The context sees the anchors as decoded: rounded in evaluation and, with mixed
        # quantisation, in training too (straight through); the uniform-noise proxy otherwise.
        mode = "ste" if self.gaussian.mixed_quantization else conditional.forward_mode()
        _, anchor_means = self.parameters(side, None)
        anchors = conditional.quantize(y, mode, anchor_means) * anchor
        return self.gaussian(y, self.parameters(side, anchors))

    @staticmethod
    def _half(parameters: Parameters, half: Tensor) -> Parameters:
        scales, means = parameters
        return scales[..., half], means[..., half]

    def compress(self, y: Tensor, side: Tensor, encoders: Encoders) -> Tensor:
        anchor = checkerboard_mask(*y.shape[-2:], device=y.device)
        y_hat = torch.zeros_like(y)
        # The second pass is conditioned on the anchors as the decoder will see them.
        parameters = self._half(self.parameters(side, None), anchor)
        y_hat[..., anchor] = self.gaussian.compress(y[..., anchor], parameters, encoders)
        parameters = self._half(self.parameters(side, y_hat), ~anchor)
        y_hat[..., ~anchor] = self.gaussian.compress(y[..., ~anchor], parameters, encoders)
        return y_hat

    def decompress(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], side: Tensor) -> Tensor:
        anchor = checkerboard_mask(*side.shape[-2:], device=side.device)
        stream = self.streams[0]
        if self.pass_streams[0] in decoders:  # a file of one stream per pass
            passes = [{stream: decoders[name]} for name in self.pass_streams]
        else:
            passes = [decoders, decoders]
        y_hat = torch.zeros(side.shape[0], side.shape[1] // 2, *side.shape[-2:], dtype=side.dtype, device=side.device)
        parameters = self._half(self.parameters(side, None), anchor)
        y_hat[..., anchor] = self.gaussian.decompress(passes[0], shapes, parameters)
        parameters = self._half(self.parameters(side, y_hat), ~anchor)
        y_hat[..., ~anchor] = self.gaussian.decompress(passes[1], shapes, parameters)
        return y_hat
