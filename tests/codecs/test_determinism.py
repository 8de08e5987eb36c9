"""The determinism guard lives in the codec, not in the CLI: ``compress`` and ``decompress`` code on one
CPU thread whatever the caller set, so the Python API writes and reads the same streams as ``lnc``."""
from __future__ import annotations

import numpy as np
import torch

import lnc.codecs


def _crop(kodim) -> torch.Tensor:
    rgb = np.ascontiguousarray(kodim(7)[:192, :256])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


def test_coding_runs_on_one_thread_and_restores_the_callers_setting(kodim, monkeypatch):
    codec = lnc.codecs.load()
    seen = []
    for verb in ("write_streams", "read_streams"):
        original = getattr(codec, verb)

        def spy(*args, _original=original, **kwargs):
            seen.append(torch.get_num_threads())
            return _original(*args, **kwargs)

        monkeypatch.setattr(codec, verb, spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            codec.decompress(codec.compress(_crop(kodim), 3.0), 3.0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]


def test_streams_and_pixels_do_not_depend_on_the_callers_threads(kodim):
    codec, x = lnc.codecs.load(), _crop(kodim)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                compressed = codec.compress(x, 5.0)
                results.append((compressed.item(0), codec.decompress(compressed, 5.0)))
    finally:
        torch.set_num_threads(before)
    (streams_1, x_hat_1), (streams_2, x_hat_2) = results
    assert streams_1 == streams_2 and torch.equal(x_hat_1, x_hat_2)
