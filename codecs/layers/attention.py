"""Attention over 2-D latents for context models, in time linear in the number of positions.

Both layers serve the multi-reference entropy model of MLIC++ (Jiang & Wang 2023, arXiv:2307.15421):

* :class:`CheckerboardWindowAttention`: each position attends to the positions of the other
  checkerboard colour in the sliding window around it (5×5: the 12 nearest of that colour), so a
  non-anchor reads the decoded anchors around it with weights that depend on their content.
* :class:`LinearAttention2d`: every position attends to all (or to a chosen set of) positions of
  the map, with "efficient attention" (Shen et al. 2021, arXiv:1812.01243, as MLIC++ does):
  queries are normalised over each head's channels and keys over the positions, so the product
  ``KᵀV`` (a ``d×d`` matrix per head) is formed first and no ``HW×HW`` attention map exists.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _masked(scores: Tensor, keep: Tensor) -> Tensor:
    """``scores`` with the entries outside ``keep`` at the dtype's minimum: a softmax gives them
    no weight, and a row with nothing kept stays finite (uniform) instead of NaN."""
    return scores.masked_fill(~keep, torch.finfo(scores.dtype).min)


class CheckerboardWindowAttention(nn.Module):
    """Attention of each position of ``query`` to the positions of the other checkerboard colour
    in the ``window``×``window`` window of ``x`` centred on it, with a learned bias per offset.

    Read at the non-anchors, with ``x`` the decoded anchors (zero elsewhere), it is a local
    context that only sees anchors; windows are clipped at the borders.

    Args:
        channels: channels of ``x`` (keys and values are projected from it).
        query_channels: channels of ``query``, a feature map already known at every position
            (e.g. a :class:`~lnc.codecs.latent.CheckerboardConv2d` of the same anchors).
        out_channels: channels of the result.
        heads: attention heads; ``channels`` must be a multiple of it.
        window: odd window side.
    """

    def __init__(self, channels: int, query_channels: int, out_channels: int, heads: int = 2, window: int = 5) -> None:
        super().__init__()
        if channels % heads or window % 2 == 0:
            raise ValueError(f"{channels} channels in {heads} heads, window {window}: need a multiple and an odd side")
        self.heads, self.window = heads, window
        self.query = nn.Conv2d(query_channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, out_channels, 1)
        # Window positions (row-major) of the other colour: the centre's row + column is even.
        offsets = [i for i in range(window * window) if (i // window + i % window) % 2 == 1]
        self.register_buffer("offsets", torch.tensor(offsets), persistent=False)
        self.position_bias = nn.Parameter(torch.zeros(heads, len(offsets)))

    def _windows(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` → the other-colour positions of each window, ``[B, heads, C/heads, n, H·W]``."""
        B, C = x.shape[:2]
        windows = F.unfold(x, self.window, padding=self.window // 2).view(B, C, self.window**2, -1)
        return windows[:, :, self.offsets].view(B, self.heads, C // self.heads, len(self.offsets), -1)

    def forward(self, x: Tensor, query: Tensor) -> Tensor:
        B, _, H, W = x.shape
        q = self.query(query)
        q = q.view(B, self.heads, q.shape[1] // self.heads, 1, H * W)
        k, v = self._windows(self.key(x)), self._windows(self.value(x))
        inside = self._windows(x.new_ones(1, self.heads, H, W))[0, :, 0] > 0  # [heads, n, H·W]: not padding
        scores = (q * k).sum(2) / math.sqrt(q.shape[2]) + self.position_bias[..., None]
        weights = _masked(scores, inside).softmax(2)  # [B, heads, n, H·W]
        attended = (weights.unsqueeze(2) * v).sum(3)  # [B, heads, C/heads, H·W]
        return self.out(attended.reshape(B, -1, H, W))


def _projection(in_channels: int, channels: int) -> nn.Sequential:
    """A 1×1 convolution then a depthwise 3×3 one: features that also know their neighbours."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 1), nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
    )


class LinearAttention2d(nn.Module):
    """Global attention in linear time: queries and keys from ``x``, values from ``values``
    (default ``x``), keys restricted to the positions ``keys_at`` when given.

    With keys at the anchors of the previous slice, queries at its non-anchors and values from the
    anchors of the current slice, it carries how the previous slice's non-anchors relate to its
    anchors over to the current slice: MLIC's global context within a slice.

    Args:
        channels: channels of ``x`` and of the attention (split into ``heads``).
        out_channels: channels of the result.
        heads: attention heads; ``channels`` must be a multiple of it.
        value_channels: channels of ``values`` (default ``channels``).
    """

    def __init__(self, channels: int, out_channels: int, heads: int = 1, value_channels: int | None = None) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.heads = heads
        self.query = _projection(channels, channels)
        self.key = _projection(channels, channels)
        self.value = _projection(value_channels or channels, channels)
        self.out = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: Tensor, values: Tensor | None = None, keys_at: Tensor | None = None) -> Tensor:
        B, C, H, W = x.shape
        shape = (B, self.heads, C // self.heads, H * W)
        q = self.query(x).view(shape).softmax(2)  # each position's query over its head's channels
        k = self.key(x).view(shape)
        if keys_at is not None:
            k = _masked(k, keys_at.reshape(1, 1, 1, H * W))
        k = k.softmax(3)  # each key channel over the positions
        v = self.value(x if values is None else values).view(shape)
        context = k @ v.transpose(2, 3)  # [B, heads, d, d]: Σ over key positions, linear in H·W
        return self.out((context.transpose(2, 3) @ q).reshape(B, C, H, W))
