"""Checks of a weights file against the architecture it names, before and after anything is built.

A weights file is untrusted input: its ``lnc.config`` must give parameters of the architecture's
constructor with values of their types, its tensors must be those of that codec with the same shapes
(compared with a skeleton built on the meta device, so a tiny file cannot make lnc allocate
gigabytes), and after loading, its CDF tables must be codable and its weights finite. Every failure
is one :class:`~lnc.entropy.errors.LncError` naming the file.
"""
from __future__ import annotations

import inspect
import json
import math
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from lnc.codecs.base import Codec
from lnc.entropy import coder
from lnc.entropy.base import EntropyModel
from lnc.entropy.errors import LncError

MAX_CONFIG_INT = 65535
"""Largest integer a weights file's ``lnc.config`` may give (channels, rate points, codebook sizes,
which the range coder's 16-bit alphabet bounds): the files are checked before anything is built."""
MAX_TABLE_ENTRIES = 1 << 22
"""Most entries one data-dependent buffer of an entropy model (CDF table, scale table) may hold in a
weights file (4 Mi; the shipped models' largest has 0.2 Mi)."""


class _MetaInit(TorchFunctionMode):
    """Under ``torch.device("meta")``, for building a codec's skeleton: answer the scalar reads of
    meta tensors that constructors make (e.g. ``float(buffer)`` while initialising a parameter)
    with a placeholder instead of failing, and skip random initialisation, which changes values
    only and whose meta implementation would import half of torch's compiler stack (seconds).
    The placeholders only ever reach values, which a meta tensor does not have."""

    _SCALAR_READS = frozenset(
        {
            torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__,
            torch.Tensor.__bool__,
        }
    )
    _RANDOM_FILLS = frozenset(
        {
            torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.bernoulli_, torch.Tensor.random_,
            torch.Tensor.exponential_, torch.Tensor.log_normal_, torch.Tensor.cauchy_, torch.Tensor.geometric_,
        }
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # The tensor operated on: the first argument, or the keyword ``tensor`` of torch.nn.init's functions.
        target = args[0] if args else kwargs.get("tensor", kwargs.get("self"))
        if isinstance(target, torch.Tensor) and target.is_meta:
            if func in self._SCALAR_READS:
                if func is torch.Tensor.__bool__ or target.dtype == torch.bool:
                    return True
                if func is torch.Tensor.__float__ or (func is torch.Tensor.item and target.is_floating_point()):
                    return 1.0
                return 1
            if func in self._RANDOM_FILLS or getattr(func, "__module__", None) == "torch.nn.init":
                return target
        return func(*args, **kwargs)


def meta_codec(cls: type[Codec], config: dict[str, Any]) -> Codec:
    """``cls(**config)`` on the meta device: every shape and dtype, no memory for the values."""
    with torch.device("meta"), _MetaInit():
        return cls(**config)


MAX_CONFIG_LIST = 64
"""Longest list of integers a config may hold (channel widths, codebook sizes)."""


class _Integers(tuple):
    """The config type of a parameter annotated ``Sequence[int]`` or ``list[int]``: a JSON list of
    integers in ``0..MAX_CONFIG_INT``, at most ``MAX_CONFIG_LIST`` of them."""


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             _Integers: f"a list of at most {MAX_CONFIG_LIST} integers"}
    return names.get(type(value), type(value).__name__)


def _parameter_types(cls: type[Codec]) -> dict[str, tuple[type, Any]]:
    """``__init__`` parameter → (its Python type as its default or annotation says, its default);
    parameters of another type (or of none known) map to ``object``, which no file may set."""
    names = {"bool": bool, "int": int, "float": float, "str": str, "Sequence[int]": _Integers, "list[int]": _Integers}
    out = {}
    for name, p in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind: type = object
        if p.default is not p.empty and type(p.default) in (bool, int, float, str):
            kind = type(p.default)
        elif isinstance(p.annotation, str) and p.annotation in names:
            kind = names[p.annotation]
        elif p.annotation in (bool, int, float, str):
            kind = p.annotation
        out[name] = (kind, p.default)
    return out


def check_config(where: str, architecture: str, cls: type[Codec], text: str | None) -> dict[str, Any]:
    """The constructor arguments of ``lnc.config``, checked against ``cls.__init__``'s signature."""
    if text is None:
        raise LncError(f"{where}: no lnc.config metadata (the constructor arguments of {architecture})")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise LncError(f"{where}: lnc.config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise LncError(f"{where}: lnc.config must be a JSON object, got {_json_type(config)}")
    params = _parameter_types(cls)
    for key, value in config.items():
        if key not in params:
            raise LncError(
                f"{where}: lnc.config sets {key!r}, which is not a parameter of {architecture} "
                f"(its parameters: {', '.join(params)})"
            )
        kind = params[key][0]
        ok = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
            _Integers: isinstance(value, list) and len(value) <= MAX_CONFIG_LIST and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_CONFIG_INT for v in value),
        }.get(kind, False)
        if not ok:
            wanted = "a value lnc can check" if kind is object else _json_type(kind())
            raise LncError(f"{where}: lnc.config {key!r} must be {wanted}, got {json.dumps(value)[:40]}")
        if kind is int and not 0 <= value <= MAX_CONFIG_INT:
            raise LncError(f"{where}: lnc.config {key!r} = {value} is outside 0..{MAX_CONFIG_INT}")
        if kind is float and not math.isfinite(value):
            raise LncError(f"{where}: lnc.config {key!r} must be finite, got {value}")
    missing = [k for k, (_, default) in params.items() if default is inspect.Parameter.empty and k not in config]
    if missing:
        raise LncError(f"{where}: lnc.config lacks {', '.join(map(repr, missing))}, needed by {architecture}")
    return config


def _dtype_kind(dtype: str | torch.dtype) -> str:
    """``"float"``, ``"int"``, ``"bool"`` or ``"other"`` for a safetensors dtype name or a torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.bool:
            return "bool"
        if dtype.is_floating_point:
            return "float"
        return "other" if dtype.is_complex else "int"
    if dtype == "BOOL":
        return "bool"
    if dtype.startswith(("F", "BF")):
        return "float"
    return "int" if dtype.startswith(("I", "U")) else "other"


def _names(keys: list[str] | set[str], last: set[str] = frozenset(), limit: int = 3) -> str:
    """Up to ``limit`` of ``keys``, sorted, those in ``last`` (entropy tables) after the others."""
    keys = sorted(keys, key=lambda k: (k in last, k))
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_tensors(where: str, codec: Codec, found: dict[str, tuple[tuple[int, ...], str]]) -> None:
    """Compare a file's tensors (name → shape, dtype name) to the state dict of ``codec`` (on meta)."""
    expected = {k: (tuple(v.shape), v.dtype) for k, v in codec.state_dict().items()}
    tables = {
        f"{prefix}.{name}" if prefix else name
        for prefix, module in codec.named_modules()
        if isinstance(module, EntropyModel)
        for name in module._table_buffers
    }
    what = f"{codec.architecture} {json.dumps(codec.config)}"
    missing = expected.keys() - found.keys()
    if missing:
        raise LncError(
            f"{where}: missing {len(missing)} of the {len(expected)} tensors of {what}: {_names(missing, tables)}"
        )
    unexpected = found.keys() - expected.keys()
    if unexpected:
        raise LncError(f"{where}: tensors that {what} does not have: {_names(unexpected)}")
    for key, (shape, dtype) in expected.items():
        file_shape, file_dtype = found[key]
        if _dtype_kind(file_dtype) != _dtype_kind(dtype):
            raise LncError(f"{where}: tensor {key} is {file_dtype}, expected {_dtype_kind(dtype)} values")
        if key in tables:
            entries = math.prod(file_shape)
            if len(file_shape) > 2 or entries > MAX_TABLE_ENTRIES:
                raise LncError(
                    f"{where}: table {key} of shape {list(file_shape)} is implausible "
                    f"(at most 2-D and {MAX_TABLE_ENTRIES} entries)"
                )
        elif file_shape != shape:
            raise LncError(f"{where}: tensor {key} has shape {list(file_shape)}, {what} expects {list(shape)}")


def check_loaded(where: str, codec: Codec) -> None:
    """Values a loaded codec relies on: finite floats, codable CDF tables, a scale table per CDF."""
    for key, value in codec.state_dict().items():
        if value.is_floating_point() and not np.isfinite(value.detach().float().numpy()).all():
            raise LncError(f"{where}: tensor {key} holds non-finite values")
    for prefix, module in codec.named_modules():
        if not isinstance(module, EntropyModel):
            continue
        name = prefix or type(module).__name__
        try:
            cdf, lengths, offsets = module._coder_tables()
        except RuntimeError as exc:  # no tables, or tables whose sizes disagree
            raise LncError(f"{where}: entropy model {name}: {exc}") from None
        empty = np.empty(0, dtype=np.int32)
        try:  # the range coder checks every table before coding (here: nothing)
            coder.encode_with_indexes(empty, empty, cdf, lengths, offsets, module.precision)
        except ValueError as exc:
            raise LncError(f"{where}: entropy model {name} has invalid CDF tables ({exc})") from None
        scale_table = getattr(module, "scale_table", None)
        if isinstance(scale_table, torch.Tensor):
            per_scale = max(getattr(module, "mean_offsets", 0), 1)  # tables per scale
            if scale_table.dim() != 1 or scale_table.numel() * per_scale != len(cdf):
                raise LncError(
                    f"{where}: entropy model {name} has a scale table of shape {list(scale_table.shape)} "
                    f"for {len(cdf)} CDF tables ({per_scale} per scale)"
                )
            if bool((scale_table <= 0).any()) or bool((scale_table[1:] < scale_table[:-1]).any()):
                raise LncError(f"{where}: entropy model {name} has a scale table that is not positive and increasing")
