"""The audio path end to end: a small 1-D codec trained by ``lnc train`` on real speech, exported,
and run through the same container, CLI (``lnc encode x.wav`` / ``lnc decode``), ``lnc info`` and
``lnc eval`` as the image codecs; long files are coded chunk by chunk in bounded memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lnc.codecs import load
from lnc.tools.cli import main
from lnc.tools.eval.audio_metrics import snr_db
from lnc.tools.io.audio import AudioReader, AudioWriter

REPO = Path(__file__).resolve().parents[2]
TRAIN_STEPS = 200


def samples(path: Path | bytes) -> tuple[np.ndarray, int]:
    with AudioReader(path) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1), reader.info.sample_rate


@pytest.fixture(scope="module")
def speech_codec(tmp_path_factory) -> Path:
    """``configs/audio/factorized-1d.yaml`` shrunk (16/16 channels, 2048-sample segments) and trained
    for a few hundred steps on LJ Speech, exported as safetensors."""
    folder = tmp_path_factory.mktemp("audio-codec")
    config = yaml.safe_load((REPO / "configs" / "audio" / "factorized-1d.yaml").read_text())
    config["trainer"].update(max_steps=TRAIN_STEPS, val_check_interval=TRAIN_STEPS, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", limit_val_batches=1)
    config["model"]["codec"]["init_args"].update(N=16, M=16)
    config["data"]["init_args"].update(segment=2048, batch_size=4)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    run = subprocess.run([sys.executable, "-m", "lnc.tools.cli", "train", "--config", "config.yaml"],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    weights = folder / "speech.safetensors"
    assert main(["export", str(folder / "runs/factorized-1d/checkpoints/last.ckpt"), "-o", str(weights)]) == 0
    return weights


def test_wav_round_trip_through_the_cli(speech_codec, data_dir, tmp_path, capsys):
    source = data_dir / "audio" / "vctk_p225_001_16k.wav"
    coded, decoded = tmp_path / "speech.lnc", tmp_path / "speech.wav"
    assert main(["encode", str(source), "-o", str(coded), "-m", str(speech_codec)]) == 0
    assert main(["decode", str(coded), "-o", str(decoded), "-m", str(speech_codec)]) == 0
    reference, rate = samples(source)
    result, result_rate = samples(decoded)
    assert result_rate == rate and result.shape == reference.shape
    with wave.open(str(decoded)) as w:
        assert w.getsampwidth() == 2 and w.getnframes() == reference.shape[1]
    snr = snr_db(reference, result)
    assert snr > 0.0, snr  # closer to the speech than silence is

    # The decoder's output is the codec's own reconstruction, to the 16-bit step: an excerpt of
    # whole latent frames (no padding) through the CLI and through the Python API.
    excerpt = reference[:, : 8192]
    with AudioWriter(str(tmp_path / "excerpt.wav"), rate, 1, "wav") as writer:
        writer.write(excerpt)
    assert main(["encode", str(tmp_path / "excerpt.wav"), "-o", str(tmp_path / "excerpt.lnc"), "-m", str(speech_codec)]) == 0
    assert main(["decode", str(tmp_path / "excerpt.lnc"), "-o", str(tmp_path / "excerpt.out.wav"), "-m", str(speech_codec)]) == 0
    codec = load(speech_codec)
    with torch.inference_mode():
        again = codec.decompress(codec.compress(torch.from_numpy(excerpt).reshape(1, 1, -1)))
    out, _ = samples(tmp_path / "excerpt.out.wav")
    assert np.abs(out - again.reshape(1, -1).numpy()).max() <= 0.5 / 32768 + 1e-7

    capsys.readouterr()
    assert main(["info", str(coded), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["modality"] == "audio" and info["streams"] == ["y"] and info["sample_rate"] == rate
    assert len(info["chunks"]) == -(-reference.shape[1] // info["chunk_span"])
    assert info["kbps"] == pytest.approx(8 * coded.stat().st_size * rate / reference.shape[1] / 1000)


def test_stereo_flac_coded_by_a_mono_codec(speech_codec, data_dir, tmp_path, capsys):
    source = data_dir / "audio" / "jfk.flac"
    coded, decoded = tmp_path / "jfk.lnc", tmp_path / "jfk.flac"
    assert main(["encode", str(source), "-o", str(coded), "-m", str(speech_codec)]) == 0
    capsys.readouterr()
    assert main(["info", str(coded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items_per_chunk"] == 2  # each channel its own item
    assert main(["decode", str(coded), "-o", str(decoded), "-m", str(speech_codec)]) == 0
    reference, rate = samples(source)
    result, result_rate = samples(decoded)
    assert (result_rate, result.shape) == (rate, reference.shape)
    assert snr_db(reference, result) > 0.0


def test_eval_reports_the_bit_rate_of_whole_files(speech_codec, data_dir, tmp_path, capsys):
    folder = tmp_path / "speech"
    folder.mkdir()
    (folder / "p225.wav").symlink_to(data_dir / "audio" / "vctk_p225_001_16k.wav")
    out = tmp_path / "rd.json"
    assert main(["eval", "-m", str(speech_codec), "--dataset", str(folder), "--json", str(out)]) == 0
    curve = json.loads(out.read_text())
    assert set(curve["results"]) >= {"bitrate", "snr"} and "bpp" not in curve["results"]
    coded = tmp_path / "p225.lnc"
    assert main(["encode", str(folder / "p225.wav"), "-o", str(coded), "-m", str(speech_codec)]) == 0
    reference, rate = samples(folder / "p225.wav")
    assert curve["results"]["bitrate"][0] == pytest.approx(8 * coded.stat().st_size * rate / reference.shape[1] / 1000)
    assert curve["results"]["snr"][0] > 0.0

    # Plots and BD-rate take the rate key from the file: kbit/s here, never mixed with bpp.
    assert main(["plot", str(out), "--metric", "snr", "-o", str(tmp_path / "rd.png")]) == 0
    from lnc.tools.eval import plot, results

    figure = plot.rd_figure([results.load(out)], "snr")
    assert figure.axes[0].get_xlabel() == "Bit rate (kbit/s)" and figure.axes[0].get_ylabel() == "SNR (dB)"
    capsys.readouterr()
    kodak_jpeg = REPO.parent / "shared" / "anchors" / "compressai" / "image" / "kodak" / "jpeg.json"
    assert main(["bdrate", str(kodak_jpeg), str(out), "--metric", "snr"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_image_model_refuses_audio_and_back(speech_codec, data_dir, tmp_path, capsys):
    assert main(["encode", str(data_dir / "audio" / "vctk_p225_001_16k.wav"), "-o", str(tmp_path / "a.lnc")]) == 2
    assert "codes image" in capsys.readouterr().err
    assert main(["encode", str(data_dir / "kodak" / "kodim01.png"), "-o", str(tmp_path / "b.lnc"),
                 "-m", str(speech_codec)]) == 2
    assert "codes audio" in capsys.readouterr().err


def _peak_rss_mib(*args: str) -> float:
    """Peak resident memory (VmHWM, which unlike ``ru_maxrss`` does not carry over the parent's peak
    through fork and exec) of ``lnc ARGS`` run in a child process, in MiB."""
    code = ("import re, sys; from lnc.tools.cli import main; rc = main(sys.argv[1:]); "
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    return int(run.stdout.split()[-1]) / 1024


def _long_wav(path: Path, source: Path, minutes: float) -> None:
    clip, rate = samples(source)
    frames = int(minutes * 60 * rate)
    with AudioWriter(str(path), rate, clip.shape[0], "wav") as writer:
        for start in range(0, frames, clip.shape[1]):
            writer.write(clip[:, : min(clip.shape[1], frames - start)])


@pytest.mark.slow
@pytest.mark.parametrize("minutes", [pytest.param((2, 20), id="2-vs-20-min")])
def test_memory_does_not_grow_with_duration(speech_codec, data_dir, tmp_path, minutes):
    peaks = {}
    for length in minutes:
        source = tmp_path / f"{length}.wav"
        _long_wav(source, data_dir / "audio" / "vctk_p225_001_16k.wav", length)
        coded = tmp_path / f"{length}.lnc"
        encode = _peak_rss_mib("encode", str(source), "-o", str(coded), "-m", str(speech_codec))
        decode = _peak_rss_mib("decode", str(coded), "-o", str(tmp_path / f"{length}.out.wav"), "-m", str(speech_codec))
        peaks[length] = (encode, decode)
        assert (tmp_path / f"{length}.out.wav").stat().st_size == source.stat().st_size
    short, long = peaks[minutes[0]], peaks[minutes[1]]
    print(f"peak RSS MiB (encode, decode): {minutes[0]} min {short}, {minutes[1]} min {long}")
    # The long file is 10x the short one; its waveform alone would add tens of MiB if held whole.
    assert long[0] < short[0] + 16 and long[1] < short[1] + 16, peaks
