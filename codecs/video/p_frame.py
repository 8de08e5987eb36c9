"""A P-frame video codec: intra frames by lnc's image codec, predicted frames by block motion
compensation and a learned residual codec.

The hybrid of classical codecs with learned parts where learning pays most, after Duong et al.
("Multi-rate adaptive transform coding for video compression", ICASSP 2023, arXiv:2210.14308),
who keep a classical codec's prediction and replace its residual transforms and entropy coding by
learned, rate-conditioned ones::

    intra frame:  x ─► he2021-checkerboard (the shipped image codec) ─► x̂
    P frame:      x, x̂_ref ─► block motion search ─► vectors ─► MotionVectorLatentCodec ─► "mv"
                  x̂_ref, vectors ─► overlapped block compensation ─► x̃
                  x − x̃ + ½ ─► he2021-checkerboard (residual weights) ─► r̂ ;  x̂ = x̃ + r̂ − ½

Both image codecs are the checkerboard mean-scale hyperprior of lnc's image path, with its gains:
one ``quality`` sets the intra, residual and motion rate together. The residual codec starts from
the trained image weights (``lnc train --model.init_weights he2021-checkerboard-exact-vr``) and
learns residuals on clips unrolled over their own reconstructions; the intra codec stays the image
model. Every coded frame is a container chunk with the streams ``iz``, ``iy`` (intra) or ``mv``,
``rz``, ``ry`` (predicted); the other streams of the frame are empty, which is how a decoder tells
the frame types apart. The intra model is not copied into the video weights: they name it and pin
its weights hash.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from lnc.codecs.base import Decoders, Encoders, VideoCodec
from lnc.codecs.image.checkerboard import CheckerboardMeanScale
from lnc.codecs.latent.motion import MotionVectorLatentCodec, laplace_logits
from lnc.codecs.layers.gain import COMPRESSAI_MSE_LAMBDAS
from lnc.codecs.layers.motion import QUARTER, compensate, estimate_motion
from lnc.codecs.registry import register
from lnc.entropy.categorical import CategoricalModel
from lnc.entropy.chunked import Item
from lnc.entropy.errors import BitstreamError, LncError, ModelMismatchError

RESIDUAL_OFFSET = 0.5
"""Residuals are coded around mid-grey, where the image codec they start from works."""
INTRA_STREAMS = {"iz": "z", "iy": "y"}
RESIDUAL_STREAMS = {"rz": "z", "ry": "y"}


def _renamed(coders: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The coders of a part codec under the stream names it knows (``iy`` → ``y``)."""
    return {inner: coders[outer] for outer, inner in names.items()}


@register
class BlockMotionResidual(VideoCodec):
    """Intra frames, block motion and learned residuals (module docstring).

    Args:
        N, M: channels of the image codecs' hyper latent and latent (those of the weights they
            start from).
        rate_points: rate points of all three parts together.
        search: the motion search range in pixels (vectors within ±``search``).
        exact_entropy: the image codecs' entropy parameters on the exact path (as the shipped
            image default), so every machine selects the encoder's tables.
        mixed_quantization: the residual synthesis learns on rounded latents (straight-through).
        intra_model: the shipped image model of the intra frames (a ``he2021-checkerboard`` with
            the same rate points).
    """

    architecture = "blockmc-residual"
    block = 16
    """Motion block side in pixels."""
    stream_strides = {"iz": 64, "iy": 16, "mv": 16, "rz": 64, "ry": 16}
    half_precision = tuple(f"residual.{prefix}" for prefix in CheckerboardMeanScale.half_precision)
    numeric_options = ("exact_entropy",)
    grows_from = {"he2021-checkerboard": ("motion", "intra_hash")}
    grown_options = ("search", "intra_model")

    def __init__(
        self, N: int = 64, M: int = 128, rate_points: int = 8, search: int = 32, exact_entropy: bool = True,
        mixed_quantization: bool = False, intra_model: str = "he2021-checkerboard-exact-vr",
    ) -> None:
        super().__init__(rate_points)
        if not 1 <= rate_points <= len(COMPRESSAI_MSE_LAMBDAS):
            raise ValueError(f"rate_points must be 1..{len(COMPRESSAI_MSE_LAMBDAS)}")
        if search < self.block or search % self.block:
            raise ValueError(f"search must be a positive multiple of {self.block}")
        self.config.update(N=N, M=M, search=search, intra_model=intra_model)
        if exact_entropy:
            self.config.update(exact_entropy=True)
        self.search = search
        self.intra_model = intra_model
        self._intra: list[CheckerboardMeanScale] = []  # a list: the shipped model is not a submodule
        self.register_buffer("intra_hash", torch.zeros(8, dtype=torch.uint8))
        self.residual = CheckerboardMeanScale(N, M, rate_points, mixed_quantization, exact_entropy)
        reach = 2 * search * QUARTER
        self.motion_prior = CategoricalModel(2 * reach + 1, 2 * rate_points)
        with torch.no_grad():
            self.motion_prior.logits.copy_(laplace_logits(2 * rate_points, reach, spread=2.0))
        self.motion = MotionVectorLatentCodec(self.motion_prior, reach, rate_points)
        self.register_buffer("motion_lambdas", torch.tensor(COMPRESSAI_MSE_LAMBDAS[-rate_points:]))

    @property
    def intra(self) -> CheckerboardMeanScale:
        """The shipped image model that codes the intra frames, loaded on first use by name (never a
        path) and pinned by its weights hash: the hash of the first one loaded is kept with these
        weights, and a later load of other weights under that name is refused. Not a submodule, so
        the video weights stay small and video training leaves it as it is."""
        if not self._intra:
            from lnc.codecs.registry import load_shipped

            with torch.inference_mode(False):  # plain tensors, whatever mode the first frame is coded in
                codec = load_shipped(self.intra_model, source=f"the {self.architecture} weights")
            if codec.architecture != "he2021-checkerboard" or codec.rate_points != self.rate_points:
                raise ModelMismatchError(f"{self.intra_model} is not a {self.rate_points}-point he2021-checkerboard model")
            pinned = bytes(self.intra_hash.tolist())
            if any(pinned) and pinned != codec.weights_hash:
                raise ModelMismatchError(
                    f"{self.intra_model} has weights {codec.weights_hash.hex()}, these video weights were "
                    f"trained with {pinned.hex()}")
            self.intra_hash.copy_(torch.tensor(list(codec.weights_hash), dtype=torch.uint8))
            codec.requires_grad_(False)
            self._intra.append(codec.eval())
        return self._intra[0].to(self.intra_hash.device)

    def adopt_state(self, architecture: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """Image weights become the residual codec's."""
        if architecture != "he2021-checkerboard":
            return state
        return {f"residual.{key}": value for key, value in state.items()}

    @classmethod
    def is_intra(cls, item: Item) -> bool:
        intra = [bool(item.streams.get(name)) for name in INTRA_STREAMS]
        predicted = [bool(item.streams.get(name)) for name in ("mv", *RESIDUAL_STREAMS)]
        if all(intra) and not any(predicted):
            return True
        if all(predicted) and not any(intra):
            return False
        raise BitstreamError("a frame whose streams are neither an intra frame's nor a predicted frame's")

    # -- one frame ----------------------------------------------------------------------------------

    def _lambda(self, q: Tensor) -> Tensor:
        return self.motion_lambdas[(q.round().long() - 1).clamp(0, self.rate_points - 1)]

    def _motion(self, frame: Tensor, reference: Tensor, q: Tensor, rounds: int = 2) -> Tensor:
        return estimate_motion(frame, reference, self.block, self.search, self._lambda(q), self.motion.bits(q), rounds)

    def _predicted(self, frame: Tensor, reference: Tensor, q: Tensor, rounds: int = 2) -> tuple[Tensor, Tensor]:
        """Motion vectors and the compensated prediction of ``frame`` (``rounds`` of the search)."""
        vectors = self._motion(frame, reference, q, rounds)
        return vectors, compensate(reference, vectors, self.block)

    def analyse(self, x: Tensor, q: Tensor) -> dict[str, Tensor]:
        if x.shape[1] == 3:
            return {f"i{k}": v for k, v in self.intra.analyse(x, q).items()}
        if x.shape[1] != 6:
            raise LncError(f"a frame has 3 channels (intra) or 6 (with its reference), got {x.shape[1]}")
        frame, reference = x[:, :3], x[:, 3:]
        vectors, prediction = self._predicted(frame, reference, q)
        residual = self.residual.analyse(frame - prediction + RESIDUAL_OFFSET, q)
        return {"mv": vectors, **{f"r{k}": v for k, v in residual.items()}}

    def write_streams(self, latents: dict[str, Tensor], q: Tensor, encoders: Encoders) -> None:
        if "iy" in latents:
            self.intra.write_streams({"y": latents["iy"], "z": latents["iz"]}, q, _renamed(encoders, INTRA_STREAMS))
            return
        self.motion.compress(latents["mv"], q, encoders)
        self.residual.write_streams({"y": latents["ry"], "z": latents["rz"]}, q, _renamed(encoders, RESIDUAL_STREAMS))

    def read_streams(
        self, decoders: Decoders, shapes: Mapping[str, tuple[int, ...]], q: Tensor, reference: Tensor | None = None
    ) -> Tensor:
        if reference is None:
            return self.intra.read_streams(_renamed(decoders, INTRA_STREAMS), _renamed(shapes, INTRA_STREAMS), q)
        vectors = self.motion.decompress(decoders, shapes, q)
        prediction = compensate(reference, vectors, self.block)
        residual = self.residual.latent_codec.decompress(
            _renamed(decoders, RESIDUAL_STREAMS), _renamed(shapes, RESIDUAL_STREAMS), q)
        return (prediction + self.residual._synthesise(residual, q) - RESIDUAL_OFFSET).clamp_(*self.value_range)

    # -- training -------------------------------------------------------------------------------------

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> dict[str, Any]:
        """A clip ``[B, 3, T, H, W]``: the first frame coded intra (no gradient), each later one
        predicted from the reconstruction before it. ``x_hat`` and ``target`` are the predicted
        frames ``[B, 3, T − 1, H, W]``; the likelihoods are theirs (motion and residual)."""
        if x.dim() != 5 or x.shape[2] < 2:
            raise LncError(f"training takes clips [B, 3, T ≥ 2, H, W], got {tuple(x.shape)}")
        q = self.quality_tensor(quality, x.shape[0], x.device)
        with torch.no_grad():
            reference = self.intra(x[:, :, 0], q)["x_hat"].clamp(0, 1)
        frames, likelihoods = [], {"mv": [], "rz": [], "ry": []}
        for t in range(1, x.shape[2]):
            frame = x[:, :, t]
            # One round of the search in training, which it costs a third of: the residuals differ little.
            vectors, prediction = self._predicted(frame, reference, q, rounds=1)
            _, motion = self.motion(vectors, q)
            out = self.residual(frame - prediction + RESIDUAL_OFFSET, q)
            x_hat = prediction + out["x_hat"] - RESIDUAL_OFFSET
            frames.append(x_hat)
            likelihoods["mv"].append(motion["mv"].flatten(1))
            likelihoods["rz"].append(out["likelihoods"]["z"].flatten(1))
            likelihoods["ry"].append(out["likelihoods"]["y"].flatten(1))
            reference = x_hat.detach().clamp(0, 1)
        return {
            "x_hat": torch.stack(frames, dim=2),
            "target": x[:, :, 1:],
            "likelihoods": {name: torch.cat(parts, dim=1) for name, parts in likelihoods.items()},
        }
