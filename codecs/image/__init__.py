"""Image codecs of the hyperprior family."""
from lnc.codecs.image.checkerboard import CheckerboardMeanScale
from lnc.codecs.image.factorized import FactorizedPrior
from lnc.codecs.image.hyperprior import MeanScaleHyperprior, ScaleHyperprior
from lnc.codecs.image.mlic import MLICPlusPlus
from lnc.codecs.image.shallow import ShallowJPEGLike, ShallowTwoLayer
from lnc.codecs.image.vq import VQGAN
from lnc.codecs.image.walloc import WaLLoC, WaLLoCFastHyperprior, WaLLoCHyperprior

__all__ = [
    "CheckerboardMeanScale", "FactorizedPrior", "MLICPlusPlus", "MeanScaleHyperprior", "ScaleHyperprior",
    "ShallowJPEGLike", "ShallowTwoLayer", "VQGAN", "WaLLoC", "WaLLoCFastHyperprior", "WaLLoCHyperprior",
]
