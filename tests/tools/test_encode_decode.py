"""`lnc encode` / `lnc decode` on real files with the shipped default model."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lnc.codecs import build_codec, load, save_codec
from lnc.codecs.registry import DEFAULT_MODEL
from lnc.entropy.chunked import open_reader
from lnc.tools.cli import main
from lnc.tools.eval import image_metrics as metrics
from lnc.tools.io.image import read_picture
from lnc.codecs.base import single_threaded
from lnc.tools.pipeline.image import TILE, decode_bytes, decode_picture, encode_array, encode_picture


@pytest.fixture(scope="module")
def codec():
    return load()


def _cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def _assert_one_line_error(code: int, err: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lnc: error: "), err


def test_cli_round_trip_matches_encoder_reconstruction(tmp_path, kodak_paths, codec, capsys, recorded):
    source = kodak_paths[14]
    rgb = np.asarray(Image.open(source).convert("RGB"))
    psnrs = []
    for quality in (codec.quality_points[0], codec.quality_points[-1]):
        point = recorded(codec.name, source.name, quality)
        out = tmp_path / f"k15_q{quality}.lnc"
        code, err = _cli(capsys, "encode", str(source), "-o", str(out), "-q", str(quality))
        assert code == 0, err
        png = tmp_path / f"k15_q{quality}.png"
        assert main(["decode", str(out), "-o", str(png)]) == 0
        decoded = np.asarray(Image.open(png))
        # The decoder reproduces exactly what the encoder's own reconstruction is.
        data = out.read_bytes()
        assert np.array_equal(decoded, decode_bytes(data, codec))
        bpp = 8 * len(data) / (rgb.shape[0] * rgb.shape[1])
        psnr = metrics.psnr(decoded, rgb)
        # What the model card records for this image, within another machine's float rounding (its
        # analysis transform may move a few latents by one step: a byte or two of the file).
        assert bpp <= point["bpp"] * 1.002 and psnr > point["psnr-rgb"] - 0.01, (quality, bpp, psnr, point)
        psnrs.append(psnr)
    assert psnrs[1] > psnrs[0] + 1  # the highest rate point is clearly better than the lowest
    small, large = (tmp_path / f"k15_q{q}.lnc" for q in (codec.quality_points[0], codec.quality_points[-1]))
    assert small.stat().st_size < large.stat().st_size


def test_stdin_stdout(tmp_path, kodak_paths, capfdbinary, monkeypatch):
    data = kodak_paths[0].read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["encode", "-", "-o", "-", "-q", "2"]) == 0
    stream = capfdbinary.readouterr().out
    with open_reader(stream) as reader:
        assert reader.version == 2 and reader.header.width == 768 and reader.header.height == 512
        assert len(list(reader.chunks())) == 1 and reader.extras() == {}  # whole and CRC-checked


def test_grayscale_and_alpha_policy(tmp_path, kodim, codec):
    gray = Image.fromarray(kodim(3)[:256, :320].mean(axis=2).astype(np.uint8))  # 2-D uint8 is mode L
    buffer = io.BytesIO()
    gray.save(buffer, format="PNG")
    picture = read_picture(buffer.getvalue())
    assert picture.channels == 1
    data = encode_picture(picture, codec, 4)
    with open_reader(data) as reader:
        assert reader.header.channels == 1
        decoded = decode_picture(reader, codec).to_image()
    assert decoded.mode == "L" and decoded.size == gray.size

    rgba = Image.fromarray(kodim(4)[:200, :300]).convert("RGBA")
    alpha = np.tile(np.arange(300, dtype=np.uint8), (200, 1))
    rgba.putalpha(Image.fromarray(alpha))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    picture = read_picture(buffer.getvalue())
    with open_reader(encode_picture(picture, codec, 4)) as reader:
        out = decode_picture(reader, codec)
        assert reader.header.channels == 4 and set(reader.extras()) == {"alpha"}
    assert np.array_equal(out.alpha, alpha)  # alpha is lossless


def test_large_image_is_tiled(data_dir, codec):
    picture = read_picture(str(sorted((data_dir / "clic").glob("*.png"))[0]))
    h, w = picture.rgb.shape[:2]
    assert h > 1024 and w > 1024
    data = encode_picture(picture, codec, 3)
    with open_reader(data) as reader:
        assert reader.layout.span == TILE and reader.layout.streams == ("z", "y")
        chunks = list(reader.chunks())
    # One chunk per tile, row-major, each an independent stream set.
    assert len(chunks) == -(-h // TILE) * -(-w // TILE) >= 4
    assert all(len(items) == 1 and set(items[0].streams) == {"z", "y"} for items in chunks)
    assert all(len(s) > 0 for items in chunks for s in items[0].streams.values())
    decoded = decode_bytes(data, codec)
    assert decoded.shape == (h, w, 3)
    psnr = metrics.psnr(decoded, picture.rgb)
    assert psnr > 32.0  # 34.59 dB measured; a broken tile seam or tile order would fall far below


def test_decode_is_identical_across_runs_and_threads(tmp_path, kodak_paths, codec, capsys):
    out = tmp_path / "k7.lnc"
    assert main(["encode", str(kodak_paths[6]), "-o", str(out), "-q", "5"]) == 0
    script = (
        "import sys, hashlib, torch; torch.set_num_threads(int(sys.argv[2]));"
        "from lnc.codecs import load; from lnc.tools.pipeline.image import decode_bytes;"
        "print(hashlib.sha256(decode_bytes(open(sys.argv[1], 'rb').read(), load()).tobytes()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, str(out), str(threads)], capture_output=True, text=True, check=True
        ).stdout
        for threads in (1, 2, 2)
    }
    assert len(digests) == 1


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, kodak_paths, codec, capsys):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image\n")
    _assert_one_line_error(*_cli(capsys, "encode", str(fake), "-o", str(tmp_path / "a.lnc")))
    _assert_one_line_error(*_cli(capsys, "encode", str(tmp_path / "missing.png")))

    good = tmp_path / "k1.lnc"
    assert main(["encode", str(kodak_paths[0]), "-o", str(good), "-q", "1"]) == 0
    capsys.readouterr()
    truncated = tmp_path / "cut.lnc"
    truncated.write_bytes(good.read_bytes()[:-40])
    _assert_one_line_error(*_cli(capsys, "decode", str(truncated), "-o", str(tmp_path / "cut.png")))
    assert not (tmp_path / "cut.png").exists()

    # A bitstream of other weights: decoding it with the default model is refused.
    other = build_codec("mbt2018-mean", N=32, M=32)
    other_path = tmp_path / "other.safetensors"
    save_codec(other, other_path)
    foreign = tmp_path / "foreign.lnc"
    assert main(["encode", str(kodak_paths[1]), "-m", str(other_path), "-o", str(foreign)]) == 0
    capsys.readouterr()
    code, err = _cli(capsys, "decode", str(foreign), "-m", DEFAULT_MODEL, "-o", str(tmp_path / "f.png"))
    _assert_one_line_error(code, err)
    assert "weights" in err

    # Unwritable output and an existing output without --force.
    _assert_one_line_error(*_cli(capsys, "encode", str(kodak_paths[0]), "-o", str(tmp_path / "no" / "x.lnc")))
    before = good.read_bytes()
    _assert_one_line_error(*_cli(capsys, "encode", str(kodak_paths[2]), "-o", str(good)))
    assert good.read_bytes() == before
    assert main(["encode", str(kodak_paths[2]), "-o", str(good), "--force", "-q", "1"]) == 0
    assert good.read_bytes() != before
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.slow
def test_every_kodak_image_at_every_rate_point(tmp_path, kodak_paths, codec, recorded):
    """Acceptance: encode → file → decode of all of Kodak at each rate point. The decoded pixels are
    the encoder's own reconstruction (its forward pass on rounded latents), and rate and PSNR are
    what the model card records."""
    for path in kodak_paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)  # 768×512: one tile
        for quality in codec.quality_points:
            out = tmp_path / "x.lnc"
            out.write_bytes(encode_array(rgb, codec, quality))
            decoded = decode_bytes(out.read_bytes(), codec)
            with torch.inference_mode(), single_threaded(x.device):  # as the encoder ran
                x_hat = codec(x, quality)["x_hat"].clamp(0, 1)
            expected = x_hat.mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
            differ = decoded != expected  # a desync would change whole regions, not a rounding here and there
            assert np.abs(decoded.astype(int) - expected).max() <= 1 and differ.mean() < 1e-3, (path.name, quality)
            point = recorded(codec.name, path.name, quality)
            bpp = 8 * out.stat().st_size / (rgb.shape[0] * rgb.shape[1])
            assert bpp <= point["bpp"] * 1.002 and metrics.psnr(decoded, rgb) > point["psnr-rgb"] - 0.01, path.name


@pytest.mark.slow
@pytest.mark.parametrize("refine", [0, 1])
def test_a_4000x3000_photo_codes_within_3_gb(tmp_path, data_dir, refine):
    """Acceptance: peak memory of encode (plain and refined, one tile refined at a time) and decode."""
    big = tmp_path / "big.png"
    Image.open(sorted((data_dir / "clic").glob("*.png"))[0]).convert("RGB").resize((4000, 3000)).save(big)
    coded = tmp_path / "big.lnc"
    # VmHWM of the child itself: ru_maxrss would carry over the forking pytest process's peak.
    code = ("import re, sys; from lnc.tools.cli import main; rc = main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]); sys.exit(rc)")
    peaks = []
    for args in (["encode", str(big), "-o", str(coded), "--refine", str(refine)],
                 ["decode", str(coded), "-o", str(tmp_path / "out.png")]):
        run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        peaks.append(int(run.stdout.split()[-1]))
    peak_kib = max(peaks)
    print(f"4000x3000, refine {refine}: peak encode {peaks[0] / 1024**2:.2f} GiB, decode {peaks[1] / 1024**2:.2f} GiB")
    assert peak_kib < 3 * 1024**2, f"peak {peak_kib / 1024**2:.2f} GiB"
