"""WaLLoC for images and stereo audio: coding reproduces the forward pass, the compressed-domain verbs,
WaLLoC's 8-bit PNG/WebP latents as a lossless baseline, two training steps, and ``lnc encode`` /
``lnc decode`` of a Kodak crop and a stereo FLAC excerpt through an exported weights file."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

from lnc.codecs import build_codec, load, load_codec_file, save_codec
from lnc.codecs.base import single_threaded
from lnc.entropy.errors import InputError
from lnc.tools.cli import main
from lnc.tools.eval import image_metrics as metrics
from lnc.tools.eval.audio_metrics import snr_db
from lnc.tools.eval.walloc_baseline import decode_latent_images, encode_latent_images
from lnc.tools.io.audio import AudioReader, AudioWriter
from lnc.tools.pipeline.image import decode_bytes
from lnc.train.module import RDModule, load_initial_weights


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def kodak_crop(kodim) -> torch.Tensor:
    """A 128×192 crop of kodim07, [1, 3, 128, 192] in [0, 1]."""
    rgb = np.ascontiguousarray(kodim(7)[128:256, 256:448])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)


def read_audio(path) -> tuple[np.ndarray, int]:
    with AudioReader(path) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1), reader.info.sample_rate


@pytest.fixture(scope="module")
def stereo_excerpt(data_dir) -> torch.Tensor:
    """8192 frames (32 latent frames) of jfk.flac, 44.1 kHz stereo, from 2 s in: [1, 2, 8192]."""
    wave, rate = read_audio(data_dir / "audio" / "jfk.flac")
    assert rate == 44100 and wave.shape[0] == 2
    return torch.from_numpy(np.ascontiguousarray(wave[:, 88200 : 88200 + 8192])).unsqueeze(0)


def _codec(architecture: str, **config):
    torch.manual_seed(0)
    codec = build_codec(architecture, rate_points=4, **config).eval()
    codec.update()
    return codec


@pytest.fixture(scope="module")
def codecs(kodak_crop, stereo_excerpt) -> list:
    """Randomly initialised codecs at their default sizes, each with its input."""
    return [(_codec("walloc"), kodak_crop), (_codec("walloc-stereo"), stereo_excerpt)]


def test_compress_decompress_reproduces_the_forward_pass(codecs):
    for codec, x in codecs:
        with torch.inference_mode(), single_threaded(x.device):
            expected = codec(x, 3.0)["x_hat"].clamp(*codec.value_range)
            compressed = codec.compress(x, 3.0)
            decoded = codec.decompress(compressed, 3.0)
        assert list(compressed.streams) == ["y"]
        assert compressed.streams["y"].shape == tuple(s // codec.downsampling for s in x.shape[2:])
        assert torch.equal(decoded, expected), codec.architecture


def test_integer_latents_are_what_the_stream_codes(codecs):
    for codec, x in codecs:
        latents = codec.encode_latents(x, 3.0)
        assert latents.dtype == torch.int32
        assert latents.shape == (1, codec.config["M"], *(s // codec.downsampling for s in x.shape[2:]))
        with torch.inference_mode():
            decoded = codec.decompress(codec.compress(x, 3.0), 3.0)
        assert torch.equal(codec.decode_latents(latents, 3.0), decoded), codec.architecture
        with pytest.raises(InputError, match="integers"):
            codec.decode_latents(latents.float(), 3.0)
        with pytest.raises(InputError, match="multiples of"):
            codec.encode_latents(x[..., :-1], 3.0)


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_8_bit_image_latents_are_lossless(codecs, fmt):
    for codec, x in codecs:
        # An untrained encoder's latents can span more than 8 bits; a faint copy of the input keeps them
        # inside (trained models learn the gains that do).
        x = x / 64
        latents = codec.encode_latents(x, 4.0)
        stored = encode_latent_images(latents, fmt)
        assert stored.clipped == 0 and len(stored.files) == 1
        assert torch.equal(decode_latent_images(stored), latents)
        learned = len(codec.compress(x, 4.0).streams["y"].strings[0])
        print(f"{codec.architecture} {fmt}: {stored.size} B as an 8-bit image, {learned} B by the untrained prior")
    # Values beyond 8 bits are clamped and counted; a batch is one image per item.
    wide = torch.tensor([-300, -128, 0, 127, 300], dtype=torch.int32).repeat(2, 27, 1)
    stored = encode_latent_images(wide, fmt)
    assert stored.clipped == 2 * 27 * 2 and len(stored.files) == 2
    assert torch.equal(decode_latent_images(stored), wide.clamp(-128, 127))
    spread = torch.randint(-128, 128, (1, 48, 9, 13), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    # PNG: one plane of 7×7 tiles; WebP: 3 planes of 4×4.
    assert torch.equal(decode_latent_images(encode_latent_images(spread, fmt)), spread)
    with pytest.raises(InputError):
        encode_latent_images(wide.float(), fmt)
    with pytest.raises(InputError, match="format"):
        encode_latent_images(wide, "gif")
    with pytest.raises(InputError, match="does not hold"):
        decode_latent_images(replace(stored, shape=(27, 6)))
    with pytest.raises(InputError, match="not a readable"):
        decode_latent_images(replace(stored, files=[b"not an image"] * 2))


@pytest.mark.parametrize(
    ("architecture", "config", "data"),
    [("walloc", {"N": 16, "M": 12}, "image"), ("walloc-stereo", {"N": 32, "M": 27, "levels": 6}, "audio")],
)
def test_two_training_steps(architecture, config, data, kodak_crop, stereo_excerpt, tmp_path):
    torch.manual_seed(0)
    codec = build_codec(architecture, rate_points=2, **config)
    if data == "image":
        samples = [kodak_crop[0, :, :64, :64], kodak_crop[0, :, 64:, 128:]]
        lmbdas = [0.0067, 0.0483]
    else:
        samples = [stereo_excerpt[0, :, :4096], stereo_excerpt[0, :, 4096:]]
        lmbdas = [5e-6, 4e-5]
    module = RDModule(codec, lmbdas=lmbdas, lr=1e-3)
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    trainer = pl.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0, limit_val_batches=0,
    )
    trainer.fit(module, DataLoader(samples, batch_size=2))
    assert trainer.global_step == 2
    changed = [k for k, v in codec.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("g_a.") for k in changed) and any(k.startswith("g_s.") for k in changed)
    assert any(k.startswith("entropy_bottleneck.") for k in changed)
    assert all(torch.isfinite(v).all() for v in codec.state_dict().values() if v.is_floating_point())


def test_cli_codes_a_kodak_crop(kodim, tmp_path, capsys):
    weights = tmp_path / "walloc.safetensors"
    save_codec(_codec("walloc", N=32), weights)
    rgb = np.ascontiguousarray(kodim(7)[100:241, 300:503])  # 141×203: padded to 144×208
    Image.fromarray(rgb).save(tmp_path / "crop.png")
    coded, decoded = tmp_path / "crop.lnc", tmp_path / "crop.out.png"
    assert main(["encode", str(tmp_path / "crop.png"), "-o", str(coded), "-m", str(weights), "-q", "3"]) == 0
    assert main(["decode", str(coded), "-o", str(decoded), "-m", str(weights)]) == 0
    result = np.asarray(Image.open(decoded))
    assert result.shape == rgb.shape
    codec = load_codec_file(weights)
    assert np.array_equal(result, decode_bytes(coded.read_bytes(), codec))
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
    with torch.inference_mode(), single_threaded(x.device):  # the encoder's own reconstruction, padded as it pads
        x_hat = codec(F.pad(x, (0, 5, 0, 3), mode="replicate"), 3.0)["x_hat"].clamp(0, 1)[..., :141, :203]
    expected = x_hat.mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(result.astype(int) - expected).max() <= 1
    capsys.readouterr()


def test_cli_codes_a_stereo_flac(data_dir, tmp_path, capsys):
    weights = tmp_path / "walloc-stereo.safetensors"
    save_codec(_codec("walloc-stereo", N=32, M=27), weights)
    wave, rate = read_audio(data_dir / "audio" / "jfk.flac")
    source = tmp_path / "excerpt.flac"
    with AudioWriter(str(source), rate, 2, "flac") as writer:
        writer.write(np.ascontiguousarray(wave[:, 44100 : 44100 + 20000]))  # 20000 frames: padded to 20224
    coded, decoded = tmp_path / "excerpt.lnc", tmp_path / "excerpt.wav"
    assert main(["encode", str(source), "-o", str(coded), "-m", str(weights)]) == 0
    assert main(["decode", str(coded), "-o", str(decoded), "-m", str(weights)]) == 0
    reference, _ = read_audio(source)
    result, result_rate = read_audio(decoded)
    assert result_rate == rate and result.shape == reference.shape == (2, 20000)
    codec = load_codec_file(weights)
    x = F.pad(torch.from_numpy(reference).unsqueeze(0), (0, 224), mode="reflect")
    with torch.inference_mode():
        again = codec.decompress(codec.compress(x))[0, :, :20000].numpy()
    assert np.abs(result - again).max() <= 0.5 / 32768 + 1e-7
    capsys.readouterr()


@pytest.mark.parametrize("architecture", ["walloc-hyperprior", "walloc-fast"])
def test_hyperprior_variant_codes_what_it_trains_on_and_through_the_cli(architecture, kodim, tmp_path, capsys):
    torch.manual_seed(0)
    codec = build_codec(architecture, N=32, hidden=32, rate_points=2, exact_entropy=True).eval()
    codec.update()
    rgb = np.ascontiguousarray(kodim(7)[100:228, 300:492])  # 128×192: whole multiples of 32
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
    batch = torch.cat([x, x.flip(-1)])
    compressed = codec.compress(batch, 1.5)
    assert set(compressed.streams) == {"z", "y"} and compressed.streams["y"].shape == (16, 24)
    assert compressed.streams["z"].shape == (4, 6) and len(compressed.streams["y"].strings) == 2
    with torch.inference_mode(), single_threaded(x.device):
        expected = codec(batch, 1.5)["x_hat"].clamp(0, 1)
    assert torch.equal(codec.decompress(compressed, 1.5), expected)
    # The latents are quantised on the integer grid (integer means, or real means choosing tables
    # by their offset), so the coded latents are round(y): integers that decode without z.
    latents = codec.encode_latents(batch, 1.5)
    with torch.no_grad():
        y = codec.analyse(batch, codec.quality_tensor(1.5, 2, x.device))["y"]
    assert latents.dtype == torch.int32 and torch.equal(latents, torch.round(y).int())
    assert torch.equal(codec.decode_latents(latents, 1.5), expected)

    weights = tmp_path / f"{architecture}.safetensors"
    save_codec(codec, weights)
    crop = tmp_path / "crop.png"
    Image.fromarray(rgb[:101, :150]).save(crop)  # padded to 128×160
    coded, decoded = tmp_path / "crop.lnc", tmp_path / "crop.out.png"
    assert main(["encode", str(crop), "-o", str(coded), "-m", str(weights), "-q", "2"]) == 0
    assert main(["decode", str(coded), "-o", str(decoded), "-m", str(weights)]) == 0
    assert np.asarray(Image.open(decoded)).shape == (101, 150, 3)
    capsys.readouterr()


def test_fast_hyperprior_grows_from_the_shipped_hyperprior():
    """``walloc-fast`` starts from ``walloc-hyperprior-vr``'s packet transform, encoder, decoder and
    gains, with its own (smaller) hyperprior freshly initialised."""
    source = load("walloc-hyperprior-vr")
    torch.manual_seed(0)
    codec = build_codec("walloc-fast", rate_points=8, mixed_quantization=True, exact_entropy=True)
    fresh = {k: v.clone() for k, v in codec.state_dict().items()}
    provenance = load_initial_weights(codec, "walloc-hyperprior-vr")
    assert provenance["grown_from"] == "walloc-hyperprior"
    ours, theirs = codec.state_dict(), source.state_dict()
    for key, value in ours.items():
        if key.startswith(("g_a.", "g_s.", "gain.")):
            assert torch.equal(value, theirs[key].to(value.dtype)), key
        elif key.startswith(("h_a.", "h_s.")):
            assert torch.equal(value, fresh[key]), key
    assert codec.config["N"] == 64 and source.config["N"] == 128


@pytest.mark.parametrize("name", ["walloc-hyperprior-vr", "walloc-fast-vr"])
def test_shipped_walloc_codes_kodak_as_recorded_and_below_its_8_bit_images(name, kodak_paths, recorded, tmp_path, capsys):
    """A shipped WaLLoC image model through the CLI on kodim15 at its lowest and highest rate points:
    rate and PSNR are what its card records, its integer latents decode to the same pixels, and the
    learned file is smaller than the same latents stored as WaLLoC's PNG (lossless WebP beats it on
    some images; the model cards give the ratios over all of Kodak)."""
    codec = load(name)
    source = kodak_paths[14]
    rgb = np.asarray(Image.open(source).convert("RGB"))
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)  # 768×512: one tile
    for quality in codec.quality_points[0], codec.quality_points[-1]:
        coded, decoded = tmp_path / f"q{quality}.lnc", tmp_path / f"q{quality}.png"
        assert main(["encode", str(source), "-o", str(coded), "-m", name, "-q", str(quality)]) == 0
        assert main(["decode", str(coded), "-o", str(decoded)]) == 0
        pixels = np.asarray(Image.open(decoded))
        size = coded.stat().st_size
        point = recorded(name, source.name, quality)
        assert 8 * size / (rgb.shape[0] * rgb.shape[1]) <= point["bpp"] * 1.002
        assert metrics.psnr(pixels, rgb) > point["psnr-rgb"] - 0.01
        latents = codec.encode_latents(x, quality)
        again = codec.decode_latents(latents, quality).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0)
        assert np.array_equal(again.numpy(), pixels)
        stored = encode_latent_images(latents, "png")
        # The 8-bit path clamps the rare latents beyond -128..127, which only makes its file smaller.
        assert stored.clipped <= latents.numel() // 10_000 and size < stored.size, (quality, size, stored.size)
    capsys.readouterr()


def test_shipped_stereo_walloc_codes_music_as_recorded(data_dir, recorded, tmp_path, capsys):
    """The shipped stereo model through the CLI on a 48 kHz stereo music file at its lowest and highest
    rate points: bit rate and SNR are what its card records."""
    name = "walloc-stereo-vr"
    source = data_dir / "audio" / "encodec_test_48k.wav"
    reference, rate = read_audio(source)
    for quality in load(name).quality_points[::7]:
        coded, decoded = tmp_path / f"q{quality}.lnc", tmp_path / f"q{quality}.wav"
        assert main(["encode", str(source), "-o", str(coded), "-m", name, "-q", str(quality)]) == 0
        assert main(["decode", str(coded), "-o", str(decoded)]) == 0
        result, result_rate = read_audio(decoded)
        assert result_rate == rate and result.shape == reference.shape
        point = recorded(name, source.name, quality)
        kbps = 8 * coded.stat().st_size * rate / reference.shape[1] / 1000
        assert kbps <= point["bitrate"] * 1.002 and snr_db(reference, result) > point["snr"] - 0.01
    capsys.readouterr()
