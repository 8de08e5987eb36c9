"""MLIC++: a multi-reference entropy model of linear complexity (Jiang & Wang 2023, arXiv:2307.15421;
MLIC, Jiang et al., ACM MM 2023, arXiv:2211.07273) on the mean-scale hyperprior of ``mbt2018-mean``.

``y`` is coded in channel slices, each as anchors then non-anchors
(:class:`~lnc.codecs.latent.multi_reference.MultiReferenceLatentCodec`). The prior of every pass is
the checkerboard model of ``he2021-checkerboard`` (the hyperprior plus a masked convolution of the
anchors over all channels); each slice corrects it from

* the hyperprior's features,
* a channel context: a 3×3 convolution stack over the slices already decoded,
* a global context across slices: linear attention over the slices already decoded,
* (non-anchors) a local context: a checkerboard-masked 5×5 convolution of the slice's anchors,
  refined by attention over the anchors of each position's 5×5 window,
* (non-anchors) a global context within the slice: linear attention whose queries and keys come
  from the previous slice's non-anchors and anchors, and whose values are this slice's anchors,

and latent residual prediction (Minnen & Singh 2020, arXiv:2007.08739) adds a bounded estimate of
the rounding error to each decoded slice. The parameter networks use GELU, as the paper's.

The last layer of every correction and residual network starts at zero, so the model at step 0
codes as its prior: grown from trained ``he2021-checkerboard`` weights (``lnc train
--model.init_weights``), it writes the parent's symbols for every anchor and for the last slice's
non-anchors, and nearly the parent's elsewhere (later slices' anchors enter the parent's context as
their prior means until decoded). From ``mbt2018-mean`` weights it codes exactly as the hyperprior.

The attention layers have no exact form (:mod:`lnc.codecs.layers.exact`): ``exact_entropy`` is
refused.
"""
from __future__ import annotations

from torch import Tensor, nn

from lnc.codecs.image.checkerboard import CheckerboardMeanScale
from lnc.codecs.latent import CheckerboardConv2d, CheckerboardLatentCodec
from lnc.codecs.latent.multi_reference import MultiReferenceLatentCodec, SliceContexts
from lnc.codecs.layers.attention import CheckerboardWindowAttention, LinearAttention2d
from lnc.codecs.registry import register

_ADDED = (
    "channel_context.", "global_inter_context.", "local_context.", "global_intra_context.",
    "anchor_parameters.", "other_parameters.", "residual_prediction.",
)
"""Prefixes of the layers MLIC++ adds to a checkerboard model."""


def _zero_last(network: nn.Sequential) -> nn.Sequential:
    """``network`` with its last layer at zero: a correction that starts as a no-op."""
    nn.init.zeros_(network[-1].weight)
    nn.init.zeros_(network[-1].bias)
    return network


def _parameter_network(in_channels: int, M: int, out_channels: int) -> nn.Sequential:
    """1×1 convolutions ``in → M → 4M/5 → 2M/5 → out`` with GELU (the paper's 320/256/128 at M=320)."""
    widths = [in_channels, M, 4 * M // 5, 2 * M // 5]
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Conv2d(a, b, 1), nn.GELU()]
    return _zero_last(nn.Sequential(*layers, nn.Conv2d(widths[-1], out_channels, 1)))


def _channel_context(in_channels: int, M: int, out_channels: int) -> nn.Sequential:
    """3×3 convolutions ``in → 3M/5 → 2M/5 → out`` with GELU (the paper's 192/128 at M=320)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 3 * M // 5, 3, padding=1), nn.GELU(),
        nn.Conv2d(3 * M // 5, 2 * M // 5, 3, padding=1), nn.GELU(),
        nn.Conv2d(2 * M // 5, out_channels, 3, padding=1),
    )


def _residual_prediction(in_channels: int, M: int, out_channels: int) -> nn.Sequential:
    """A 1×1 convolution to ``3M/5`` then 3×3 ones to ``2M/5`` and ``out``, with GELU."""
    return _zero_last(nn.Sequential(
        nn.Conv2d(in_channels, 3 * M // 5, 1), nn.GELU(),
        nn.Conv2d(3 * M // 5, 2 * M // 5, 3, padding=1), nn.GELU(),
        nn.Conv2d(2 * M // 5, out_channels, 3, padding=1),
    ))


class LocalContext(nn.Module):
    """The local context of the non-anchors: a checkerboard-masked 5×5 convolution of the decoded
    anchors, plus attention from it to the anchors of each 5×5 window (MLIC++'s window attention)."""

    def __init__(self, channels: int, out_channels: int, heads: int = 2) -> None:
        super().__init__()
        self.convolution = CheckerboardConv2d(channels, out_channels, 5)
        self.attention = CheckerboardWindowAttention(channels, out_channels, out_channels, heads, window=5)

    def forward(self, anchors: Tensor) -> Tensor:
        context = self.convolution(anchors)
        return context + self.attention(anchors, context)


@register
class MLICPlusPlus(CheckerboardMeanScale):
    """MLIC++ on ``he2021-checkerboard``: the same transforms, hyperprior and checkerboard context,
    with ``y`` coded in ``slices`` channel slices; bitstreams carry ``z`` and ``y``.

    Args:
        N, M: channels of ``z`` and ``y`` (the paper: 192 and 320).
        slices: channel slices of ``y``; ``M`` must be a multiple of it. 0 (the default): slices
            of 32 channels, as the paper's 10 of M=320 (one slice when M < 32).
        rate_points, mixed_quantization: as for ``mbt2018-mean``.
        exact_entropy: not supported (the attention layers have no exact form).
    """

    architecture = "mlicpp"
    legacy_streams = ()
    half_precision = (*CheckerboardMeanScale.half_precision, *_ADDED)
    grows_from = {
        "he2021-checkerboard": _ADDED,
        "mbt2018-mean": (*CheckerboardMeanScale.grows_from["mbt2018-mean"], *_ADDED),
    }

    def __init__(
        self, N: int = 192, M: int = 320, slices: int = 0, rate_points: int = 0, mixed_quantization: bool = False,
        exact_entropy: bool = False,
    ) -> None:
        if exact_entropy:
            raise ValueError("mlicpp has no exact entropy path: its attention layers have no exact form")
        slices = slices or max(1, M // 32)
        if slices < 1 or M % slices:
            raise ValueError(f"M={M} does not split into {slices} equal slices")
        super().__init__(N, M, rate_points, mixed_quantization)
        self.config.update(slices=slices)
        C = M // slices
        later = range(1, slices)
        self.channel_context = nn.ModuleList(_channel_context(k * C, M, 4 * C) for k in later)
        self.global_inter_context = nn.ModuleList(LinearAttention2d(k * C, 2 * C, heads=k) for k in later)
        self.local_context = nn.ModuleList(LocalContext(C, 2 * C) for _ in range(slices))
        self.global_intra_context = nn.ModuleList(LinearAttention2d(C, 2 * C, 2, value_channels=C) for _ in later)
        self.anchor_parameters = nn.ModuleList(
            _parameter_network(2 * M + (6 * C if k else 0), M, 2 * C) for k in range(slices))
        self.other_parameters = nn.ModuleList(
            _parameter_network(2 * M + 2 * C + (8 * C if k else 0), M, 2 * C) for k in range(slices))
        self.residual_prediction = nn.ModuleList(
            _residual_prediction(2 * M + (4 * C if k else 0) + C, M, C) for k in range(slices))
        contexts = [
            SliceContexts(
                channel=self.channel_context[k - 1] if k else None,
                global_inter=self.global_inter_context[k - 1] if k else None,
                local=self.local_context[k],
                global_intra=self.global_intra_context[k - 1] if k else None,
                anchor_parameters=self.anchor_parameters[k],
                other_parameters=self.other_parameters[k],
                residual=self.residual_prediction[k],
            )
            for k in range(slices)
        ]
        prior = CheckerboardLatentCodec(self.y_gaussian, self.context_prediction, self.context_fusion).parameters
        self.latent_codec = self._hyperprior(MultiReferenceLatentCodec(self.y_gaussian, [C] * slices, contexts, prior))
