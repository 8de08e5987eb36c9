"""The P-frame video codec's parts on real frames: motion search, compensation, vector coding, and
one intra and one predicted frame through compress / decompress."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lnc.codecs.latent.motion import MotionVectorLatentCodec, laplace_logits
from lnc.codecs.layers.motion import QUARTER, block_flow, compensate, estimate_motion, median_of_above, warp
from lnc.codecs.registry import load_codec_file
from lnc.codecs.video import BlockMotionResidual
from lnc.entropy.categorical import CategoricalModel
from lnc.entropy.coder import RangeDecoder, RangeEncoder
from lnc.entropy.errors import BitstreamError

CLIP = "video/BasketballPass_416x240_64f"


def _frame(data_dir, n: int, size: tuple[int, int] = (240, 384)) -> torch.Tensor:
    rgb = np.asarray(Image.open(data_dir / CLIP / f"f{n:03d}.png").convert("RGB"))
    return torch.from_numpy(rgb[: size[0], : size[1]].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a - b).pow(2).mean()))


def _motion_codec(rate_points: int = 2, reach: int = 256) -> MotionVectorLatentCodec:
    prior = CategoricalModel(2 * reach + 1, 2 * rate_points)
    with torch.no_grad():
        prior.logits.copy_(laplace_logits(2 * rate_points, reach, 3.0))
    prior.update(force=True)
    return MotionVectorLatentCodec(prior, reach, rate_points)


def test_search_finds_a_known_sub_pixel_shift(data_dir) -> None:
    """A real frame moved by (+3.25, −2.5) px: the search returns that vector (13, −10 in
    quarter pixels) for the blocks inside, and compensation with it rebuilds the frame."""
    reference = _frame(data_dir, 1, (240, 384))
    shift = torch.tensor([3.25, -2.5]).view(1, 2, 1, 1).expand(1, 2, 240, 384)
    current = warp(reference, shift)
    codec = _motion_codec()
    q = torch.tensor([1.0])
    vectors = estimate_motion(current, reference, 16, 32, torch.tensor([0.01]), codec.bits(q))
    inner = vectors[:, :, 2:-2, 2:-2]
    assert (inner[:, 0] == 13).float().mean() > 0.85 and (inner[:, 1] == -10).float().mean() > 0.85
    prediction = compensate(reference, vectors, 16)
    assert _psnr(prediction[..., 32:-32, 32:-32], current[..., 32:-32, 32:-32]) > 40
    assert _psnr(reference, current) < 25


def test_real_motion_predicts_far_better_than_the_previous_frame(data_dir) -> None:
    reference, current = _frame(data_dir, 1), _frame(data_dir, 2)
    codec = _motion_codec()
    vectors = estimate_motion(current, reference, 16, 32, torch.tensor([0.0067]), codec.bits(torch.tensor([1.0])))
    gain = _psnr(compensate(reference, vectors, 16), current) - _psnr(reference, current)
    assert gain > 3.0
    # Overlapped compensation beats the same vectors applied block by block (no edges to pay for).
    blocky = warp(reference, block_flow(vectors, 16))
    assert _psnr(compensate(reference, vectors, 16), current) > _psnr(blocky, current)


def test_vectors_round_trip_losslessly_and_cost_what_the_model_says() -> None:
    torch.manual_seed(0)
    codec = _motion_codec()
    smooth = torch.randn(2, 2, 3, 4).repeat_interleave(4, 2).repeat_interleave(4, 3).mul(4).round()
    vectors = (smooth + torch.randint(-2, 3, smooth.shape)).long().clamp(-128, 128)
    q = torch.tensor([1.0, 2.0])
    encoders = {"mv": [RangeEncoder(), RangeEncoder()]}
    codec.compress(vectors, q, encoders)
    strings = [e.flush() for e in encoders["mv"]]
    decoded = codec.decompress({"mv": [RangeDecoder(s) for s in strings]}, {"mv": (12, 16)}, q)
    assert torch.equal(decoded, vectors)
    _, likelihoods = codec(vectors, q)
    estimate = -torch.log2(likelihoods["mv"]).sum().item()
    actual = 8 * sum(len(s) for s in strings)
    assert estimate <= actual <= estimate + 64
    # Predictions come from decoded rows only: a change in the last row leaves the others' predictions.
    changed = vectors.clone()
    changed[:, :, -1] += 7
    assert torch.equal(median_of_above(changed)[:, :, :-1], median_of_above(vectors)[:, :, :-1])


def test_a_corrupt_vector_stream_is_refused() -> None:
    codec = _motion_codec(rate_points=1, reach=8)
    with pytest.raises(BitstreamError):
        garbage = bytes(range(7, 250, 3))
        codec.decompress({"mv": [RangeDecoder(garbage)]}, {"mv": (4, 40)}, torch.tensor([1.0]))


@pytest.fixture(scope="module")
def video_codec(video_model) -> BlockMotionResidual:
    return load_codec_file(video_model)


def test_intra_and_predicted_frames_round_trip(video_codec, data_dir) -> None:
    """An intra frame codes as the image model does; the next frame, predicted from the decoded
    one, costs far fewer bits at a similar PSNR; decoding needs the reference."""
    frames = [torch.nn.functional.pad(_frame(data_dir, n, (240, 416)), (0, 32, 0, 16), mode="replicate")
              for n in (1, 2)]
    q = 4.0
    with torch.inference_mode():
        intra = video_codec.compress(frames[0], q)
        reference = video_codec.decompress(intra, q).mul(255).round().div(255)
        image = video_codec.intra.compress(frames[0], q)
        assert intra.streams["iy"].strings == image.streams["y"].strings
        predicted = video_codec.compress(torch.cat([frames[1], reference], 1), q)
        x_hat = video_codec.decompress(predicted, q, reference=reference)
    intra_bytes = sum(len(s.strings[0]) for s in intra.streams.values())
    predicted_bytes = sum(len(s.strings[0]) for s in predicted.streams.values())
    assert video_codec.is_intra(intra.item(0)) and not video_codec.is_intra(predicted.item(0))
    assert predicted_bytes < 0.7 * intra_bytes
    assert _psnr(x_hat[..., :240, :416], frames[1][..., :240, :416]) > _psnr(reference, frames[0]) - 1.0
    with pytest.raises(BitstreamError):
        mixed = intra.item(0)
        video_codec.is_intra(type(mixed)({**mixed.streams, "mv": b"\x01"}, mixed.checksum))


def test_training_unrolls_over_its_own_reconstructions(video_codec, data_dir) -> None:
    clip = torch.stack([_frame(data_dir, n, (128, 128)) for n in (1, 2, 3)], dim=2)
    video_codec.train()
    try:
        out = video_codec(clip.repeat(2, 1, 1, 1, 1), torch.tensor([1.0, 8.0]))
    finally:
        video_codec.eval()
    assert out["x_hat"].shape == out["target"].shape == (2, 3, 2, 128, 128)
    assert set(out["likelihoods"]) == {"mv", "rz", "ry"}
    bits = -torch.log2(out["likelihoods"]["ry"]).sum(1)
    assert bits[1] > 2 * bits[0]  # the top rate point spends more on residuals than the lowest
    assert not any(p.requires_grad for p in video_codec.intra.parameters())


def test_fitted_motion_tables_cost_less_than_the_starting_guess(video_model, data_dir) -> None:
    """``lnc.train.motion_prior``: the tables fitted to the vectors the encoder chooses code those
    vectors in fewer bits than the geometric guess they start from, and still round trip."""
    from lnc.train.motion_prior import fit_motion_prior, motion_counts

    codec = load_codec_file(video_model)
    pairs = torch.stack([torch.stack([_frame(data_dir, n, (128, 128)), _frame(data_dir, n + 1, (128, 128))], 2)[0]
                         for n in (1, 20)])
    counts = motion_counts(codec, pairs)
    before = -(counts * torch.log_softmax(codec.motion_prior.logits.double(), -1) / np.log(2)).sum()
    bits = fit_motion_prior(codec, pairs, rounds=1)
    assert bits[0] * counts.sum() / 2 < before
    vectors = codec._motion(pairs[:1, :, 1], pairs[:1, :, 0], torch.tensor([1.0]))
    encoders = {"mv": [RangeEncoder()]}
    codec.motion.compress(vectors, torch.tensor([1.0]), encoders)
    decoded = codec.motion.decompress({"mv": [RangeDecoder(encoders["mv"][0].flush())]}, {"mv": (8, 8)}, torch.tensor([1.0]))
    assert torch.equal(decoded, vectors)
