"""Names → codec classes and shipped weights; saving and loading codecs as safetensors.

A weights file holds the state dict (transform weights in fp16, entropy models and gains in fp32, the
integer CDF tables included) and, in the safetensors metadata, the architecture name, its
constructor arguments as JSON and free-form provenance (training config, steps, data).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from lnc.codecs import weights_check
from lnc.codecs.base import MODALITIES, Codec
from lnc.entropy.errors import LncError, ModelMismatchError

ARCHITECTURES: dict[str, type[Codec]] = {}
"""Architecture name → codec class, filled by :func:`register` as the codec modules are imported
(``import lnc.codecs`` imports every family)."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "he2021-checkerboard-exact-vr"
DEFAULT_VIDEO_MODEL = "blockmc-residual-vr"
"""What ``lnc encode`` uses for a video when no model is given."""
CodecClass = TypeVar("CodecClass", bound=type[Codec])


def register(cls: CodecClass) -> CodecClass:
    """Class decorator: make ``cls`` loadable by its ``architecture`` name."""
    if getattr(cls, "modality", None) not in MODALITIES:
        raise TypeError(f"{cls.__name__}.modality must be one of {MODALITIES}")
    known = ARCHITECTURES.get(cls.architecture)
    if known is not None and known is not cls:
        raise TypeError(f"architecture {cls.architecture!r} is registered twice ({known.__name__}, {cls.__name__})")
    ARCHITECTURES[cls.architecture] = cls
    return cls


@dataclass(frozen=True)
class ModelInfo:
    """One loadable model: a shipped weights file."""

    name: str
    path: Path
    architecture: str
    config: dict
    metadata: dict


def build_codec(architecture: str, **kwargs) -> Codec:
    """A freshly initialised codec of a registered architecture (e.g. ``"mbt2018-mean"``)."""
    try:
        return ARCHITECTURES[architecture](**kwargs)
    except KeyError:
        raise LncError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}") from None


def weights_hash(data: bytes) -> bytes:
    """The 8-byte identity of a weights file that bitstreams carry (SHA-256 prefix)."""
    return hashlib.sha256(data).digest()[:8]


def save_codec(codec: Codec, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> bytes:
    """Write ``codec`` (tables built) to a safetensors file; returns its weights hash."""
    codec.update(force=False)
    tensors = {}
    for key, value in codec.state_dict().items():
        value = value.detach().cpu().contiguous()
        if value.is_floating_point():
            value = value.half() if key.startswith(codec.half_precision) else value.float()
        tensors[key] = value
    meta = {"lnc.architecture": codec.architecture, "lnc.config": json.dumps(codec.config)}
    meta.update(metadata or {})
    data = save_tensors(tensors, metadata=meta)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return weights_hash(data)


def _file_hash(path: Path) -> bytes:
    """:func:`weights_hash` of a file's bytes, read in pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.digest()[:8]


def load_codec_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> Codec:
    """Load a codec saved by :func:`save_codec`; ``codec.weights_hash`` identifies the file.

    The file is checked before anything big is built: its architecture must be registered, its
    ``lnc.config`` must give parameters of that architecture's constructor with values of their
    types (integers in ``0..weights_check.MAX_CONFIG_INT``), and its tensors must be those of that codec, with
    the same shapes (the entropy models' data-dependent tables excepted, which are bounded by
    :data:`weights_check.MAX_TABLE_ENTRIES`) and the same kind of values, compared with a skeleton of the codec
    built on the meta device; after loading, the CDF tables must be codable and the weights finite.
    Any failure is an :class:`LncError` naming the file. Shipped files (in :data:`WEIGHTS_DIR`, as
    trusted as the code) skip the skeleton, whose meta arithmetic costs torch seconds of imports, and
    are compared with the codec itself.
    """
    path = Path(path)
    where = str(path)
    file_hash = _file_hash(path)  # a missing or unreadable file raises its OSError here, as before
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            found = {}
            for key in f.keys():
                piece = f.get_slice(key)
                found[key] = (tuple(int(n) for n in piece.get_shape()), piece.get_dtype())
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise LncError(f"{where}: not a readable lnc weights file ({exc})") from None
    architecture = metadata.get("lnc.architecture")
    if architecture is None:
        raise LncError(f"{where}: safetensors file without lnc metadata (lnc.architecture)")
    cls = ARCHITECTURES.get(architecture)
    if cls is None:
        raise LncError(f"{where}: unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    config = weights_check.check_config(where, architecture, cls, metadata.get("lnc.config"))
    shipped = path.resolve().parent == WEIGHTS_DIR
    try:
        codec = cls(**config) if shipped else weights_check.meta_codec(cls, config)
    except Exception as exc:  # a constructor refusing a combination of values
        raise LncError(
            f"{where}: {architecture} cannot be built with lnc.config {json.dumps(config)} ({exc})"
        ) from None
    weights_check.check_tensors(where, codec, found)
    try:
        if not shipped:
            codec = cls(**config)
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        codec.load_state_dict(state)
    except Exception as exc:  # the file changed since it was checked, or memory ran out
        raise LncError(f"{where}: cannot load the weights ({exc})") from None
    weights_check.check_loaded(where, codec)
    codec.eval().to(device)
    codec.name = metadata.get("lnc.name", path.stem)
    codec.file_hash = file_hash
    codec.metadata = metadata
    return codec


def shipped_models() -> list[ModelInfo]:
    """The weights files that ship inside the package."""
    models = []
    for path in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        models.append(
            ModelInfo(
                name=path.stem,
                path=path,
                architecture=metadata.get("lnc.architecture", "?"),
                config=json.loads(metadata.get("lnc.config", "{}")),
                metadata=metadata,
            )
        )
    return models


def _shipped_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def resolve_model(name: str | os.PathLike | None, allow_path: bool = True) -> Path:
    """Path of a model given by shipped name (``None`` = the default) or, when ``allow_path``, by a
    file path (a name ending in ``.safetensors`` or holding a path separator)."""
    name = DEFAULT_MODEL if name is None else str(name)
    if name in _shipped_names():
        return WEIGHTS_DIR / f"{name}.safetensors"
    known = ", ".join(_shipped_names()) or "none"
    if not allow_path:
        raise LncError(f"{name!r} is not a shipped model; shipped models: {known}")
    if name.endswith(".safetensors") or os.sep in name or (os.altsep and os.altsep in name):
        return Path(name)
    raise LncError(f"unknown model {name!r}; shipped models: {known} (or give a .safetensors path)")


def load(name: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Codec:
    """Load a shipped model by name (``None`` = the default) or a weights file by path.

    Variable-rate models take their quality per call (``compress(x, quality)``), so one load serves
    every rate.
    """
    return load_codec_file(resolve_model(name), device=device)


def load_shipped(name: str, device: str | torch.device = "cpu", source: str = "the bitstream") -> Codec:
    """Load the shipped model ``name`` and nothing else: for names that come from data (a
    bitstream's header), which must never pick a file of their own."""
    if not isinstance(name, str) or name not in _shipped_names():
        raise LncError(f"{source} names model {name!r}, which is not a shipped model; give its weights with -m")
    return load_codec_file(WEIGHTS_DIR / f"{name}.safetensors", device=device)


def decoder_problem(name: str, digest: bytes, streams: Sequence[str]) -> str | None:
    """Why the shipped models cannot decode a file whose header names model ``name`` with weights
    ``digest`` and whose layout holds ``streams``; None when the shipped model of that name can.
    Reads the weights' metadata and hash only (what ``lnc info`` reports)."""
    model = next((m for m in shipped_models() if m.name == name), None)
    if model is None:
        return f"model {name!r} is not shipped; decoding needs its weights (-m)"
    if _file_hash(model.path) != digest:
        return f"weights {digest.hex()} are not those of the shipped {name!r}; decoding needs them (-m)"
    cls = ARCHITECTURES.get(model.architecture)
    if cls is None:
        return f"the shipped {name!r} has an unknown architecture {model.architecture!r}"
    return cls.layout_problem(streams)


def check_identity(codec: Codec, name: str, digest: bytes) -> None:
    """Raise unless a bitstream naming ``name``/``digest`` was written with ``codec``'s weights."""
    if digest != codec.weights_hash:
        raise ModelMismatchError(
            f"bitstream was written by model {name!r} (weights {digest.hex()}), "
            f"not by {codec.name!r} (weights {codec.weights_hash.hex()})"
        )
