"""VQ-index image codec for extreme rates (``vqgan``).

Mao, Yang, Huang, Kuo & Zhang 2024, "Extreme image compression using fine-tuned VQGANs" (DCC,
arXiv:2307.08265): an image becomes the indices of a VQGAN (Esser, Rombach & Ommer 2021,
arXiv:2012.09841) at one index per ``f × f`` pixels, so the rate is fixed by the grid and the
codebook size; fewer entries (k-means of the trained codebook, then codebook-only fine-tuning) give
lower rates. Here the indices go through lnc's range coder with a learned prior
(:mod:`lnc.codecs.latent.indices`), which the paper, coding them uniformly, leaves on the table::

    x ─g_a─► z ─nearest entry─► indices ─prior─► range coder
                                   └─► codebook vectors ─g_s─► x̂

The quantiser is plain VQ or SimVQ (Zhu et al. 2024, arXiv:2411.02038); a model with
``codebook_sizes`` holds one reduced codebook per rate point instead (quality ``q`` uses the
``q``-th smallest), each with its own prior.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnc.codecs.base import Decoders, Encoders, ImageCodec, WholeRatePointsMixin
from lnc.codecs.latent.indices import INDEX_PRIORS, IndexLatentCodec, IndexPrior, context_network
from lnc.codecs.layers.vq import CodebookSet, SimVQ, VectorQuantizer
from lnc.codecs.registry import register
from lnc.entropy.categorical import CategoricalModel

QUANTIZERS = {"vq": VectorQuantizer, "simvq": SimVQ}


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4), channels, eps=1e-6)


class ResBlock(nn.Module):
    """VQGAN's residual block: (GroupNorm, SiLU, 3×3 conv) twice, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Attention(nn.Module):
    """Single-head self-attention over all positions (VQGAN's block at the lowest resolution)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


def analysis(stem: int, channels: Sequence[int], blocks: int, attention: bool, dim: int) -> nn.Sequential:
    """A 3×3 stem, then per level a stride-2 3×3 convolution and ``blocks`` residual blocks; at the
    lowest resolution attention, a residual block, and a projection to ``dim``."""
    layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, padding=1)]
    width = stem
    for out in channels:
        layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), *(ResBlock(out) for _ in range(blocks))]
        width = out
    if attention:
        layers += [Attention(width), ResBlock(width)]
    layers += [_norm(width), nn.SiLU(), nn.Conv2d(width, dim, 1)]
    return nn.Sequential(*layers)


def synthesis(stem: int, channels: Sequence[int], blocks: int, attention: bool, dim: int) -> nn.Sequential:
    """The mirror of :func:`analysis`: upsampling by a 3×3 convolution to 4× the channels and a
    pixel shuffle (no checkerboard artefacts of strided transposed convolutions)."""
    widths = list(channels)[::-1]
    layers: list[nn.Module] = [nn.Conv2d(dim, widths[0], 3, padding=1), ResBlock(widths[0])]
    if attention:
        layers += [Attention(widths[0]), ResBlock(widths[0])]
    for width, out in zip(widths, [*widths[1:], stem]):
        layers += [*(ResBlock(width) for _ in range(blocks)), nn.Conv2d(width, 4 * out, 3, padding=1), nn.PixelShuffle(2)]
    layers += [_norm(stem), nn.SiLU(), nn.Conv2d(stem, 3, 3, padding=1)]
    return nn.Sequential(*layers)


@register
class VQGAN(WholeRatePointsMixin, ImageCodec):
    """VQ autoencoder whose indices are range coded with a learned prior.

    Args:
        stem: channels at full resolution.
        channels: channels after each stride-2 level; ``f = 2^len(channels)`` pixels per index side.
        blocks: residual blocks per level.
        attention: self-attention at the lowest resolution.
        dim: codebook vector dimension.
        num_codes: codebook size ``K`` of the trained quantiser (at most 65,535: the coder's alphabet).
        quantizer: ``"simvq"`` or ``"vq"``.
        codebook_sizes: reduced codebooks, one per rate point (smallest first); empty for the
            trained quantiser alone.
        context_hidden: channels of each context network.
        index_prior: the prior the streams use: ``"uniform"``, ``"factorized"`` or ``"context"``.
        beta: commitment-loss weight.
        normalize: l2-normalised latents and entries (cosine distance; far higher codebook usage).
    """

    architecture = "vqgan"
    stream_strides = {"indices": 16}  # at four levels; each instance sets its own
    value_range = (0.0, 1.0)
    half_precision = ("g_a.", "g_s.", "context_models.")
    numeric_options = ("index_prior",)

    def __init__(
        self,
        stem: int = 32,
        channels: Sequence[int] = (64, 128, 128, 256),
        blocks: int = 1,
        attention: bool = True,
        dim: int = 32,
        num_codes: int = 1024,
        quantizer: Literal["simvq", "vq"] = "simvq",
        codebook_sizes: Sequence[int] = (),
        context_hidden: int = 64,
        index_prior: IndexPrior = "context",
        beta: float = 0.25,
        normalize: bool = False,
    ) -> None:
        sizes = [int(k) for k in codebook_sizes]
        super().__init__(len(sizes))
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {tuple(QUANTIZERS)}, got {quantizer!r}")
        if index_prior not in INDEX_PRIORS:
            raise ValueError(f"index_prior must be one of {INDEX_PRIORS}, got {index_prior!r}")
        if sizes != sorted(sizes) or any(not 2 <= k <= num_codes for k in sizes):
            raise ValueError(f"codebook_sizes must increase, each in 2..num_codes, got {sizes}")
        channels = [int(c) for c in channels]
        del self.config["rate_points"]  # set by codebook_sizes
        self.config.update(stem=stem, channels=channels, blocks=blocks, attention=attention, dim=dim,
                           num_codes=num_codes, quantizer=quantizer, codebook_sizes=sizes,
                           context_hidden=context_hidden, index_prior=index_prior, beta=beta,
                           normalize=normalize)
        self.stream_strides = {"indices": 2 ** len(channels)}
        self.index_prior: IndexPrior = index_prior
        self.g_a = analysis(stem, channels, blocks, attention, dim)
        self.g_s = synthesis(stem, channels, blocks, attention, dim)
        self.quantizer = (CodebookSet(sizes, dim, beta, normalize) if sizes
                          else QUANTIZERS[quantizer](num_codes, dim, beta, normalize))
        self.index_models = nn.ModuleList(CategoricalModel(k) for k in self.quantizer.sizes)
        self.context_models = nn.ModuleList(context_network(dim, k, context_hidden) for k in self.quantizer.sizes)

    # -- rate points ----------------------------------------------------------------------------

    def index_codec(self, point: int, prior: IndexPrior | None = None) -> IndexLatentCodec:
        """The latent codec of rate point ``point``'s indices (with the codec's prior by default)."""
        return IndexLatentCodec(
            self.index_models[point], self.context_models[point],
            lambda indices: self.quantizer.lookup(indices, point), prior or self.index_prior,
        )

    # -- the three verbs ------------------------------------------------------------------------

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        return {"z": self.g_a(x)}

    def indices(self, x: Tensor, quality: Tensor | float | None = None) -> Tensor:
        """The index map ``[B, h, w]`` of ``x`` at ``quality``."""
        q = self.quality_tensor(quality, x.size(0), x.device)
        z = self.g_a(x)
        out = torch.empty(z.size(0), *z.shape[2:], dtype=torch.int64, device=z.device)
        for point, items in self._points(q):
            out[items] = self.quantizer.assign(z[items], point)
        return out

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        z = latents["z"]
        z_q = torch.empty_like(z)
        indices = torch.empty(z.size(0), *z.shape[2:], dtype=torch.int64, device=z.device)
        likelihoods = torch.empty(indices.shape, device=z.device)
        vq_loss = z.new_zeros(())
        for point, items in self._points(q):
            zq_p, idx, loss = self.quantizer(z[items], point)
            z_q[items], indices[items] = zq_p, idx
            likelihoods[items] = self.index_codec(point)(idx, None)[1]["indices"].float()
            vq_loss = vq_loss + loss * len(items) / z.size(0)
        return {
            "x_hat": self.g_s(z_q),
            "likelihoods": {"indices": likelihoods},
            "losses": {"vq": vq_loss},
            "indices": indices,
            "codebook_size": self.quantizer.sizes[self._points(q)[0][0]],
        }

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        z = latents["z"]
        for point, items in self._points(q):
            indices = self.quantizer.assign(z[items], point)
            subset = {name: [encs[int(i)] for i in items] for name, encs in encoders.items()}
            self.index_codec(point).compress(indices, None, subset)

    def read_streams(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], q: Tensor) -> Tensor:
        batch = len(decoders["indices"])
        out: Tensor | None = None
        for point, items in self._points(q):
            subset = {name: [decs[int(i)] for i in items] for name, decs in decoders.items()}
            indices = self.index_codec(point).decompress(subset, shapes, None)
            x_hat = self.g_s(self.quantizer.lookup(indices, point)).clamp_(0, 1)
            if out is None:
                out = x_hat.new_empty(batch, *x_hat.shape[1:])
            out[items] = x_hat
        assert out is not None
        return out
