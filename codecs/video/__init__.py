"""Video codecs: intra frames by an image codec, predicted frames through motion and learned residuals."""
from lnc.codecs.video.p_frame import BlockMotionResidual

__all__ = ["BlockMotionResidual"]
