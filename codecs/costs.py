"""What a codec costs to run: parameters and floating-point operations per pixel, part by part.

Counted with :class:`torch.utils.flop_counter.FlopCounterMode` on a real ``compress`` and
``decompress`` of one image, so every layer the verbs run is counted, context models and entropy
parameters included, as they run (the exact path of ``exact_entropy`` too). The counter counts the
multiply-adds of convolutions (transposed ones per input position, each exactly once) and matrix
products as two FLOPs each; elementwise work (biases, activations, GDN's square roots, sigmoids,
the rounding) and the range coder are not counted. MACs are FLOPs / 2.

Yang & Mandt 2023 (arXiv:2304.06244) quote the same FLOPs, two per multiply-add: their
``results/flops_per_pixel.csv`` gives 2,433 for the 18×18 stride-16 synthesis from 320 channels,
2 · 320 · 3 · 18² / 16² = 2,430 plus the bias; their decoding costs (synthesis plus hyper-synthesis:
217.9 K for the mean-scale hyperprior, 41.0 K two-layer, 32.8 K JPEG-like) compare with
``flops_per_pixel["decode"]`` here, not with the MACs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lnc.codecs.base import ImageCodec

PARTS = ("analysis", "hyper_analysis", "synthesis", "entropy", "decode", "encode")
"""The parts :func:`decode_costs` reports: the transforms ``g_a``, ``h_a`` and ``g_s``; the
decoder's entropy parameters (``decompress`` but ``g_s``: ``h_s``, context models, the entropy
models' own arithmetic); the whole ``decompress``; the whole ``compress``."""

PAPER_SIZES: dict[str, dict[str, int]] = {
    "bmshj2018-factorized": {"N": 192, "M": 320},
    "bmshj2018-hyperprior": {"N": 192, "M": 320},
    "mbt2018-mean": {"N": 192, "M": 320},
    "he2021-checkerboard": {"N": 192, "M": 320},
}
"""Image architectures whose defaults are not the size their papers report at high rates (Ballé et
al. 2018, arXiv:1802.01436; Minnen et al. 2018, arXiv:1809.02736; He et al. 2021, arXiv:2103.15306;
the mean-scale hyperprior at this size is Yang & Mandt's baseline); the others' defaults are."""


@contextmanager
def _per_module(counter: FlopCounterMode, modules: dict[str, nn.Module]) -> Iterator[dict[str, int]]:
    """The FLOPs ``counter`` counts inside each of ``modules``' forward calls, by name."""
    counts = dict.fromkeys(modules, 0)
    started: dict[str, int] = {}
    handles = []
    for name, module in modules.items():
        def start(_module: nn.Module, _inputs: object, name: str = name) -> None:
            started[name] = counter.get_total_flops()

        def stop(_module: nn.Module, _inputs: object, _output: object, name: str = name) -> None:
            counts[name] += counter.get_total_flops() - started[name]

        handles += [module.register_forward_pre_hook(start), module.register_forward_hook(stop)]
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def _counted(run: Callable[[], object], modules: dict[str, nn.Module]) -> tuple[object, int, dict[str, int]]:
    """``run()``'s result, its FLOPs and those inside each of ``modules``."""
    with FlopCounterMode(display=False) as counter, _per_module(counter, modules) as counts:
        result = run()
    return result, counter.get_total_flops(), counts


def _parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def decode_costs(codec: ImageCodec, size: int = 256) -> dict[str, dict[str, float]]:
    """Parameters, FLOPs and MACs per pixel of each of :data:`PARTS` of ``codec``, from coding one
    ``size``×``size`` image (a multiple of ``codec.downsampling``) at the default quality:
    ``{part: {"parameters", "flops_per_pixel", "macs_per_pixel"}}``.

    A convolution costs the same per pixel at any size, so a small image gives the figures of a
    large one. Parameters: ``entropy`` counts every parameter outside ``g_a``, ``h_a`` and ``g_s``
    (``h_s``, context models, entropy models, gains), ``decode`` every one outside ``g_a`` and
    ``h_a``, ``encode`` every one outside ``g_s``. The codec's CDF tables are built if missing.
    """
    if codec.modality != "image":
        raise ValueError(f"{codec.architecture} codes {codec.modality}, not images")
    parts = {name: getattr(codec, attr, None) for name, attr in
             (("analysis", "g_a"), ("hyper_analysis", "h_a"), ("synthesis", "g_s"))}
    modules = {name: module for name, module in parts.items() if module is not None}
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.to(next(codec.parameters()).device)
    codec.update()
    with torch.no_grad():
        compressed, encode, inside = _counted(lambda: codec.compress(x), modules)
        _, decode, decoded = _counted(lambda: codec.decompress(compressed), modules)  # type: ignore[arg-type]
    synthesis = decoded.get("synthesis", 0)
    flops = {
        "analysis": inside.get("analysis", 0),
        "hyper_analysis": inside.get("hyper_analysis", 0),
        "synthesis": synthesis,
        "entropy": decode - synthesis,
        "decode": decode,
        "encode": encode,
    }
    own = {name: _parameters(module) for name, module in parts.items()}
    total = _parameters(codec)
    parameters = {
        **own,
        "entropy": total - sum(own.values()),
        "decode": total - own["analysis"] - own["hyper_analysis"],
        "encode": total - own["synthesis"],
    }
    pixels = size * size
    return {
        part: {"parameters": parameters[part], "flops_per_pixel": flops[part] / pixels,
               "macs_per_pixel": flops[part] / pixels / 2}
        for part in PARTS
    }
