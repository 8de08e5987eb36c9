"""Audio codecs: waveforms [B, C, T] in [-1, 1]."""
from lnc.codecs.audio.factorized import FactorizedPrior1d

__all__ = ["FactorizedPrior1d"]
