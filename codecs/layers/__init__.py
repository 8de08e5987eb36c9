"""Layers shared by every codec, written once for 1-D, 2-D and 3-D signals where the code is the same."""
from lnc.codecs.layers.conv import conv, deconv
from lnc.codecs.layers.gain import GainUnit, apply_gain
from lnc.codecs.layers.gdn import GDN, NonNegative

__all__ = ["GDN", "GainUnit", "NonNegative", "apply_gain", "conv", "deconv"]
