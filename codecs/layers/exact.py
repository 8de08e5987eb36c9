"""Entropy parameters that every machine computes bit for bit alike.

The decoder must pick the same CDF table for every symbol as the encoder did. A floating-point
convolution's sums depend on their order (thread count, SIMD width, library version, device), so
one ulp near a table boundary can select a neighbouring table and desynchronise the stream. In the
spirit of Ballé, Johnston & Minnen, "Integer networks for data compression with latent-variable
models" (ICLR 2019), :func:`exact_forward` takes the order out: weights are rounded to multiples of
``2^-WEIGHT_BITS`` and activations to multiples of ``2^-ACTIVATION_BITS`` (clamped to
``±ACTIVATION_LIMIT``), so every product is a multiple of ``2^-(WEIGHT_BITS + ACTIVATION_BITS)``,
and the sums are formed in float64, whose 53-bit significand holds every partial sum exactly while
its magnitude stays below ``2^(53 - WEIGHT_BITS - ACTIVATION_BITS)``. Each layer's weights are
checked against that bound before it runs (largest ``‖w‖₁`` of an output times the activation
limit). Exact sums are equal in any order, so the path is integer-valued in all but name.

What remains is elementwise (bias, ReLU, leaky ReLU, the rate gain): single IEEE-754 operations,
correctly rounded on every CPU and GPU. :func:`portable_exp` replaces the library exponential, whose
last bit differs between implementations. In training the same rounding runs in float32 with
straight-through gradients, so a model learns the grid it will be coded with.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
import contextlib
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHT_BITS = 16
ACTIVATION_BITS = 12
ACTIVATION_LIMIT = 2.0**11
SUM_LIMIT = 2.0 ** (53 - WEIGHT_BITS - ACTIVATION_BITS)
"""Largest partial sum (in value) that float64 still holds exactly on the product grid."""

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Identity)
_DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def on_grid(t: Tensor, bits: int, limit: float | None = None, inplace: bool = False) -> Tensor:
    """``t`` rounded to a multiple of ``2^-bits`` (and clamped to ``±limit``); the gradient passes
    straight through, so training sees the rounding without losing its slope. ``inplace`` rounds
    ``t`` itself (a tensor without gradient that the caller owns), saving an allocation."""
    scale = 2.0**bits
    rounded = t.mul_(scale) if inplace else torch.mul(t.detach(), scale)
    rounded.round_().div_(scale)  # scaling by a power of two is exact
    if limit is not None:
        rounded.clamp_(-limit, limit)
    return t + (rounded - t).detach() if t.requires_grad else rounded


def portable_exp(x: Tensor) -> Tensor:
    """``exp(x)`` in float64 from additions and multiplications alone, so every IEEE-754 device
    returns the same bits (library exponentials differ in the last one): a degree-9 Taylor series
    of ``x / 2^10``, squared ten times (relative error about 1e-13 for |x| ≤ 20)."""
    r = x.to(torch.float64) * 2.0**-10
    s = torch.ones_like(r)
    for k in range(9, 0, -1):
        s = 1.0 + r * s * (1.0 / k)
    for _ in range(10):
        s = s * s
    return s


def exact_layers(module: nn.Module) -> list[nn.Module]:
    """The layers :func:`exact_forward` runs, in order; ``TypeError`` for any it cannot run exactly."""
    layers = list(module) if isinstance(module, nn.Sequential) else [module]
    for layer in layers:
        if not isinstance(layer, (nn.modules.conv._ConvNd, *_ELEMENTWISE)):
            raise TypeError(f"{type(layer).__name__} has no exact form (convolutions and ReLUs only)")
    return layers


def _weight(layer: nn.Module) -> Tensor:
    return getattr(layer, "masked_weight", layer.weight)


def _check_headroom(layer: nn.Module, weight: Tensor, bias: Tensor | None) -> None:
    """Raise unless every output's sum stays exact: ``‖w‖₁ · ACTIVATION_LIMIT + |b| < SUM_LIMIT``."""
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        weight = weight.transpose(0, 1)  # stored [in, out, ...]
    worst = weight.detach().abs().flatten(1).sum(1) * ACTIVATION_LIMIT
    if bias is not None:
        worst = worst + bias.detach().abs()
    if float(worst.max()) >= SUM_LIMIT:
        raise ValueError(f"{type(layer).__name__}: weights too large for exact sums ({float(worst.max()):.3g} >= {SUM_LIMIT:.3g})")


def usable_threads() -> int:
    """The CPUs this process may run on: the thread count of the exact path on a CPU."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def _exact_kernels(device: torch.device) -> Iterator[None]:
    """Kernels whose sums stay exact. cuDNN may pick FFT or Winograd convolutions, whose transforms
    are not: use the plain ones. On a CPU every thread may help, as the order of exact sums is free
    (codecs otherwise run single-threaded, for the sake of their float layers)."""
    if device.type == "cuda":
        with torch.backends.cudnn.flags(enabled=False):
            yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(usable_threads())
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _convolve(layer: nn.modules.conv._ConvNd, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        dim = len(layer.kernel_size)
        return _DECONV[dim](x, weight, bias, layer.stride, layer.padding, layer.output_padding,
                            layer.groups, layer.dilation)
    return layer._conv_forward(x, weight, bias)


def exact_forward(module: nn.Module, x: Tensor) -> Tensor:
    """``module`` (a convolution, a ReLU or a ``Sequential`` of them) applied on the grid, returned
    on the activation grid in ``x``'s dtype (float32 holds it exactly). In evaluation the sums are
    exact, so the result does not depend on threads, channel order or device; in training it runs
    in float32 (whatever the autocast) with straight-through rounding."""
    dtype = x.dtype
    evaluating = not module.training
    compute = torch.float64 if evaluating else torch.float32
    kernels = _exact_kernels(x.device) if evaluating else contextlib.nullcontext()
    if evaluating:
        x = x.to(compute, copy=True)  # this function's own, rounded in place from here on
    with kernels, torch.autocast(x.device.type, enabled=False):
        for layer in exact_layers(module):
            if isinstance(layer, _ELEMENTWISE):
                x = layer(x)
                continue
            weight, bias = (_grid_parameters(layer, compute) if evaluating
                            else _rounded_parameters(layer, compute))
            x = on_grid(x.to(compute), ACTIVATION_BITS, ACTIVATION_LIMIT, inplace=_owned(x, evaluating))
            x = _convolve(layer, x, weight, bias)
    return on_grid(x, ACTIVATION_BITS, ACTIVATION_LIMIT, inplace=_owned(x, evaluating)).to(dtype)


def _rounded_parameters(layer: nn.Module, compute: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """The layer's weight and bias on their grids (the bias on the products' grid), in ``compute``."""
    weight = on_grid(_weight(layer), WEIGHT_BITS).to(compute)
    bias = None if layer.bias is None else on_grid(layer.bias, WEIGHT_BITS + ACTIVATION_BITS).to(compute)
    return weight, bias


_GRID_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, Tensor, Tensor | None]] = weakref.WeakKeyDictionary()


def _grid_parameters(layer: nn.Module, compute: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """:func:`_rounded_parameters`, headroom-checked, kept while the parameters are unchanged: a
    decoder calls the same layers once per pass, and rounding their weights each time cost more
    than the convolutions. Not kept while gradients flow to the input (refinement): autograd must
    be free to save them, which tensors made in inference mode forbid (those are kept apart)."""
    weight = layer.weight  # the parameter (a masked layer's mask is constant): changed in place when trained
    key = None if torch.is_grad_enabled() else (
        weight.data_ptr(), weight._version, compute, torch.is_inference_mode_enabled(),
        None if layer.bias is None else (layer.bias.data_ptr(), layer.bias._version))
    cached = _GRID_CACHE.get(layer)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1], cached[2]
    weight, bias = _rounded_parameters(layer, compute)
    _check_headroom(layer, weight, bias)
    if key is not None:
        _GRID_CACHE[layer] = (key, weight, bias)
    return weight, bias


def _owned(x: Tensor, evaluating: bool) -> bool:
    """Whether :func:`exact_forward` may round ``x`` in place: its own copy, with no gradient to keep."""
    return evaluating and not x.requires_grad
