"""The base of lnc's entropy models: quantisation, likelihood bound, integer CDF tables, coding.

An entropy model has two lives. While training, ``forward`` returns a differentiable proxy of the
quantised values (additive uniform noise, Ballé et al. 2017, arXiv:1611.01704, straight-through
rounding, Theis et al. 2017, arXiv:1703.00395, or stochastic Gumbel annealing, Yang, Bamler & Mandt
2020, arXiv:2006.04240) and their likelihoods, whose ``-log2`` is the rate.
For coding, ``update()`` freezes the model into integer CDF tables (CompressAI's buffers
``_quantized_cdf``, ``_cdf_length``, ``_offset``), and ``compress``/``decompress`` run them through
the range coder of :mod:`lnc.entropy.coder`, one independent stream per batch item, coded in
parallel threads; ``compress_into``/``decompress_from`` append to and read from incremental
encoders and decoders instead, so that several coding passes share one stream.

Each table ``i`` covers the symbols ``offset[i] .. offset[i] + cdf_length[i] - 3``; its last
symbol is the escape through which the coder sends any value outside that range, so every int32
round-trips. The escape's probability is the tail mass of the distribution outside the range.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from lnc.entropy import coder
from lnc.entropy.bound_ops import LowerBound

QUANTIZATION_MODES = ("noise", "ste", "sga", "dequantize", "symbols")
TRAINING_QUANTIZATIONS = ("noise", "ste", "sga")
Tables = tuple[np.ndarray, np.ndarray, np.ndarray]
"""CDF tables as the coder takes them: int32 ``cdf [T, L]``, ``cdf_length [T]``, ``offset [T]``."""


def annealed_round(centered: Tensor, temperature: float) -> Tensor:
    """Stochastic Gumbel annealing (Yang, Bamler & Mandt 2020, arXiv:2006.04240, eq. 8): a soft,
    random choice between ``floor(v)`` and ``floor(v) + 1``, the nearer one the likelier, with a
    gradient for both the value and its distance to them. As ``temperature`` falls to 0 it becomes
    rounding, so an optimiser can walk a latent across a rounding boundary that straight-through
    rounding never sees."""
    lower = torch.floor(centered).detach()
    frac = (centered - lower).clamp(1e-5, 1 - 1e-5)
    # Two-way Gumbel-softmax: the difference of two Gumbel variables is logistic.
    u = torch.rand_like(frac).clamp_(1e-6, 1 - 1e-6)
    logits = (torch.atanh(frac) - torch.atanh(1 - frac)) / temperature
    return lower + torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)


def _float32(value: Any) -> Any:
    """``value`` as float32 when it is a half-precision tensor, else unchanged."""
    if isinstance(value, Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


class EntropyModel(nn.Module):
    """Base of every entropy model: subclasses define ``forward`` and ``update``.

    Args:
        likelihood_bound: likelihoods are bounded below by this (0 disables the bound), so that
            the rate of a badly predicted value stays finite.
        precision: bits of the integer CDF tables (the range coder's total frequency is
            ``2**precision``).
        training_quantization: what ``forward`` does in training mode, ``"noise"`` (additive
            uniform noise in ``[-0.5, 0.5)``), ``"ste"`` (rounding with a straight-through
            gradient) or ``"sga"`` (:func:`annealed_round` at ``sga_temperature``, what the
            encoder's latent refinement uses). Evaluation always rounds.
    """

    _table_buffers: ClassVar[tuple[str, ...]] = ("_offset", "_quantized_cdf", "_cdf_length")
    """Buffers whose size depends on the data; loading a state dict resizes them first."""

    _offset: Tensor
    _quantized_cdf: Tensor
    _cdf_length: Tensor

    def __init__(
        self,
        likelihood_bound: float = 1e-9,
        precision: int = 16,
        training_quantization: str = "noise",
    ) -> None:
        super().__init__()
        self.precision = int(precision)
        self.training_quantization = training_quantization
        self.sga_temperature = 0.5
        self.use_likelihood_bound = likelihood_bound > 0
        if self.use_likelihood_bound:
            self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.register_buffer("_offset", torch.IntTensor())
        self.register_buffer("_quantized_cdf", torch.IntTensor())
        self.register_buffer("_cdf_length", torch.IntTensor())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Every entropy model computes in float32, outside any autocast: under bf16 the
        likelihoods would come out of 8-bit-mantissa matmuls and sigmoids, and −log2 p of small
        probabilities, i.e. the rate, would be badly wrong. Half-precision inputs are promoted."""
        device = next((v.device.type for v in (*args, *kwargs.values()) if isinstance(v, Tensor)), "cpu")
        with torch.autocast(device, enabled=False):
            return super().__call__(*map(_float32, args), **{k: _float32(v) for k, v in kwargs.items()})

    @property
    def training_quantization(self) -> str:
        """Quantisation proxy of training mode: ``"noise"``, ``"ste"`` or ``"sga"``."""
        return self._training_quantization

    @training_quantization.setter
    def training_quantization(self, mode: str) -> None:
        if mode not in TRAINING_QUANTIZATIONS:
            raise ValueError(f"training_quantization must be one of {TRAINING_QUANTIZATIONS}, got {mode!r}")
        self._training_quantization = mode

    def forward_mode(self, training: bool | None = None) -> str:
        """The :meth:`quantize` mode of ``forward``: the training proxy, or rounding in evaluation."""
        if training is None:
            training = self.training
        return self.training_quantization if training else "dequantize"

    def update(self, force: bool = False) -> bool:
        """Build the integer CDF tables; returns False (and does nothing) when they already exist
        and ``force`` is not set."""
        raise NotImplementedError

    @property
    def has_tables(self) -> bool:
        """Whether :meth:`update` (or a loaded state dict) has provided the CDF tables."""
        return self._quantized_cdf.numel() > 0

    # -- quantisation ---------------------------------------------------------------------------

    def quantize(self, inputs: Tensor, mode: str, means: Tensor | None = None) -> Tensor:
        """Quantise ``inputs`` around ``means`` (rounding ``inputs - centres(means)``).

        Modes: ``"noise"`` adds uniform noise in ``[-0.5, 0.5)`` (the means do not matter),
        ``"ste"`` rounds with an identity gradient, ``"sga"`` rounds softly at this model's
        ``sga_temperature``, ``"dequantize"`` rounds and returns floats, ``"symbols"`` returns the
        rounded ``inputs - means`` as int32.
        """
        if mode not in QUANTIZATION_MODES:
            raise ValueError(f"quantization mode must be one of {QUANTIZATION_MODES}, got {mode!r}")
        if mode == "noise":
            return inputs + torch.empty_like(inputs).uniform_(-0.5, 0.5)
        means = self.centres(means)
        centered = inputs - means if means is not None else inputs
        if mode == "symbols":
            return torch.round(centered).to(torch.int32)
        if mode == "ste":
            rounded = centered + (torch.round(centered) - centered).detach()
        elif mode == "sga":
            rounded = annealed_round(centered, self.sga_temperature)
        else:
            rounded = torch.round(centered)
        return rounded + means if means is not None else rounded

    def centres(self, means: Tensor | None) -> Tensor | None:
        """The values that quantisation rounds around for predicted ``means``: the means themselves
        here; a model may move them to a grid (see :class:`~lnc.entropy.gaussian.LocationScaleConditional`)."""
        return means

    def dequantize(self, symbols: Tensor, means: Tensor | None = None, dtype: torch.dtype = torch.float) -> Tensor:
        """Symbols back to values: ``symbols + centres(means)`` (in the means' dtype) or ``symbols`` as ``dtype``."""
        if means is not None:
            return symbols.to(means.dtype) + self.centres(means)
        return symbols.to(dtype)

    def bound_likelihood(self, likelihood: Tensor) -> Tensor:
        """Apply the likelihood lower bound, if any."""
        return self.likelihood_lower_bound(likelihood) if self.use_likelihood_bound else likelihood

    # -- CDF tables -----------------------------------------------------------------------------

    def _set_tables(self, pmf: Tensor, tail_mass: Tensor, pmf_length: Tensor, offset: Tensor) -> None:
        """Quantise the pmfs into the CDF tables.

        ``pmf`` is ``[N, L]`` (row ``i`` valid up to ``pmf_length[i]``), ``tail_mass`` ``[N]`` the
        probability outside each row's range, which becomes the escape symbol; ``offset[i]`` is
        the value of row ``i``'s first symbol. Rows of one length are quantised in one call.
        """
        pmf_np = pmf.detach().to("cpu", torch.float64).numpy()
        tail_np = tail_mass.detach().to("cpu", torch.float64).reshape(-1).numpy()
        lengths = pmf_length.detach().to("cpu", torch.int64).reshape(-1).numpy()
        cdf = np.zeros((len(lengths), int(lengths.max()) + 2), dtype=np.int32)
        for n in np.unique(lengths):
            rows = np.flatnonzero(lengths == n)
            probs = np.concatenate([pmf_np[rows, :n], tail_np[rows, None]], axis=1)
            cdf[rows, : n + 2] = coder.pmf_to_quantized_cdf(probs, self.precision)
        device = self._quantized_cdf.device
        self._quantized_cdf = torch.from_numpy(cdf).to(device)
        self._cdf_length = torch.from_numpy(lengths + 2).to(device, torch.int32)
        self._offset = offset.detach().to(device, torch.int32).reshape(-1).clone()

    def _coder_tables(self) -> Tables:
        """The tables as contiguous int32 arrays for the coder; an error if there are none."""
        if not self.has_tables:
            raise RuntimeError(f"{type(self).__name__} has no CDF tables: call update() before coding")
        cdf, lengths, offsets = self._quantized_cdf, self._cdf_length, self._offset
        if cdf.dim() != 2 or lengths.shape != (cdf.size(0),) or offsets.shape != (cdf.size(0),):
            raise RuntimeError(
                f"inconsistent CDF tables: cdf {tuple(cdf.shape)}, lengths {tuple(lengths.shape)}, "
                f"offsets {tuple(offsets.shape)}"
            )
        return tuple(t.detach().to("cpu", torch.int32).contiguous().numpy() for t in (cdf, lengths, offsets))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The tables' sizes depend on the trained model: take the saved sizes before copying.
        for name in self._table_buffers:
            saved = state_dict.get(prefix + name)
            buffer = getattr(self, name)
            if saved is not None and saved.shape != buffer.shape:
                setattr(self, name, torch.empty(saved.shape, dtype=buffer.dtype, device=buffer.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- coding ---------------------------------------------------------------------------------

    def _stream_indexes(self, indexes: Tensor, n_tables: int) -> np.ndarray:
        """``indexes`` as an int32 array ``[batch, -1]``, checked against the number of tables."""
        if indexes.dim() < 1:
            raise ValueError("indexes need a leading batch dimension")
        flat = indexes.detach().to("cpu", torch.int32).reshape(indexes.size(0), -1).contiguous()
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= n_tables):
            raise ValueError(f"table indexes must lie in [0, {n_tables}), got [{int(flat.min())}, {int(flat.max())}]")
        return flat.numpy()

    def append_symbols(
        self, encoders: Sequence[coder.RangeEncoder], symbols: Tensor, indexes: Tensor, tables: Tables | None = None
    ) -> None:
        """Append integer ``symbols`` coded with the tables ``indexes`` (same shape, batch first) to
        the encoder of each batch item, in parallel threads. Several calls build one stream of
        several coding passes (checkerboard halves, channel groups, frames). ``tables`` replaces the
        model's own (tables computed for this call, e.g. per symbol from a context)."""
        if symbols.shape != indexes.shape:
            raise ValueError(f"symbols {tuple(symbols.shape)} and indexes {tuple(indexes.shape)} differ in shape")
        if indexes.dim() < 1 or len(encoders) != indexes.size(0):
            raise ValueError(f"{len(encoders)} encoders for a batch of shape {tuple(indexes.shape)}")
        cdf, lengths, offsets = tables or self._coder_tables()
        idx = self._stream_indexes(indexes, len(cdf))
        sym = symbols.detach().to("cpu", torch.int32).reshape(idx.shape).contiguous().numpy()
        coder.encode_into(list(encoders), list(zip(sym, idx)), cdf, lengths, offsets, precision=self.precision)

    def read_symbols(
        self, decoders: Sequence[coder.RangeDecoder], indexes: Tensor, tables: Tables | None = None
    ) -> Tensor:
        """Inverse of :meth:`append_symbols`: int32 symbols shaped like ``indexes``, on its device."""
        if indexes.dim() < 1 or len(decoders) != indexes.size(0):
            raise ValueError(f"{len(decoders)} decoders for indexes of shape {tuple(indexes.shape)}")
        cdf, lengths, offsets = tables or self._coder_tables()
        idx = self._stream_indexes(indexes, len(cdf))
        values = coder.decode_from(list(decoders), list(idx), cdf, lengths, offsets, precision=self.precision)
        symbols = torch.from_numpy(np.stack(values)) if values else torch.empty(idx.shape, dtype=torch.int32)
        return symbols.reshape(indexes.shape).to(indexes.device)

    def encode_symbols(self, symbols: Tensor, indexes: Tensor) -> list[bytes]:
        """:meth:`append_symbols` into fresh encoders: one finished string per batch item."""
        encoders = [coder.RangeEncoder() for _ in range(indexes.size(0) if indexes.dim() else 0)]
        self.append_symbols(encoders, symbols, indexes)
        return [encoder.flush() for encoder in encoders]

    def decode_symbols(self, strings: Sequence[bytes], indexes: Tensor) -> Tensor:
        """Inverse of :meth:`encode_symbols`; each string must be read to its last byte."""
        if not isinstance(strings, (list, tuple)):
            raise ValueError(f"strings must be a list of bytes, got {type(strings).__name__}")
        decoders = [coder.RangeDecoder(s) for s in strings]
        symbols = self.read_symbols(decoders, indexes)
        for decoder in decoders:
            decoder.finish()
        return symbols

    def compress_into(
        self, encoders: Sequence[coder.RangeEncoder], inputs: Tensor, indexes: Tensor, means: Tensor | None = None
    ) -> Tensor:
        """Round ``inputs - means``, append it to each batch item's encoder with the tables
        ``indexes``, and return the values the decoder will reconstruct."""
        symbols = self.quantize(inputs, "symbols", means)
        self.append_symbols(encoders, symbols, indexes)
        return self.dequantize(symbols, means, inputs.dtype)

    def decompress_from(
        self,
        decoders: Sequence[coder.RangeDecoder],
        indexes: Tensor,
        dtype: torch.dtype = torch.float,
        means: Tensor | None = None,
    ) -> Tensor:
        """Inverse of :meth:`compress_into`: the dequantised values, shaped like ``indexes``."""
        return self.dequantize(self.read_symbols(decoders, indexes), means, dtype)

    def compress(self, inputs: Tensor, indexes: Tensor, means: Tensor | None = None) -> list[bytes]:
        """Round ``inputs - means`` and code it with the tables ``indexes``: one string per batch item."""
        return self.encode_symbols(self.quantize(inputs, "symbols", means), indexes)

    def decompress(
        self,
        strings: Sequence[bytes],
        indexes: Tensor,
        dtype: torch.dtype = torch.float,
        means: Tensor | None = None,
    ) -> Tensor:
        """Inverse of :meth:`compress`: the dequantised values, shaped like ``indexes``."""
        return self.dequantize(self.decode_symbols(strings, indexes), means, dtype)
