"""Audio codecs: waveforms [B, C, T] in [-1, 1]."""
from lnc.codecs.audio.factorized import FactorizedPrior1d
from lnc.codecs.audio.walloc import WaLLoCStereo

__all__ = ["FactorizedPrior1d", "WaLLoCStereo"]
