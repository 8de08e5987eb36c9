"""Turn CompressAI zoo state dicts into lnc codecs.

lnc's layer and entropy-model names follow CompressAI's, so a ``bmshj2018-factorized``,
``bmshj2018-hyperprior`` or ``mbt2018-mean`` state dict loads unchanged once N and M are read off
the weight shapes.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from lnc.codecs.base import Codec
from lnc.codecs.registry import build_codec
from lnc.entropy.errors import LncError


def from_compressai(name: str, state_dict: Mapping[str, Tensor]) -> Codec:
    """The lnc codec equal to CompressAI's model ``name`` with weights ``state_dict``.

    Call ``update()`` on the result (or have built the tables in CompressAI before exporting) to
    compress.
    """
    try:
        N = state_dict["g_a.0.weight"].shape[0]
        M = state_dict["g_a.6.weight"].shape[0]
    except KeyError as exc:
        raise LncError(f"not a CompressAI {name} state dict: missing {exc.args[0]}") from None
    codec = build_codec(name, N=N, M=M)
    codec.load_state_dict(dict(state_dict))
    return codec.eval()
