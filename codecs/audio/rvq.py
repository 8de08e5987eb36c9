"""A residual-VQ speech codec whose indices are range coded with a learned prior (``rvq-speech``).

In the line of SoundStream (Zeghidour et al. 2021, arXiv:2107.03312), DAC (Kumar et al. 2023,
arXiv:2306.06546) and ESC (Gu & Feng 2024, arXiv:2404.19441): a transform encoder, a residual vector
quantiser whose number of stages sets the bitrate, a decoder; the bitrate is chosen by how many
stages are sent, from one model. Like ESC it works on a spectral front end rather than the raw
waveform (an MDCT here, :mod:`lnc.codecs.layers.mdct`, where ESC uses the STFT), which keeps every
learned layer at the frame rate; unlike ESC it quantises at one scale with convolutional transforms,
not across the scales of a transformer. What none of them do by default, it codes the indices
through ``lnc.entropy`` with a learned prior (:mod:`lnc.codecs.latent.residual_indices`) instead of
fixed-length codes::

    x ─MDCT(H)─► conv, residual blocks, stride 2 ─► z ─► RVQ (first n stages) ─► indices ─► prior ─► stream
    x̂ ◄─MDCT⁻¹── conv, residual blocks, ×2 ◄────── ẑ = Σ stage vectors ◄─ indices ◄─ prior ◄─ stream

At 16 kHz with ``H = 160`` the latent has 50 frames a second, so a stage of 1024 entries costs at
most 500 bit/s: 3 stages make 1.5 kbit/s, 12 make 6 kbit/s, before the prior's saving.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lnc.codecs.base import AudioCodec, Decoders, Encoders, WholeRatePointsMixin
from lnc.codecs.latent.indices import INDEX_PRIORS, IndexPrior
from lnc.codecs.latent.residual_indices import ResidualIndexLatentCodec, StageContext
from lnc.codecs.layers import conv, deconv
from lnc.codecs.layers.blocks import ResidualBlock, Scale
from lnc.codecs.layers.mdct import MDCT, InverseMDCT
from lnc.codecs.layers.vq import ResidualVectorQuantizer
from lnc.codecs.registry import register
from lnc.entropy.categorical import CategoricalModel

COEFFICIENT_SCALE = 16.0
"""MDCT coefficients are scaled by this into the encoder (and back out of the decoder), so the
first layers start on values of order one."""


def _blocks(channels: int, count: int) -> list[nn.Module]:
    return [ResidualBlock(channels, channels, 3, 1) for _ in range(count)]


@register
class ResidualVQSpeech(WholeRatePointsMixin, AudioCodec):
    """MDCT, convolutional encoder and decoder around a residual VQ, indices coded with a prior.

    Args:
        hop: MDCT hop ``H``; the latent frame is ``2H`` samples (one stride-2 layer after the MDCT).
        N: hidden channels of the transforms.
        dim: dimension of the quantised latent.
        blocks: residual blocks at each of the two frame rates, in each transform.
        num_codes: entries per stage (at most 65,535: the coder's alphabet).
        code_dim: dimension each stage looks up in.
        stage_counts: stages sent at each rate point (increasing); the quantiser has the largest.
        context_hidden: channels of the stage context network.
        index_prior: ``"uniform"`` (fixed-length codes), ``"factorized"`` or ``"context"``.
        beta: commitment-loss weight.
        sample_rate: the rate the model works at; other rates are resampled to it.
    """

    architecture = "rvq-speech"
    stream_strides = {"indices": 320}  # 2·hop at the default hop; each instance sets its own
    value_range = (-1.0, 1.0)
    joint_stereo = True
    half_precision = ("g_a.", "g_s.", "context.")
    numeric_options = ("index_prior",)

    def __init__(
        self,
        hop: int = 160,
        N: int = 224,
        dim: int = 128,
        blocks: int = 2,
        num_codes: int = 1024,
        code_dim: int = 8,
        stage_counts: Sequence[int] = (3, 6, 9, 12, 18),
        context_hidden: int = 48,
        index_prior: IndexPrior = "context",
        beta: float = 0.25,
        sample_rate: int = 16000,
    ) -> None:
        counts = [int(n) for n in stage_counts]
        super().__init__(len(counts))
        if not counts or counts != sorted(set(counts)) or counts[0] < 1:
            raise ValueError(f"stage_counts must increase from at least 1, got {counts}")
        if index_prior not in INDEX_PRIORS:
            raise ValueError(f"index_prior must be one of {INDEX_PRIORS}, got {index_prior!r}")
        del self.config["rate_points"]  # set by stage_counts
        self.config.update(hop=hop, N=N, dim=dim, blocks=blocks, num_codes=num_codes, code_dim=code_dim,
                           stage_counts=counts, context_hidden=context_hidden, index_prior=index_prior,
                           beta=beta, sample_rate=sample_rate)
        self.channels = 1
        self.sample_rate = sample_rate
        self.stage_counts = counts
        self.index_prior: IndexPrior = index_prior
        self.stream_strides = {"indices": 2 * hop}
        mdct = MDCT(hop)
        self.g_a = nn.Sequential(
            mdct, Scale(COEFFICIENT_SCALE), conv(hop, N, 3, 1, dim=1), *_blocks(N, blocks), nn.SiLU(),
            conv(N, N, 5, 2, dim=1), *_blocks(N, blocks), nn.SiLU(), conv(N, dim, 3, 1, dim=1),
        )
        self.g_s = nn.Sequential(
            conv(dim, N, 3, 1, dim=1), *_blocks(N, blocks), nn.SiLU(), deconv(N, N, 5, 2, dim=1),
            *_blocks(N, blocks), nn.SiLU(), conv(N, hop, 3, 1, dim=1), Scale(1.0 / COEFFICIENT_SCALE),
            InverseMDCT(mdct),
        )
        self.quantizer = ResidualVectorQuantizer(counts[-1], num_codes, dim, code_dim, beta)
        self.index_model = CategoricalModel(num_codes, num_tables=counts[-1])
        self.context = StageContext(dim, num_codes, counts[-1], context_hidden)

    def index_codec(self, prior: IndexPrior | None = None) -> ResidualIndexLatentCodec:
        """The latent codec of the indices (with the codec's prior by default)."""
        return ResidualIndexLatentCodec(self.index_model, self.context, self.quantizer.stage_vectors,
                                        prior or self.index_prior)

    def _counts(self, q: Tensor) -> Tensor:
        """Stages sent for each item, ``[B]`` int64."""
        table = torch.tensor(self.stage_counts, device=q.device)
        return table[q.round().long() - 1]

    # -- the three verbs ------------------------------------------------------------------------

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        return {"z": self.g_a(x)}

    def indices(self, x: Tensor, quality: Tensor | float | None = None) -> Tensor:
        """The indices ``[B, stages, T]`` of ``x`` at one ``quality`` (one stage count for all items)."""
        q = self.quality_tensor(quality, x.size(0), x.device)
        return self.quantizer.assign(self.g_a(x), int(self._counts(q[:1])[0]))

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        counts = self._counts(q)
        z_q, indices, vq_loss = self.quantizer(latents["z"], counts)
        _, factorized = self.index_codec("factorized")(indices, None)
        chosen = factorized if self.index_prior == "factorized" else self.index_codec()(indices, None)[1]
        sent = torch.arange(indices.size(1), device=q.device)[None, :, None] < counts[:, None, None]
        # Unsent stages cost nothing; the factorized tables train beside the prior in use (for
        # comparing priors and for the first stage of the context prior).
        likelihoods = torch.where(sent, chosen["indices"].float(), 1.0)
        samples = indices.size(0) * indices.size(2) * self.stream_strides["indices"]
        factorized_bits = -torch.log2(factorized["indices"].float()).sum() / samples  # per sample, as R
        return {
            "x_hat": self.g_s(z_q),
            "likelihoods": {"indices": likelihoods},
            "losses": {"vq": vq_loss, "factorized_bits": factorized_bits},
            "indices": indices[:, 0],
            "codebook_size": self.quantizer.num_codes,
        }

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        for point, items in self._points(q):
            indices = self.quantizer.assign(latents["z"][items], self.stage_counts[point])
            subset = {name: [encs[int(i)] for i in items] for name, encs in encoders.items()}
            self.index_codec().compress(indices, None, subset)

    def read_streams(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], q: Tensor) -> Tensor:
        batch = len(decoders["indices"])
        out: Tensor | None = None
        for point, items in self._points(q):
            subset = {name: [decs[int(i)] for i in items] for name, decs in decoders.items()}
            indices = self.index_codec().decompress(subset, shapes, self.stage_counts[point])
            x_hat = self.g_s(self.quantizer.lookup(indices)).clamp_(*self.value_range)
            if out is None:
                out = x_hat.new_empty(batch, *x_hat.shape[1:])
            out[items] = x_hat
        assert out is not None
        return out
