"""lnc's codecs: transforms composed with latent codecs over the shared entropy models of ``lnc.entropy``.

Importing the package imports every codec family, so that each architecture is registered.
"""
from lnc.codecs import audio, image, video  # noqa: F401  (registers the architectures)
from lnc.codecs.base import Codec, Compressed, ImageCodec, Stream, VideoCodec
from lnc.codecs.compressai_compat import from_compressai
from lnc.codecs.registry import build_codec, load, load_codec_file, register, save_codec, shipped_models

__all__ = [
    "Codec",
    "Compressed",
    "ImageCodec",
    "Stream",
    "VideoCodec",
    "build_codec",
    "from_compressai",
    "load",
    "load_codec_file",
    "register",
    "save_codec",
    "shipped_models",
]
