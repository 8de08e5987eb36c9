"""Names → codec classes and shipped weights; saving and loading codecs as safetensors.

A weights file holds the state dict (transform weights in fp16, entropy models and gains in fp32, the
integer CDF tables included) and, in the safetensors metadata, the architecture name, its
constructor arguments as JSON and free-form provenance (training config, steps, data).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from lnc.codecs.base import MODALITIES, Codec
from lnc.entropy.errors import LncError, ModelMismatchError

ARCHITECTURES: dict[str, type[Codec]] = {}
"""Architecture name → codec class, filled by :func:`register` as the codec modules are imported
(``import lnc.codecs`` imports every family)."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "he2021-checkerboard-vr"
# Weights whose name starts with one of these prefixes are stored in fp16: the big transforms and
# the context networks.
_HALF_PREFIXES = ("g_a.", "g_s.", "h_a.", "h_s.", "context_prediction.", "context_fusion.")


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
            value = value.half() if key.startswith(_HALF_PREFIXES) else value.float()
        tensors[key] = value
    meta = {"lnc.architecture": codec.architecture, "lnc.config": json.dumps(codec.config)}
    meta.update(metadata or {})
    data = save_tensors(tensors, metadata=meta)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return weights_hash(data)


def load_codec_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> Codec:
    """Load a codec saved by :func:`save_codec`; ``codec.weights_hash`` identifies the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise LncError(f"{path}: not a readable lnc weights file ({exc})") from None
    if "lnc.architecture" not in metadata:
        raise LncError(f"{path}: safetensors file without lnc metadata (lnc.architecture)")
    codec = build_codec(metadata["lnc.architecture"], **json.loads(metadata["lnc.config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    codec.load_state_dict(state)
    codec.eval().to(device)
    codec.name = metadata.get("lnc.name", path.stem)
    codec.file_hash = weights_hash(data)
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


def resolve_model(name: str | os.PathLike | None) -> Path:
    """Path of a model given by shipped name (``None`` = the default) or by a file path."""
    name = DEFAULT_MODEL if name is None else str(name)
    shipped = WEIGHTS_DIR / f"{name}.safetensors"
    if shipped.is_file():
        return shipped
    if name.endswith(".safetensors") or os.sep in name:
        return Path(name)
    known = ", ".join(m.name for m in shipped_models()) or "none"
    raise LncError(f"unknown model {name!r}; shipped models: {known} (or give a .safetensors path)")


def load(name: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Codec:
    """Load a shipped model by name (``None`` = the default) or a weights file by path.

    Variable-rate models take their quality per call (``compress(x, quality)``), so one load serves
    every rate.
    """
    return load_codec_file(resolve_model(name), device=device)


def check_identity(codec: Codec, name: str, digest: bytes) -> None:
    """Raise unless a bitstream naming ``name``/``digest`` was written with ``codec``'s weights."""
    if digest != codec.weights_hash:
        raise ModelMismatchError(
            f"bitstream was written by model {name!r} (weights {digest.hex()}), "
            f"not by {codec.name!r} (weights {codec.weights_hash.hex()})"
        )
