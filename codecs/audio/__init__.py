"""Audio codecs: waveforms [B, C, T] in [-1, 1]."""
from lnc.codecs.audio.factorized import FactorizedPrior1d
from lnc.codecs.audio.rvq import ResidualVQSpeech
from lnc.codecs.audio.transform import MDCTHyperprior
from lnc.codecs.audio.walloc import WaLLoCStereo

__all__ = ["FactorizedPrior1d", "MDCTHyperprior", "ResidualVQSpeech", "WaLLoCStereo"]
