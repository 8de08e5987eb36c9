"""Block motion: estimation at the encoder, overlapped block motion compensation at both ends.

A motion field holds one vector per ``block × block`` block, integers in quarter pixels (``QUARTER``
steps per pixel), ``[B, 2, H / block, W / block]`` with x (right) before y (down), pointing from a
pixel of the current frame to where it is in the reference. Compensation warps the reference with
bicubic interpolation (sub-pixel positions, edges replicated) and blends the four blocks nearest to
each pixel with bilinear weights between block centres (overlapped block motion compensation,
Orchard & Sullivan 1994), so the prediction has no block edges for the residual to pay for.

Estimation is the encoder's choice alone and never has to be reproduced by a decoder: a
hierarchical search (a full search on a 4× smaller picture, then integer, half and quarter pixel
refinements at full size) that minimises λ·SSE + bits, the bits of each vector taken from the table
its entropy model will code it with (:class:`~lnc.codecs.latent.motion.MotionVectorLatentCodec`).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

QUARTER = 4
"""Vector units per pixel: quarter-pixel motion, as H.264 and HEVC use."""
COARSE = 4
"""The full search runs on pictures this many times smaller."""
LUMA = (0.299, 0.587, 0.114)

BitsFn = Callable[[Tensor, Tensor], Tensor]
"""``(vectors [B, 2, h, w], predictions [B, 2, h, w]) → bits [B, h, w]`` of coding each vector."""


def _grid(flow: Tensor) -> Tensor:
    """``grid_sample``'s sampling grid for a per-pixel displacement ``[B, 2, H, W]`` in pixels."""
    _, _, height, width = flow.shape
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1)
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width)
    gx = (xs + flow[:, 0] + 0.5) * (2.0 / width) - 1.0
    gy = (ys + flow[:, 1] + 0.5) * (2.0 / height) - 1.0
    return torch.stack([gx, gy], dim=-1)


def warp(reference: Tensor, flow: Tensor) -> Tensor:
    """``reference`` ``[B, C, H, W]`` sampled at each pixel plus ``flow`` (pixels), bicubic, edges
    replicated."""
    return F.grid_sample(reference, _grid(flow), mode="bicubic", padding_mode="border", align_corners=False)


def block_flow(vectors: Tensor, block: int) -> Tensor:
    """Each block's vector (quarter pixels) spread over its pixels, in pixels ``[B, 2, H, W]``."""
    return vectors.float().div(QUARTER).repeat_interleave(block, 2).repeat_interleave(block, 3)


def _neighbours(blocks: int, block: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Along one axis of ``blocks · block`` pixels: the two nearest block centres of each pixel and
    the bilinear weight of the second."""
    u = (torch.arange(blocks * block, device=device, dtype=torch.float32) + 0.5) / block - 0.5
    first = u.floor()
    weight = u - first
    lo = first.long().clamp(0, blocks - 1)
    hi = (first.long() + 1).clamp(0, blocks - 1)
    return lo, hi, weight


def compensate(reference: Tensor, vectors: Tensor, block: int) -> Tensor:
    """The motion-compensated prediction of a frame from ``reference`` ``[B, C, H, W]`` and its block
    vectors: the four nearest blocks' warps, weighted bilinearly between block centres."""
    rows, cols = vectors.shape[-2:]
    flow = vectors.float() / QUARTER
    y_lo, y_hi, wy = _neighbours(rows, block, reference.device)
    x_lo, x_hi, wx = _neighbours(cols, block, reference.device)
    prediction = torch.zeros_like(reference)
    for y_index, y_weight in ((y_lo, 1.0 - wy), (y_hi, wy)):
        for x_index, x_weight in ((x_lo, 1.0 - wx), (x_hi, wx)):
            pixel_flow = flow[:, :, y_index][:, :, :, x_index]
            weight = y_weight.view(1, 1, -1, 1) * x_weight.view(1, 1, 1, -1)
            prediction = prediction + weight * warp(reference, pixel_flow)
    return prediction


def luma(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` RGB → ``[B, 1, H, W]`` luma (BT.601 weights): what motion is searched on."""
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def median_of_above(vectors: Tensor) -> Tensor:
    """The prediction of every vector of a field ``[B, 2, h, w]`` from the row above it: the median of
    the vectors above-left, above and above-right (edges replicated); in the first row, the vector to
    the left (zero at the first). What the decoder computes row by row from decoded vectors."""
    above = F.pad(vectors[:, :, :-1], (1, 1, 0, 0), mode="replicate")
    median = torch.stack([above[..., :-2], above[..., 1:-1], above[..., 2:]]).median(0).values
    left = F.pad(vectors[:, :, :1, :-1], (1, 0))
    return torch.cat([left, median], dim=2)


def _block_sse(current: Tensor, predicted: Tensor, block: int) -> Tensor:
    """Sum of squared differences per block, ``[B, h, w]``."""
    return F.avg_pool2d((current - predicted).pow(2), block).squeeze(1) * block * block


def _coarse_search(current: Tensor, reference: Tensor, block: int, search: int) -> Tensor:
    """Integer vectors (quarter pixels) of a full search on ``COARSE``× smaller luma within ±``search``
    pixels; ties go to the smallest motion."""
    cur, ref = F.avg_pool2d(current, COARSE), F.avg_pool2d(reference, COARSE)
    size, reach = block // COARSE, search // COARSE
    padded = F.pad(ref, (reach, reach, reach, reach), mode="replicate")
    height, width = cur.shape[-2:]
    best_cost = best = None
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            shifted = padded[..., reach + dy : reach + dy + height, reach + dx : reach + dx + width]
            cost = _block_sse(cur, shifted, size) + 1e-9 * (abs(dx) + abs(dy))
            offset = torch.tensor([dx, dy], device=cur.device).view(1, 2, 1, 1)
            if best is None:
                best_cost, best = cost, offset.expand(cost.shape[0], 2, *cost.shape[1:]).clone()
                continue
            better = cost < best_cost
            best_cost = torch.where(better, cost, best_cost)
            best = torch.where(better.unsqueeze(1), offset, best)
    return best * COARSE * QUARTER


def _neighbour_fields(vectors: Tensor) -> list[Tensor]:
    """The field shifted by one block each way: every block's left, right, upper and lower neighbour."""
    padded = F.pad(vectors.float(), (1, 1, 1, 1), mode="replicate").long()
    return [padded[..., 1:-1, :-2], padded[..., 1:-1, 2:], padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]]


def _best(candidates: list[Tensor], cost: Callable[[Tensor], Tensor]) -> Tensor:
    """Per block, the candidate field of least cost (the first among equals)."""
    best, best_cost = candidates[0], cost(candidates[0])
    for candidate in candidates[1:]:
        value = cost(candidate)
        better = value < best_cost
        best_cost = torch.where(better, value, best_cost)
        best = torch.where(better.unsqueeze(1), candidate, best)
    return best


@torch.no_grad()
def estimate_motion(
    current: Tensor, reference: Tensor, block: int, search: int, lmbda: Tensor, bits: BitsFn, rounds: int = 2
) -> Tensor:
    """Block vectors ``[B, 2, H / block, W / block]`` (int64, quarter pixels, within ±``search``
    pixels) of ``current`` from ``reference`` (RGB ``[B, 3, H, W]`` in [0, 1]), minimising per block
    λ·255²·SSE(luma) + bits, λ per item ``[B]``: the training loss λ·255²·MSE(RGB) + bits per pixel,
    summed over the block, with the prediction's error standing for the decoded one and the luma
    error for each channel's.

    Each of ``rounds`` first lets every block take its predicted vector, zero or a neighbour's where
    that costs less than its own (so flat areas follow their neighbours instead of noise, and a good
    vector spreads), then refines by ±2 pixels, ±½ and ±¼."""
    cur, ref = luma(current.float()), luma(reference.float())
    weight = lmbda.float().view(-1, 1, 1) * 255.0**2
    limit = search * QUARTER
    vectors = _coarse_search(cur, ref, block, search)

    def cost_given(prediction: Tensor) -> Callable[[Tensor], Tensor]:
        def cost(candidate: Tensor) -> Tensor:
            predicted = warp(ref, block_flow(candidate, block))
            return weight * _block_sse(cur, predicted, block) + bits(candidate, prediction)
        return cost

    for _ in range(rounds):
        prediction = median_of_above(vectors)
        cost = cost_given(prediction)
        vectors = _best([vectors, prediction, torch.zeros_like(vectors), *_neighbour_fields(vectors)], cost)
        for step, reach in ((QUARTER, 2), (QUARTER // 2, 1), (1, 1)):
            offsets = [torch.tensor([dx * step, dy * step], device=cur.device).view(1, 2, 1, 1)
                       for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
            vectors = _best([(vectors + o).clamp(-limit, limit) for o in offsets], cost)
    return vectors.long()
