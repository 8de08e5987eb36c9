"""The base of every lnc codec, whatever its modality: three verbs, ``forward`` (training),
``compress`` and ``decompress``, and a typed compressed result.

A codec composes analysis and synthesis transforms with latent codecs (:mod:`lnc.codecs.latent`),
which code through the entropy models of ``lnc.entropy``; it never touches the range coder's
internals. It declares the streams it writes (``stream_strides``: name → stride of the latent that
stream codes), so that a container can record them and a decoder can check a file's layout
before decoding anything. Variable-rate codecs (``rate_points > 0``) carry
:class:`~lnc.codecs.layers.GainUnit` s and take a continuous ``quality`` in ``[1, rate_points]``.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lnc.entropy.base import EntropyModel
from lnc.entropy.bottleneck import EntropyBottleneck
from lnc.entropy.chunked import Item
from lnc.entropy.coder import RangeDecoder, RangeEncoder
from lnc.entropy.errors import BitstreamError, LncError

MODALITIES = ("image", "video", "audio")


@contextmanager
def single_threaded(device: torch.device) -> Iterator[None]:
    """Run a codec with one CPU thread, encoder and decoder alike: convolutions split their sums
    differently with more threads (≈1e-6 apart). In the decoder's synthesis that can flip an 8-bit
    rounding, and a file must decode to the same samples on every machine setting; in the entropy
    parameters (the hyperprior, a context model) it can move a scale across a table boundary, and
    then the decoder reads the stream with another CDF than the encoder wrote it with."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


Encoders = Mapping[str, Sequence[RangeEncoder]]
"""Stream name → one incremental range encoder per batch item: what latent codecs append to."""
Decoders = Mapping[str, Sequence[RangeDecoder]]
"""Stream name → one range decoder per batch item, read in the order the encoders were written."""


@dataclass(frozen=True)
class Stream:
    """One named stream of a compressed batch: a byte string per batch item, and the size (after
    the channel dimension) of the latent it codes."""

    strings: list[bytes]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Compressed:
    """What :meth:`Codec.compress` returns and :meth:`Codec.decompress` takes.

    ``checksums`` (one per batch item, or None when unknown, as in older files) fingerprints the
    symbols and table indexes of every stream of an item: a decoder that reads other symbols, or
    the same stream with other tables, fails instead of returning wrong samples.
    """

    streams: dict[str, Stream]
    checksums: tuple[int, ...] | None = None

    @classmethod
    def from_items(cls, items: Sequence[Item], shapes: Mapping[str, tuple[int, ...]]) -> Compressed:
        """A batch of container items (all with or all without checksums); ``shapes`` by stream."""
        names = list(items[0].streams) if items else []
        checksums = tuple(item.checksum for item in items)
        return cls(
            {name: Stream([item.streams[name] for item in items], tuple(shapes.get(name, ()))) for name in names},
            None if None in checksums else checksums,  # type: ignore[arg-type]
        )

    @property
    def batch(self) -> int:
        """Number of batch items (tiles, chunks) coded."""
        return len(next(iter(self.streams.values())).strings) if self.streams else 0

    def item(self, k: int) -> Item:
        """Batch item ``k``: its strings by stream name and its checksum, what a container chunk holds."""
        return Item({name: stream.strings[k] for name, stream in self.streams.items()},
                    None if self.checksums is None else self.checksums[k])


def _item_checksums(coders: Mapping[str, Sequence[RangeEncoder | RangeDecoder]], batch: int) -> tuple[int, ...]:
    """Each batch item's checksum: the CRC-32 of its streams' coder checksums, in stream order."""
    return tuple(
        zlib.crc32(b"".join(struct.pack("<I", coders[name][k].checksum) for name in sorted(coders)))
        for k in range(batch)
    )


class Codec(nn.Module):
    """A learned codec; subclasses define the transforms, ``analyse``, ``forward_latents`` and the
    coding of their latents (``write_streams`` / ``read_streams``)."""

    modality: ClassVar[str]
    """``"image"``, ``"video"`` or ``"audio"``: which pipeline reads its inputs."""
    architecture: ClassVar[str]
    """Registry name of the architecture, e.g. ``"mbt2018-mean"``."""
    stream_strides: ClassVar[dict[str, int]]
    """The streams this codec writes, in file order, with the total stride of the latent each codes."""
    legacy_streams: ClassVar[tuple[tuple[str, ...], ...]] = ()
    """Stream layouts of older files this codec still decodes (e.g. one stream per coding pass)."""
    half_precision: ClassVar[tuple[str, ...]] = ("g_a.", "g_s.", "h_a.", "h_s.")
    """Prefixes of the weights stored in fp16 (the big transforms and context networks); the
    entropy models, gains and tables stay fp32."""
    numeric_options: ClassVar[tuple[str, ...]] = ()
    """Config keys that change how the weights are computed with, not the weights: a model trained
    without one fine-tunes with it (``lnc train --model.init_weights``)."""
    grows_from: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Architectures whose trained weights this one can start from, with the prefixes of the layers
    it adds to them (``lnc train --model.init_weights``)."""
    grown_options: ClassVar[tuple[str, ...]] = ()
    """Config keys that size only the added layers, so they may differ from the source's when growing."""

    def __init__(self, rate_points: int = 0) -> None:
        super().__init__()
        self.rate_points = int(rate_points)
        self.config: dict[str, Any] = {"rate_points": self.rate_points}
        self.name = self.architecture
        self.file_hash: bytes | None = None
        self.metadata: dict[str, str] = {}

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The streams of a file this codec writes, in order."""
        return tuple(self.stream_strides)

    @property
    def downsampling(self) -> int:
        """Input sizes must be multiples of this: the largest stride of any latent."""
        return max(self.stream_strides.values())

    def latent_shapes(self, size: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """The size of each stream's latent for a padded input of ``size`` (after the channels)."""
        return {name: tuple(int(s) // stride for s in size) for name, stride in self.stream_strides.items()}

    @classmethod
    def layout_problem(cls, names: Sequence[str]) -> str | None:
        """Why ``names`` (in any order) is not a stream layout this architecture writes or still
        reads; None when it is."""
        names = tuple(names)
        layouts = (tuple(cls.stream_strides), *cls.legacy_streams)
        if len(set(names)) != len(names) or not any(set(names) == set(layout) for layout in layouts):
            return (f"streams {', '.join(names) or 'none'} do not fit {cls.architecture}, which codes "
                    f"{', '.join(cls.stream_strides)}")
        return None

    def check_layout(self, names: Sequence[str]) -> None:
        """Raise BitstreamError unless ``names`` is a layout this codec reads (:meth:`layout_problem`)."""
        problem = self.layout_problem(names)
        if problem:
            raise BitstreamError(problem)

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
        if not bool(torch.isfinite(q).all()):
            raise LncError(f"quality must be a finite number, got {quality}")
        if self.rate_points and (bool((q < 1).any()) or bool((q > self.rate_points).any())):
            raise LncError(f"quality must lie in [1, {self.rate_points}], got {quality}")
        return q

    # -- entropy models -------------------------------------------------------------------------

    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables of every entropy model; True when any table changed."""
        updated = False
        for module in self.modules():
            if isinstance(module, EntropyModel):
                updated |= bool(module.update(force=force))
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

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        """Append the quantised ``latents`` to the encoders of :attr:`stream_names`."""
        raise NotImplementedError

    def read_streams(self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], q: Tensor) -> Tensor:
        """The reconstruction from the decoders of a compressed batch (values in [0, 1])."""
        raise NotImplementedError

    def adopt_state(self, architecture: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """The state dict of trained ``architecture`` weights (one it ``grows_from``) under this
        codec's parameter names: the same names, unless the codec holds the source as a part."""
        return state

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> dict[str, Any]:
        """Training pass: ``{"x_hat": Tensor, "likelihoods": {name: Tensor}}``."""
        q = self.quality_tensor(quality, x.shape[0], x.device)
        return self.forward_latents(self.analyse(x, q), q)

    def compress(
        self, x: Tensor, quality: Tensor | float | None = None, latents: dict[str, Tensor] | None = None
    ) -> Compressed:
        """Code a batch ``[B, C, ...]`` (sizes multiples of :attr:`downsampling`): one string per
        stream and batch item. ``latents`` replaces ``analyse(x)``, e.g. by refined ones
        (:mod:`lnc.codecs.image.refine`). Runs on one CPU thread (:func:`single_threaded`), as
        :meth:`decompress` does, whatever the caller set."""
        q = self.quality_tensor(quality, x.shape[0], x.device)
        encoders = {name: [RangeEncoder() for _ in range(x.shape[0])] for name in self.stream_names}
        with single_threaded(x.device):
            latents = self.analyse(x, q) if latents is None else latents
            self.write_streams(latents, q, encoders)
        shapes = self.latent_shapes(x.shape[2:])
        return Compressed(
            {name: Stream([e.flush() for e in encs], shapes[name]) for name, encs in encoders.items()},
            _item_checksums(encoders, x.shape[0]),
        )

    def decompress(self, compressed: Compressed, quality: Tensor | float | None = None, **context: Tensor) -> Tensor:
        """Reconstruct ``[B, C, ...]`` from what :meth:`compress` returned, on one CPU thread. Every
        stream must be read to its last byte, and to the item's checksum when there is one:
        anything else is a corrupt or mismatched stream, or a probability model that computed other
        tables than the encoder's (``BitstreamError``). ``context``: what a predictive codec's
        :meth:`read_streams` reads besides the streams (a video codec's reference frame)."""
        self.check_layout(list(compressed.streams))
        decoders = {name: [RangeDecoder(s) for s in stream.strings] for name, stream in compressed.streams.items()}
        shapes = {name: stream.shape for name, stream in compressed.streams.items()}
        device = next(self.parameters()).device
        q = self.quality_tensor(quality, compressed.batch, device)
        with single_threaded(device):
            x_hat = self.read_streams(decoders, shapes, q, **context)
        for decs in decoders.values():
            for decoder in decs:
                decoder.finish()
        if compressed.checksums is not None:
            if len(compressed.checksums) != compressed.batch:
                raise ValueError(f"{len(compressed.checksums)} checksums for {compressed.batch} items")
            for k, (want, got) in enumerate(zip(compressed.checksums, _item_checksums(decoders, compressed.batch))):
                if want != got:
                    raise BitstreamError(
                        f"decoded symbols of item {k} do not match the encoder's checksum: the file is "
                        "corrupt, or this machine computed other entropy parameters than the encoder's "
                        "(another CPU, torch version or device)")
        return x_hat


class WholeRatePointsMixin:
    """Mixed into a :class:`Codec` whose rate points are discrete choices (a codebook size, a number
    of quantiser stages) with nothing between them: qualities must be whole numbers."""

    rate_points: int

    def quality_tensor(self, quality: Tensor | float | None, batch: int, device: torch.device) -> Tensor:
        q = super().quality_tensor(quality, batch, device)  # type: ignore[misc]
        if self.rate_points and not bool((q == q.round()).all()):
            raise LncError(f"quality must be a whole number 1..{self.rate_points} (a discrete rate point), got {quality}")
        return q

    def _points(self, q: Tensor) -> list[tuple[int, Tensor]]:
        """(rate point, the batch items at it) for each rate point present in ``q`` (0-based)."""
        if not self.rate_points:
            return [(0, torch.arange(q.numel(), device=q.device))]
        points = q.round().long() - 1
        return [(int(p), torch.nonzero(points == p).flatten()) for p in points.unique()]


class ImageCodec(Codec):
    """A codec of RGB images ``[B, 3, H, W]`` in [0, 1]."""

    modality = "image"


class AudioCodec(Codec):
    """A codec of waveforms ``[B, channels, T]`` in [-1, 1]."""

    modality = "audio"
    channels: int
    sample_rate: int | None = None
    """The rate the codec works at (files at other rates are resampled to it and back); None: any."""
    joint_stereo: ClassVar[bool] = False
    """A mono codec given a stereo file codes mid and side, ``(L ± R) / 2``, instead of left and
    right: the side of most music is small and costs few bits."""


class VideoCodec(Codec):
    """A codec of RGB frames in [0, 1], one frame ``[B, 3, H, W]`` at a time: an intra frame alone,
    a predicted frame with its reference stacked after it (``[B, 6, H, W]`` to :meth:`compress`,
    ``reference=`` to :meth:`decompress`). Training takes clips ``[B, 3, T, H, W]``."""

    modality = "video"
    value_range = (0.0, 1.0)

    @classmethod
    def is_intra(cls, item: Item) -> bool:
        """Whether a coded frame (a container chunk's item) is an intra frame, which decodes alone;
        read from its streams, without weights (``lnc info`` asks too). A frame that is neither
        kind is a corrupt stream (``BitstreamError``)."""
        raise NotImplementedError
