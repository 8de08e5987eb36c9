"""The hyperprior body shared by codecs of every modality (Ballé et al. 2018, arXiv:1802.01436;
means as well, Minnen, Ballé & Toderici 2018, arXiv:1809.02736)::

    x ─g_a─► y ─(×gain)───────────────► Q ─► GaussianConditional(σ, μ) ─► ŷ ─(×inverse gain)─g_s─► x̂
                 └─h_a─► z ─(×gain)─► Q ─► EntropyBottleneck ─► ẑ ─(×inverse gain)─h_s─► σ, μ
"""
from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from lnc.codecs.base import Codec, Decoders, Encoders
from lnc.codecs.latent import EntropyBottleneckLatentCodec, GaussianConditionalLatentCodec, HyperpriorLatentCodec
from lnc.codecs.latent.base import LatentCodec
from lnc.codecs.layers import GainUnit, apply_gain
from lnc.codecs.layers.exact import exact_forward
from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy.gaussian import GaussianConditional


class HyperpriorMixin:
    """Mixed into a :class:`~lnc.codecs.base.Codec` that sets ``g_a``, ``g_s``, ``h_a``, ``h_s``,
    calls :meth:`_set_exact_entropy` and :meth:`_build_entropy_models`, defines :meth:`hyper_side`
    and sets ``latent_codec`` (usually :meth:`_hyperprior` around ``y_gaussian``).

    ``mixed_quantization``: in training, ``g_s`` gets the latents rounded with a straight-through
    gradient while the rate keeps the noise proxy (Minnen & Singh 2020, arXiv:2007.08739).
    ``exact_entropy``: the entropy parameters (``h_s``, any context model, the hyper gain) are
    computed with exact sums on a dyadic grid (:mod:`lnc.codecs.layers.exact`), so every machine
    and thread count selects the same CDF tables.
    """

    value_range: ClassVar[tuple[float, float]]
    """The reconstruction is clamped to this range."""
    numeric_options: ClassVar[tuple[str, ...]] = ("exact_entropy",)
    latent_codec: LatentCodec
    g_a: nn.Module
    g_s: nn.Module
    h_a: nn.Module
    h_s: nn.Module

    def _set_exact_entropy(self: Codec, exact_entropy: bool) -> None:
        self.exact_entropy = bool(exact_entropy)
        if self.exact_entropy:
            self.config.update(exact_entropy=True)

    def _build_entropy_models(self: Codec, N: int, M: int, rate_points: int, mixed_quantization: bool) -> None:
        """The entropy bottleneck of ``z`` (``N`` channels), the Gaussian conditional of ``y`` (``M``)
        and their gain units."""
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.y_gaussian = GaussianConditionalLatentCodec(self.gaussian_conditional, "y", mixed_quantization)
        self.gain = GainUnit(rate_points, M, init_range=(0.3, 3.0)) if rate_points else None
        self.hyper_gain = GainUnit(rate_points, N) if rate_points else None

    def _hyperprior(self, main: LatentCodec) -> HyperpriorLatentCodec:
        """``z`` by the entropy bottleneck, then ``main`` conditioned on :meth:`hyper_side`."""
        return HyperpriorLatentCodec(EntropyBottleneckLatentCodec(self.entropy_bottleneck, "z"), main, self.hyper_side)

    @property
    def mixed_quantization(self) -> bool:
        """Whether training rounds the synthesis input (the latent codec of ``y`` holds the switch)."""
        return self.y_gaussian.mixed_quantization

    @mixed_quantization.setter
    def mixed_quantization(self, on: bool) -> None:
        self.y_gaussian.mixed_quantization = bool(on)

    def _hyper_input(self, y: Tensor) -> Tensor:
        return y

    def entropy_path(self, module: nn.Module, x: Tensor) -> Tensor:
        """``module(x)`` for a layer of the entropy parameters: exact sums with ``exact_entropy``."""
        return exact_forward(module, x) if self.exact_entropy else module(x)

    def hyper_input(self, z_hat: Tensor, q: Tensor) -> Tensor:
        """``ẑ`` times the inverse hyper gain: what ``h_s`` reads."""
        return apply_gain(self.hyper_gain, z_hat, q, inverse=True, portable=self.exact_entropy)

    def hyper_features(self, z_hat: Tensor, q: Tensor) -> Tensor:
        """``h_s`` of ``ẑ``; for a mean-scale ``h_s``, ``2M`` channels: the scales then the means."""
        return self.entropy_path(self.h_s, self.hyper_input(z_hat, q))

    def hyper_side(self, z_hat: Tensor, q: Tensor) -> Any:
        """What ``ẑ`` tells the latent codec of ``y`` (at qualities ``q``): scales and means."""
        scales, means = self.hyper_features(z_hat, q).chunk(2, 1)
        return scales, means

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        y = apply_gain(self.gain, self.g_a(x), q)
        z = apply_gain(self.hyper_gain, self.h_a(self._hyper_input(y)), q)
        return {"y": y, "z": z}

    def _synthesise(self, y_hat: Tensor, q: Tensor) -> Tensor:
        return self.g_s(apply_gain(self.gain, y_hat, q, inverse=True))

    def forward_latents(self, latents: dict[str, Tensor], q: Tensor) -> dict[str, Any]:
        y_hat, likelihoods = self.latent_codec(latents, q)
        return {"x_hat": self._synthesise(y_hat, q), "likelihoods": likelihoods}

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        self.latent_codec.compress(latents, q, encoders)

    def read_streams(self, decoders: Decoders, shapes: dict[str, tuple[int, ...]], q: Tensor) -> Tensor:
        return self._synthesise(self.latent_codec.decompress(decoders, shapes, q), q).clamp_(*self.value_range)
