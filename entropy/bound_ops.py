"""Lower bound with a gradient that can still push values back up from below the bound.

A plain ``clamp_min`` zeroes the gradient below the bound, so a parameter that falls under it can
never recover. Following Ballé et al. 2018 (arXiv:1802.01436) and tensorflow-compression, the
gradient passes wherever the value is above the bound or the gradient would increase it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class _LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad_output < 0)
        return pass_through.type_as(grad_output) * grad_output, None


def lower_bound(x: Tensor, bound: Tensor) -> Tensor:
    """``max(x, bound)`` whose gradient still moves values below the bound upwards."""
    return _LowerBoundFunction.apply(x, bound)


class LowerBound(nn.Module):
    """Module form of :func:`lower_bound`; the bound is a buffer named ``bound`` (CompressAI's name)."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return torch.max(x, self.bound)
        return lower_bound(x, self.bound)
