"""The entropy bottleneck: a learned, factorised density per channel.

Ballé, Minnen, Singh, Hwang, Johnston 2018, "Variational image compression with a scale
hyperprior" (arXiv:1802.01436), appendix 6.1: each channel's cumulative is a small monotone
network ``c(x) = sigmoid(f_K(... f_1(x)))`` with ``f_k(x) = h_k(softplus(H_k) x + b_k)`` and
``h_k(x) = x + tanh(a_k) tanh(x)``; the likelihood of a quantised value is ``c(x + 1/2) - c(x - 1/2)``.

Parameter names and shapes are CompressAI's (``matrices.i``, ``biases.i``, ``factors.i``,
``quantiles``, ``target``), so a CompressAI ``EntropyBottleneck`` state dict loads unchanged; the
older ``_matrix{i}`` / ``_bias{i}`` / ``_factor{i}`` keys of CompressAI's published weights are
accepted too.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnc.entropy.base import EntropyModel
from lnc.entropy.coder import RangeDecoder, RangeEncoder

_LEGACY_KEY = re.compile(r"_(matrix|bias|factor)(\d+)")
_LEGACY_NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


class EntropyBottleneck(EntropyModel):
    """Factorised learned prior for ``[B, C, ...]`` tensors; symbols are coded around each
    channel's median.

    Args:
        channels: number of channels ``C``.
        tail_mass: probability left outside the coded range of each channel (sent by escape).
        init_scale: initial width of the densities.
        filters: hidden widths of the per-channel density network.
        **kwargs: see :class:`~lnc.entropy.base.EntropyModel`.
    """

    target: Tensor

    def __init__(
        self,
        channels: int,
        *,
        tail_mass: float = 1e-9,
        init_scale: float = 10,
        filters: Sequence[int] = (3, 3, 3, 3),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)

        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            # softplus(init) = 1 / (scale * fan_out): the initial density has width ~init_scale.
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((self.channels, widths[i + 1], widths[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(self.channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(self.channels, widths[i + 1], 1)))

        self.quantiles = nn.Parameter(
            torch.tensor([-self.init_scale, 0.0, self.init_scale]).repeat(self.channels, 1, 1)
        )
        target = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))

    # -- density --------------------------------------------------------------------------------

    def _logits_cumulative(self, inputs: Tensor, stop_gradient: bool = False) -> Tensor:
        """Logit of the cumulative at ``inputs`` ``[C, 1, N]``; monotone increasing in the inputs.

        Computed in the inputs' dtype and on their device (the tables are built in float64 on
        the CPU, whatever device the model is on).
        """
        logits = inputs
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix.to(logits)), logits) + bias.to(logits)
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(factor.to(logits)) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs: Tensor, stop_gradient: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Mass of ``[inputs - 1/2, inputs + 1/2]`` and the cumulative logits at both ends.

        The difference of sigmoids is taken on the side where both are small (flipping the sign
        when the logits are positive), as in tensorflow-compression, so far tails keep their
        precision instead of cancelling to 0.
        """
        lower = self._logits_cumulative(inputs - 0.5, stop_gradient)
        upper = self._logits_cumulative(inputs + 0.5, stop_gradient)
        sign = torch.where(lower + upper > 0, -1.0, 1.0).to(lower.dtype).detach()
        likelihood = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return likelihood, lower, upper

    def medians(self) -> Tensor:
        """Each channel's median ``[C]``, the centre symbols are coded around."""
        return self.quantiles[:, 0, 1].detach()

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """Quantised (or noisy) ``x`` ``[B, C, ...]`` and the likelihood of each element."""
        perm = (1, 0, *range(2, x.dim()))  # channels first; the permutation is its own inverse
        values = x.permute(perm).contiguous()
        shape = values.shape
        values = values.reshape(self.channels, 1, -1)
        outputs = self.quantize(values, self.forward_mode(training), self.medians()[:, None, None])
        likelihood, _, _ = self._likelihood(outputs)
        likelihood = self.bound_likelihood(likelihood)
        outputs = outputs.reshape(shape).permute(perm).contiguous()
        likelihood = likelihood.reshape(shape).permute(perm).contiguous()
        return outputs, likelihood

    # -- quantiles ------------------------------------------------------------------------------

    def loss(self) -> Tensor:
        """Auxiliary loss that moves ``quantiles`` to the ``tail_mass / 2``, 1/2 and
        ``1 - tail_mass / 2`` quantiles of the learned density (CompressAI's ``aux_loss``)."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    @torch.no_grad()
    def update_quantiles(self, search_radius: float = 1e5, rtol: float = 1e-4, atol: float = 1e-3) -> None:
        """Set ``quantiles`` exactly by bisection on the learned cumulative, without the aux loss.

        The cumulative logit is strictly increasing (``softplus`` weights, ``|tanh(a)| < 1``),
        so each target has one solution; targets beyond ``±search_radius`` clamp to it.
        """
        # In float64 on the CPU, so that the result does not depend on the model's device.
        shape = (self.channels, 1, len(self.target))
        low = torch.full(shape, -search_radius, dtype=torch.float64)
        high = torch.full(shape, search_radius, dtype=torch.float64)
        target = self.target.to("cpu", torch.float64).expand(shape)
        for _ in range(128):  # converges (or stalls on adjacent floats) well before
            mid = (low + high) / 2
            below = self._logits_cumulative(mid.reshape(self.channels, 1, -1), stop_gradient=True) < target
            low = torch.where(below, mid, low)
            high = torch.where(below, high, mid)
            if bool(((high - low) <= atol + rtol * mid.abs()).all()):
                break
        self.quantiles.copy_((low + high) / 2)

    # -- tables and coding ----------------------------------------------------------------------

    def update(self, force: bool = False, update_quantiles: bool = False) -> bool:
        """Build the CDF tables from ``quantiles`` (first re-estimated by bisection when
        ``update_quantiles``); deterministic for given parameters, in float64 on the CPU."""
        if self.has_tables and not force:
            return False
        if update_quantiles:
            self.update_quantiles()
        with torch.no_grad():
            quantiles = self.quantiles.detach().to("cpu", torch.float64)[:, 0, :]
            medians = quantiles[:, 1]
            minima = torch.ceil(medians - quantiles[:, 0]).clamp(min=0).int()
            maxima = torch.ceil(quantiles[:, 2] - medians).clamp(min=0).int()
            pmf_length = minima + maxima + 1
            pmf_start = medians - minima
            samples = pmf_start[:, None, None] + torch.arange(int(pmf_length.max()), dtype=torch.float64)
            pmf, lower, upper = self._likelihood(samples, stop_gradient=True)
            last = (pmf_length.long() - 1)[:, None]
            # Mass below the first and above each channel's own last sample.
            tail_mass = torch.sigmoid(lower[:, 0, 0]) + torch.sigmoid(-upper[:, 0].gather(1, last)[:, 0])
            self._set_tables(pmf[:, 0], tail_mass, pmf_length, -minima)
        return True

    def _channel_indexes(self, size: Sequence[int]) -> Tensor:
        """Table index (the channel) of every element of a ``[B, C, ...]`` tensor."""
        view = (1, -1) + (1,) * (len(size) - 2)
        return torch.arange(size[1], dtype=torch.int32).reshape(view).expand(*size)

    def broadcast_medians(self, ndim: int) -> Tensor:
        """The medians shaped to broadcast against a ``[B, C, ...]`` tensor of ``ndim`` dimensions."""
        return self.medians().reshape((1, -1) + (1,) * (ndim - 2))

    def _check(self, x: Tensor) -> None:
        if x.dim() < 2 or x.size(1) != self.channels:
            raise ValueError(f"expected [B, {self.channels}, ...], got {tuple(x.shape)}")

    def compress(self, x: Tensor) -> list[bytes]:  # type: ignore[override]
        """Code ``x`` ``[B, C, ...]`` rounded around the medians: one string per batch item."""
        self._check(x)
        return super().compress(x, self._channel_indexes(x.shape), self.broadcast_medians(x.dim()))

    def decompress(self, strings: Sequence[bytes], size: Sequence[int]) -> Tensor:  # type: ignore[override]
        """Inverse of :meth:`compress`; ``size`` is the shape after the channel dimension."""
        shape = (len(strings), self.channels, *size)
        indexes = self._channel_indexes(shape).to(self.quantiles.device)
        return super().decompress(strings, indexes, self.quantiles.dtype, self.broadcast_medians(len(shape)))

    def compress_into(self, encoders: Sequence[RangeEncoder], x: Tensor) -> Tensor:  # type: ignore[override]
        """Append ``x`` ``[B, C, ...]`` rounded around the medians to each item's encoder; returns
        the values the decoder will reconstruct."""
        self._check(x)
        return super().compress_into(encoders, x, self._channel_indexes(x.shape), self.broadcast_medians(x.dim()))

    def decompress_from(self, decoders: Sequence[RangeDecoder], size: Sequence[int]) -> Tensor:  # type: ignore[override]
        """Inverse of :meth:`compress_into`; ``size`` is the shape after the channel dimension."""
        shape = (len(decoders), self.channels, *size)
        indexes = self._channel_indexes(shape).to(self.quantiles.device)
        return super().decompress_from(decoders, indexes, self.quantiles.dtype, self.broadcast_medians(len(shape)))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # CompressAI's published weights name the parameters ``_matrix0`` etc.; map to ``matrices.0``.
        for key in [k for k in state_dict if k.startswith(prefix)]:
            match = _LEGACY_KEY.fullmatch(key[len(prefix):])
            if match:
                state_dict[f"{prefix}{_LEGACY_NAMES[match[1]]}.{match[2]}"] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
