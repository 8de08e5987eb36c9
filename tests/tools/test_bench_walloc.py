"""``lnc.tools.bench.latent_images`` and ``lnc.tools.bench.audio`` on real files with small untrained
WaLLoC models: the tables hold the real file sizes and consistent ratios (no timing is asserted)."""
from __future__ import annotations

import pytest
import torch

from lnc.codecs import build_codec, load_codec_file, save_codec
from lnc.tools.bench import audio, latent_images
from lnc.tools.eval.walloc_baseline import encode_latent_images
from lnc.tools.pipeline.image import encode_array

pytestmark = pytest.mark.usefixtures("one_thread")


def _weights(tmp_path, architecture: str, **config):
    torch.manual_seed(0)
    codec = build_codec(architecture, rate_points=4, **config).eval()
    path = tmp_path / f"{architecture}.safetensors"
    save_codec(codec, path)
    return path


def _rows(text: str, first: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.split() and line.split()[0] == first]


def test_latent_images_compares_the_file_with_png_and_webp_of_the_same_latents(tmp_path, kodim, capsys):
    weights = _weights(tmp_path, "walloc", N=16)
    latent_images.main(["-m", str(weights), "--limit", "1", "-q", "3"])
    [row] = _rows(capsys.readouterr().out, "3")
    lnc_bpp, png_bpp, webp_bpp, lnc_png, lnc_webp = map(float, row[1:])
    codec, rgb = load_codec_file(weights), kodim(1)
    pixels = rgb.shape[0] * rgb.shape[1]
    assert lnc_bpp == pytest.approx(8 * len(encode_array(rgb, codec, 3.0)) / pixels, abs=1e-4)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    stored = encode_latent_images(codec.encode_latents(x, 3.0), "png")
    assert png_bpp == pytest.approx(8 * stored.size / pixels, abs=1e-4)
    assert lnc_png == pytest.approx(lnc_bpp / png_bpp, rel=2e-3) and lnc_webp == pytest.approx(lnc_bpp / webp_bpp, rel=2e-3)


def test_audio_bench_reports_throughput_and_real_time_factors(tmp_path, capsys):
    weights = _weights(tmp_path, "walloc-stereo", N=32, M=27)
    audio.main(["-m", str(weights), "--file", "jfk.flac", "--seconds", "2", "--repeat", "1"])
    out = capsys.readouterr().out
    assert out.startswith("jfk.flac: 2.0 s, 2 ch, 44100 Hz")
    rows = _rows(out, "lnc") + _rows(out, "FLAC")
    assert len(rows) == 2
    for row in rows:
        encode_s, decode_s, encode_ms, decode_ms, encode_rt, decode_rt, kbps = map(float, row[-7:])
        # Times real time over mega-samples per second is the clip's seconds per mega-sample.
        for ms, rt in ((encode_ms, encode_rt), (decode_ms, decode_rt)):
            assert rt / ms == pytest.approx(2.0 / (2 * 88200 / 1e6), rel=5e-3)
        assert encode_s > 0 and decode_s > 0 and kbps > 0
    assert float(rows[1][-1]) > 100  # FLAC is lossless: hundreds of kbit/s
