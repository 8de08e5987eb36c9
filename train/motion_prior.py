"""Fit a video codec's motion-vector tables to the vectors its encoder chooses.

The tables of :class:`~lnc.codecs.latent.motion.MotionVectorLatentCodec` are categorical
distributions, one per rate point and component; their maximum-likelihood fit is a histogram of the
differences the encoder codes, which gradient steps on the logits approach slowly (and an exported
moving average more slowly still). So after training, the encoder's search runs on training clips
at every rate point, the differences are counted (plus a small count for every symbol),
and the tables become their frequencies; the search charges vectors by the tables, so this is
repeated ``rounds`` times. Only these tables change; decoders of older files need the old weights.

    python -m lnc.train.motion_prior WEIGHTS.safetensors -o OUT.safetensors
"""
from __future__ import annotations

import argparse
import json

import torch
from torch import Tensor

from lnc.codecs.layers.motion import median_of_above
from lnc.codecs.video import BlockMotionResidual
from lnc.train.video_data import VideoClips, load_sequences

SMOOTHING = 0.02
"""Added to every symbol's count: symbols never seen keep a little probability (the coder gives every
symbol at least 2⁻¹⁶ anyway), without taking much from the ones seen out of a 1,025-symbol alphabet."""
DEFAULT_SOURCES = ("train/video/vimeo_septuplet_subset", "train/video/pedestrians_720p_clip/vtest_h264_1280x720.avi")


@torch.no_grad()
def motion_counts(codec: BlockMotionResidual, pairs: Tensor, batch: int = 8) -> Tensor:
    """Counts ``[tables, symbols]`` of the differences the encoder codes for ``pairs``
    ``[N, 3, 2, H, W]`` (a reference frame coded intra, then the frame predicted from it) at every
    rate point."""
    counts = torch.zeros_like(codec.motion_prior.logits, dtype=torch.float64)
    for point in range(1, codec.rate_points + 1):
        for start in range(0, len(pairs), batch):
            clip = pairs[start : start + batch]
            q = torch.full((len(clip),), float(point))
            reference = codec.intra(clip[:, :, 0], q)["x_hat"].clamp(0, 1).mul(255).round().div(255)
            vectors = codec._motion(clip[:, :, 1], reference, q)
            symbols = vectors - median_of_above(vectors) + codec.motion.reach
            tables = codec.motion.table_indexes(q, tuple(vectors.shape))
            counts.index_put_((tables.flatten(), symbols.flatten()), torch.ones(symbols.numel(), dtype=torch.float64),
                              accumulate=True)
    return counts


def fit_motion_prior(codec: BlockMotionResidual, pairs: Tensor, rounds: int = 2) -> list[float]:
    """Set the codec's motion tables to the smoothed frequencies of :func:`motion_counts`,
    ``rounds`` times; returns the mean bits per vector after each round (the last table set's
    entropy on the last round's vectors)."""
    bits = []
    for _ in range(rounds):
        counts = motion_counts(codec, pairs) + SMOOTHING
        probs = counts / counts.sum(1, keepdim=True)
        with torch.no_grad():
            codec.motion_prior.logits.copy_(probs.log().float())
        codec.motion_prior.update(force=True)
        vectors = (counts - SMOOTHING).sum() / 2
        bits.append(float(-((counts - SMOOTHING) * probs.log2()).sum() / vectors))
    return bits


def training_pairs(sources: list[str], count: int, crop_size: int = 256, seed: int = 0) -> Tensor:
    """``count`` random two-frame clips ``[N, 3, 2, crop, crop]`` in [0, 1] of the training sources."""
    torch.manual_seed(seed)
    clips = VideoClips(load_sequences(sources, video_scale=2), 2, crop_size, train=True, max_stride=2)
    return torch.stack([clips[k % len(clips)] for k in torch.randperm(max(count, len(clips)))[:count].tolist()]).float() / 255


def main(argv: list[str] | None = None) -> None:
    from lnc.codecs.registry import load_codec_file, save_codec

    parser = argparse.ArgumentParser(prog="python -m lnc.train.motion_prior", description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a blockmc-residual weights file")
    parser.add_argument("-o", "--output", required=True, help="the weights with fitted motion tables")
    parser.add_argument("--sources", nargs="+", default=list(DEFAULT_SOURCES), help="training frame folders / videos")
    parser.add_argument("--clips", type=int, default=64, help="two-frame 256² clips to fit on")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    codec = load_codec_file(args.weights)
    if not isinstance(codec, BlockMotionResidual):
        raise SystemExit(f"{args.weights} is not a blockmc-residual model")
    bits = fit_motion_prior(codec, training_pairs(args.sources, args.clips), args.rounds)
    metadata = dict(codec.metadata)
    metadata["lnc.motion_prior"] = json.dumps({"clips": args.clips, "rounds": args.rounds,
                                               "bits_per_vector": [round(b, 3) for b in bits]})
    metadata.pop("lnc.name", None)
    save_codec(codec, args.output, metadata)
    print(f"{args.output}: motion tables fitted on {args.clips} clips; bits per vector by round: "
          + ", ".join(f"{b:.2f}" for b in bits))


if __name__ == "__main__":
    main()
