"""What every modality's pipeline shares: the quality a file records, checking that a codec may
decode a file, and padding sizes to the codec's downsampling."""
from __future__ import annotations

import numpy as np
import torch

from lnc.codecs.base import Codec
from lnc.codecs.registry import check_identity
from lnc.entropy.chunked import ChunkReader
from lnc.entropy.errors import BitstreamError, LncError


def checked_quality(codec: Codec, quality: float | None) -> float:
    """The quality to code with: the codec's default when None, rounded to the float32 that the
    header stores (so the encoder codes with exactly what the decoder reads), range-checked."""
    q = codec.default_quality if quality is None else float(quality)
    codec.quality_tensor(q, 1, torch.device("cpu"))  # finite and in range, before narrowing to float32
    if abs(q) > float(np.finfo(np.float32).max):
        raise LncError(f"quality {q:g} does not fit the float32 a file stores")
    q = float(np.float32(q))
    codec.quality_tensor(q, 1, torch.device("cpu"))
    return q


def check_stream(reader: ChunkReader, codec: Codec) -> None:
    """Raise before any decoding unless ``codec`` wrote the file: modality, weights, stream layout."""
    modality = reader.header.modality.name.lower()
    if modality != codec.modality:
        raise BitstreamError(f"a {modality} bitstream cannot be decoded by the {codec.modality} codec {codec.name!r}")
    check_identity(codec, reader.header.codec, reader.header.weights_hash)
    codec.check_layout(reader.layout.streams)


def padded(size: int, multiple: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``."""
    return -(-size // multiple) * multiple
