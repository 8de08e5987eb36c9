"""lnc's codecs: transforms composed with the shared entropy models of ``lnc.entropy``."""
from lnc.codecs.base import ImageCodec
from lnc.codecs.compressai_compat import from_compressai
from lnc.codecs.registry import build_codec, load, load_codec_file, save_codec, shipped_models

__all__ = ["ImageCodec", "build_codec", "from_compressai", "load", "load_codec_file", "save_codec", "shipped_models"]
