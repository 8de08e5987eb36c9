"""lnc's Lightning trainer: one rate–distortion LightningModule, data modules, losses, callbacks."""
from lnc.train.callbacks import EMA, PlotCurves, RealRate
from lnc.train.cli import LncCLI
from lnc.train.image_data import ImageFolderDataModule
from lnc.train.losses import RateDistortionLoss
from lnc.train.module import COMPRESSAI_MSE_LAMBDAS, RDModule, codec_from_checkpoint

__all__ = [
    "COMPRESSAI_MSE_LAMBDAS",
    "EMA",
    "ImageFolderDataModule",
    "LncCLI",
    "PlotCurves",
    "RDModule",
    "RateDistortionLoss",
    "RealRate",
    "codec_from_checkpoint",
]
