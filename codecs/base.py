"""The base of lnc's image codecs: three verbs, ``forward`` (training), ``compress`` and ``decompress``.

A codec composes an analysis transform ``g_a``, a synthesis transform ``g_s`` and entropy models from
``lnc.entropy``; it never touches the range coder itself. Variable-rate codecs (``rate_points > 0``)
carry :class:`~lnc.codecs.gain.GainUnit` s and take a continuous ``quality`` in ``[1, rate_points]``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy.errors import LncError
from lnc.entropy.gaussian import GaussianConditional, get_scale_table


class ImageCodec(nn.Module):
    """A learned image codec; subclasses define the transforms and the three verbs."""

    architecture: ClassVar[str]
    """Registry name of the architecture, e.g. ``"mbt2018-mean"``."""
    downsampling: ClassVar[int] = 64
    """Input height and width must be multiples of this (total stride including the hyperprior)."""
    grows_from: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Architectures whose trained weights this one can start from, with the prefixes of the layers
    it adds to them (``lnc train --model.init_weights``)."""

    def __init__(self, rate_points: int = 0) -> None:
        super().__init__()
        self.rate_points = int(rate_points)
        self.config: dict[str, Any] = {"rate_points": self.rate_points}
        self.name = self.architecture
        self.file_hash: bytes | None = None

    @property
    def weights_hash(self) -> bytes:
        """8 bytes that bitstreams carry to name these weights: the weights file's hash when the codec
        was loaded from one, else a hash of the current state dict (e.g. during training)."""
        if self.file_hash is not None:
            return self.file_hash
        digest = hashlib.sha256()
        for key, value in self.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.digest()[:8]

    @property
    def quality_points(self) -> list[float]:
        """The rate points this codec was trained at; a fixed-rate codec has the single point 0."""
        return [float(q) for q in range(1, self.rate_points + 1)] or [0.0]

    @property
    def default_quality(self) -> float:
        """The quality used when none is given: about three quarters up the range, like cwebp's 75."""
        return float(round(0.75 * self.rate_points)) if self.rate_points else 0.0

    def quality_tensor(self, quality: Tensor | float | None, batch: int, device: torch.device) -> Tensor:
        """Qualities as a float32 tensor ``[batch]``, checked against the codec's range."""
        if quality is None:
            quality = self.default_quality
        q = torch.as_tensor(quality, dtype=torch.float32, device=device).reshape(-1)
        if q.numel() == 1:
            q = q.expand(batch)
        if self.rate_points and (bool((q < 1).any()) or bool((q > self.rate_points).any())):
            raise LncError(f"quality must lie in [1, {self.rate_points}], got {quality}")
        return q

    # -- entropy models -------------------------------------------------------------------------

    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables of every entropy model; True when any table changed."""
        updated = False
        for module in self.modules():
            if isinstance(module, EntropyBottleneck):
                updated |= bool(module.update(force=force))
            elif isinstance(module, GaussianConditional):
                updated |= bool(module.update_scale_table(get_scale_table(), force=force))
        return updated

    def aux_loss(self) -> Tensor:
        """Sum of the entropy bottlenecks' quantile losses (CompressAI's auxiliary loss)."""
        losses = [m.loss() for m in self.modules() if isinstance(m, EntropyBottleneck)]
        return torch.stack(losses).sum() if losses else torch.zeros(())

    def aux_parameters(self) -> Iterator[nn.Parameter]:
        """The entropy bottlenecks' quantiles, trained by the auxiliary loss only."""
        return (p for n, p in self.named_parameters() if n.endswith("quantiles"))

    def named_main_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Every parameter but the quantiles, with its name: what the rate–distortion loss trains."""
        return ((n, p) for n, p in self.named_parameters() if not n.endswith("quantiles"))

    def main_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter but the quantiles, trained by the rate–distortion loss."""
        return (p for _, p in self.named_main_parameters())

    # -- the three verbs ------------------------------------------------------------------------

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        """The continuous latents the encoder quantises, by name (``{"y": …, "z": …}``)."""
        raise NotImplementedError

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        """:meth:`forward` from given latents: quantised as the entropy models' mode says, then
        synthesised; differentiable in the latents (the encoder's refinement optimises them)."""
        raise NotImplementedError

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> dict[str, Any]:
        """Training pass: ``{"x_hat": Tensor, "likelihoods": {name: Tensor}}``."""
        q = self.quality_tensor(quality, x.shape[0], x.device)
        return self.forward_latents(self.analyse(x, q), q)

    def compress(
        self, x: Tensor, quality: Tensor | float | None = None, latents: dict[str, Tensor] | None = None
    ) -> dict[str, Any]:
        """Code a batch ``[B, 3, H, W]``: ``{"strings": {latent: [bytes] * B}, "shape": z_size}``.
        ``latents`` replaces ``analyse(x)``, e.g. by refined ones (:mod:`lnc.codecs.refine`)."""
        raise NotImplementedError

    def decompress(
        self, strings: dict[str, list[bytes]], shape: tuple[int, int], quality: Tensor | float | None = None
    ) -> Tensor:
        """Reconstruct ``[B, 3, H, W]`` in [0, 1] from what :meth:`compress` returned."""
        raise NotImplementedError

    def _latents(self, x: Tensor, q: Tensor, latents: dict[str, Tensor] | None) -> dict[str, Tensor]:
        return self.analyse(x, q) if latents is None else latents

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the deepest latent for a padded input of ``height`` × ``width``."""
        return height // self.downsampling, width // self.downsampling
