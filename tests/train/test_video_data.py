"""Video training clips from the real Vimeo-90k septuplets: shapes, held-out sequences, and clips
that follow the sequence's frames at a stride, forwards or backwards."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lnc.entropy.errors import InputError
from lnc.train.video_data import VideoClipDataModule, VideoClips, load_sequences

VIMEO = "train/video/vimeo_septuplet_subset"


def test_septuplets_load_as_seven_frame_sequences() -> None:
    sequences = load_sequences([VIMEO])
    assert len(sequences) == 16
    assert all(s.shape == (7, 256, 448, 3) and s.dtype == np.uint8 for s in sequences)


def test_clips_are_consecutive_frames_at_a_stride() -> None:
    """Frames numbered by their value: a clip's frames are k, k ± s, k ± 2s with s ≤ max_stride."""
    sequence = np.stack([np.full((160, 200, 3), 10 * k, np.uint8) for k in range(7)])
    clips = VideoClips([sequence], clip_length=3, crop_size=128, train=True, max_stride=2)
    torch.manual_seed(1)
    seen = set()
    for _ in range(32):
        clip = clips[0]
        assert clip.shape == (3, 3, 128, 128) and clip.dtype == torch.uint8
        frames = [int(clip[0, t, 0, 0]) // 10 for t in range(3)]
        step = frames[1] - frames[0]
        assert frames[2] - frames[1] == step and abs(step) in (1, 2)
        seen.add(step)
    assert seen == {-2, -1, 1, 2}
    centred = VideoClips([sequence], clip_length=3, crop_size=128, train=False)[0]
    assert [int(centred[0, t, 0, 0]) for t in range(3)] == [0, 10, 20]


def test_module_holds_out_sequences_and_batches_floats() -> None:
    module = VideoClipDataModule([VIMEO], clip_length=2, crop_size=128, batch_size=2, val_sequences=2, repeats=1)
    module.setup()
    assert len(module.train_set.sequences) == 14 and len(module.val_set.sequences) == 2
    batch = next(iter(module.train_dataloader()))
    x = module.on_after_batch_transfer(batch, 0)
    assert x.shape == (2, 3, 2, 128, 128) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    with pytest.raises(InputError):
        VideoClipDataModule([VIMEO], clip_length=1)
