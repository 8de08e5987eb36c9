"""Mean-scale hyperprior with a checkerboard context model (He et al. 2021, arXiv:2103.15306).

The latent ``y`` is split into two interleaved halves like the squares of a checkerboard. Anchors
are coded first with the hyperprior alone; every other latent then also sees the decoded anchors
around it (a 5×5 convolution that only reads anchor positions), which sharpens its mean and scale.
Decoding takes two parallel passes instead of the H·W serial steps of Minnen et al.'s
autoregressive context::

    ẑ ─h_s─► hyper ─────────────────────────────────┬─► hyper + context_fusion(hyper, ctx) ─► σ, μ
    decoded anchors ─context_prediction─► ctx ──────┘      (ctx = 0 at the anchors themselves)

``context_fusion``'s last layer starts at zero, so the entropy parameters start as the
hyperprior's: a model grown from trained ``mbt2018-mean`` weights (``lnc train
--model.init_weights``) starts out coding exactly as they did.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lnc.codecs.image.hyperprior import MeanScaleHyperprior, _apply


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

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class CheckerboardMeanScale(MeanScaleHyperprior):
    """``mbt2018-mean`` plus a two-pass checkerboard context; bitstreams carry ``z``, the anchors
    ``y_anchor`` and the other half ``y_other``. Takes the same N, M and rate points."""

    architecture = "he2021-checkerboard"
    grows_from = {"mbt2018-mean": ("context_prediction.", "context_fusion.")}

    def __init__(self, N: int = 128, M: int = 192, rate_points: int = 0, mixed_quantization: bool = False) -> None:
        super().__init__(N, M, rate_points, mixed_quantization)
        self.context_prediction = CheckerboardConv2d(M, 2 * M)
        self.context_fusion = nn.Sequential(
            nn.Conv2d(4 * M, 10 * M // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(10 * M // 3, 8 * M // 3, 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(8 * M // 3, 2 * M, 1),
        )
        nn.init.zeros_(self.context_fusion[-1].weight)
        nn.init.zeros_(self.context_fusion[-1].bias)

    def _hyper(self, z_hat: Tensor, q: Tensor) -> Tensor:
        return self.h_s(_apply(self.hyper_gain, "inverse_gain", z_hat, q))

    def _gaussian_parameters(self, hyper: Tensor, anchors: Tensor | None) -> tuple[Tensor, Tensor]:
        """Scales and means from the hyperprior and the anchors (zero elsewhere; None: none yet)."""
        if anchors is None:
            ctx = torch.zeros_like(hyper)
        else:
            others = ~checkerboard_mask(*hyper.shape[-2:], device=hyper.device)
            ctx = self.context_prediction(anchors) * others
        scales, means = (hyper + self.context_fusion(torch.cat([hyper, ctx], 1))).chunk(2, 1)
        return scales, means

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        y = latents["y"]
        z_hat, z_likelihoods = self.entropy_bottleneck(latents["z"])
        hyper = self._hyper(z_hat, q)
        anchor = checkerboard_mask(*y.shape[-2:], device=y.device)
        # The context sees the anchors as decoded: rounded in evaluation and, with mixed
        # quantisation, in training too (straight through); the uniform-noise proxy otherwise.
        mode = "ste" if self.mixed_quantization else self.gaussian_conditional.forward_mode()
        _, anchor_means = self._gaussian_parameters(hyper, None)
        anchors = self.gaussian_conditional.quantize(y, mode, anchor_means) * anchor
        scales, means = self._gaussian_parameters(hyper, anchors)
        return self._training_output(y, scales, means, q, z_likelihoods)

    def _code_half(self, y: Tensor, scales: Tensor, means: Tensor, half: Tensor) -> tuple[list[bytes], Tensor]:
        """Code the latents of ``half`` (an ``[H, W]`` mask); returns the strings and their values."""
        gc = self.gaussian_conditional
        symbols = gc.quantize(y[..., half], "symbols", means[..., half])
        strings = gc.encode_symbols(symbols, gc.build_indexes(scales[..., half]))
        return strings, gc.dequantize(symbols, means[..., half])

    def _decode_half(self, strings: list[bytes], scales: Tensor, means: Tensor, half: Tensor) -> Tensor:
        gc = self.gaussian_conditional
        symbols = gc.decode_symbols(strings, gc.build_indexes(scales[..., half]))
        return gc.dequantize(symbols, means[..., half])

    def compress(
        self, x: Tensor, quality: Tensor | float | None = None, latents: dict[str, Tensor] | None = None
    ) -> dict[str, Any]:
        q, y, z_strings, z_hat = self._code_z(x, quality, latents)
        hyper = self._hyper(z_hat, q)
        anchor = checkerboard_mask(*y.shape[-2:], device=y.device)
        # The encoder derives the second pass from the anchors as the decoder will see them.
        scales, means = self._gaussian_parameters(hyper, None)
        anchor_strings, anchor_values = self._code_half(y, scales, means, anchor)
        anchors = torch.zeros_like(y)
        anchors[..., anchor] = anchor_values
        scales, means = self._gaussian_parameters(hyper, anchors)
        other_strings, _ = self._code_half(y, scales, means, ~anchor)
        strings = {"z": z_strings, "y_anchor": anchor_strings, "y_other": other_strings}
        return {"strings": strings, "shape": tuple(z_hat.shape[-2:])}

    def decompress(
        self, strings: dict[str, list[bytes]], shape: tuple[int, int], quality: Tensor | float | None = None
    ) -> Tensor:
        z_hat = self.entropy_bottleneck.decompress(strings["z"], shape)
        q = self.quality_tensor(quality, z_hat.shape[0], z_hat.device)
        hyper = self._hyper(z_hat, q)
        anchor = checkerboard_mask(*hyper.shape[-2:], device=hyper.device)
        y_hat = torch.zeros(hyper.shape[0], hyper.shape[1] // 2, *hyper.shape[-2:], dtype=hyper.dtype,
                            device=hyper.device)
        scales, means = self._gaussian_parameters(hyper, None)
        y_hat[..., anchor] = self._decode_half(strings["y_anchor"], scales, means, anchor)
        scales, means = self._gaussian_parameters(hyper, y_hat)
        y_hat[..., ~anchor] = self._decode_half(strings["y_other"], scales, means, ~anchor)
        return self.g_s(_apply(self.gain, "inverse_gain", y_hat, q)).clamp_(0, 1)
