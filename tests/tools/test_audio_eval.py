"""Audio evaluation: SNR, SI-SDR and DAC's mel distance on real audio, the Opus / AAC / MP3 baselines
round-tripping a real stereo clip through real files, and ``lnc eval --codec opus`` on a folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lnc.entropy.errors import InputError
from lnc.tools.cli import main
from lnc.tools.eval import audio_baselines
from lnc.tools.eval.audio_metrics import MEL_MIN_FRAMES, mel_distance, si_sdr_db, snr_db
from lnc.tools.io.audio import AudioReader, AudioWriter

MUSIC = "librosa_Kevin_MacLeod_-_Vibe_Ace.hq.ogg"  # 44.1 kHz stereo
SPEECH = "vctk_p225_001_16k.wav"  # 16 kHz mono
# File signatures: each codec must write its real container.
MAGIC = {"opus": (0, b"OggS"), "aac": (4, b"ftyp"), "mp3": (0, b"ID3")}
LOW_HIGH = {"opus": (12, 64), "aac": (48, 128), "mp3": (48, 128)}  # kbit/s


@pytest.fixture(scope="module", autouse=True)
def single_thread(one_thread) -> None:
    """torch (the mel spectrograms) on one thread, like the rest of this machine's small work."""


def excerpt(path: Path, seconds: float) -> tuple[np.ndarray, int]:
    """The first ``seconds`` of a real file, as float32 ``[channels, frames]``, and its sample rate."""
    with AudioReader(path) as reader:
        rate = reader.info.sample_rate
        return next(reader.chunks(int(seconds * rate))), rate


def with_noise(x: np.ndarray, snr: float, seed: int = 0) -> np.ndarray:
    """``x`` plus white noise at ``snr`` dB below each zero-mean channel."""
    noise = np.random.default_rng(seed).standard_normal(x.shape)
    noise -= noise.mean(axis=1, keepdims=True)
    signal = x - x.mean(axis=1, keepdims=True)
    ratio = np.sum(signal**2, axis=1, keepdims=True) / np.sum(noise**2, axis=1, keepdims=True)
    noise *= np.sqrt(ratio / 10 ** (snr / 10))
    return x + noise


def best_lag(reference: np.ndarray, decoded: np.ndarray, most: int = 2048) -> int:
    """The shift of ``decoded`` against ``reference`` (channel means) that correlates best."""
    a, b = reference.mean(axis=0).astype(np.float64), decoded.mean(axis=0).astype(np.float64)
    n = len(a) + len(b)
    xcorr = np.fft.irfft(np.conj(np.fft.rfft(a, n)) * np.fft.rfft(b, n), n)
    lags = np.r_[np.arange(most), np.arange(-most, 0)]
    return int(lags[np.argmax(np.r_[xcorr[:most], xcorr[-most:]])])


@pytest.fixture(scope="module")
def music(data_dir) -> tuple[np.ndarray, int]:
    return excerpt(data_dir / "audio" / MUSIC, 3.0)


@pytest.mark.parametrize("name", [MUSIC, SPEECH])
@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
def test_si_sdr_and_snr_of_added_noise_match_its_level(data_dir, name, snr) -> None:
    x, _ = excerpt(data_dir / "audio" / name, 3.0)
    noisy = with_noise(x, snr)
    assert si_sdr_db(x, noisy) == pytest.approx(snr, abs=0.1)
    assert snr_db(x, noisy) == pytest.approx(snr, abs=0.1)


def test_si_sdr_forgives_a_gain_that_snr_counts_as_noise(music) -> None:
    x, _ = music
    assert si_sdr_db(x, 0.25 * x) > 100.0
    assert snr_db(x, 0.25 * x) == pytest.approx(20 * np.log10(1 / 0.75), abs=1e-6)
    assert si_sdr_db(x, 0.25 * with_noise(x, 20.0)) == pytest.approx(20.0, abs=0.1)
    silent_right = np.stack([x[0], np.zeros_like(x[0])])  # a silent channel has nothing to compare
    assert si_sdr_db(silent_right, with_noise(silent_right[:1], 20.0).repeat(2, axis=0)) == pytest.approx(20.0, abs=0.1)


def test_mel_distance_is_zero_for_identical_audio_and_grows_with_noise(music) -> None:
    x, rate = music
    assert mel_distance(x, x.copy(), rate) == 0.0
    distances = [mel_distance(x, with_noise(x, snr), rate) for snr in (40.0, 20.0, 0.0)]
    assert 0.0 < distances[0] < distances[1] < distances[2]
    with pytest.raises(InputError, match="at least"):
        mel_distance(x[:, : MEL_MIN_FRAMES - 1], x[:, : MEL_MIN_FRAMES - 1], rate)


@pytest.fixture(scope="module")
def music_file(data_dir, tmp_path_factory) -> Path:
    """Four seconds of the stereo music clip as a 16-bit FLAC: the source the baselines code."""
    x, rate = excerpt(data_dir / "audio" / MUSIC, 4.0)
    path = tmp_path_factory.mktemp("music") / "vibe-ace-4s.flac"
    with AudioWriter(str(path), rate, x.shape[0], "flac") as writer:
        writer.write(x)
    return path


@pytest.mark.parametrize("name", sorted(audio_baselines.CODECS))
def test_baseline_round_trip_at_the_target_rate_aligned_and_better_with_rate(name, music_file) -> None:
    codec = audio_baselines.get(name)
    offset, magic = MAGIC[name]
    rows = []
    with AudioReader(music_file) as reader:
        info = reader.info
        reference = next(reader.chunks(info.frames))
        for kbps in LOW_HIGH[name]:
            data = codec.encode(reader, kbps)
            assert data[offset : offset + len(magic)] == magic
            decoded = codec.decode(data, info)
            assert decoded.shape == reference.shape and decoded.dtype == np.float32
            bitrate = 8 * len(data) * info.sample_rate / info.frames / 1000
            assert bitrate == pytest.approx(kbps, rel=0.15)
            # The container's priming count was honoured: untrimmed, AAC would lag 1024 samples,
            # MP3 1105, Opus 312 at 48 kHz. Opus keeps a sub-sample phase offset of its own.
            assert abs(best_lag(reference, decoded)) <= 1
            rows.append((snr_db(reference, decoded), si_sdr_db(reference, decoded),
                         mel_distance(reference, decoded, info.sample_rate)))
    (snr_low, si_sdr_low, mel_low), (snr_high, si_sdr_high, mel_high) = rows
    assert 5.0 < snr_low < snr_high and 5.0 < si_sdr_low < si_sdr_high
    assert mel_high < mel_low < 2.0


def test_lnc_eval_codec_opus_writes_the_audio_results_json(data_dir, music_file, tmp_path, capsys) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "music.flac").symlink_to(music_file)
    (folder / "speech.wav").symlink_to(data_dir / "audio" / SPEECH)  # mono, and 16 kHz, which Opus takes as is
    (folder / "notes.txt").write_text("not audio")
    out = tmp_path / "opus.json"
    assert main(["eval", "--codec", "opus", "-q", "16", "64", "--dataset", str(folder), "--json", str(out),
                 "--per-image"]) == 0
    assert "SI-SDR dB" in capsys.readouterr().out

    curve = json.loads(out.read_text())
    assert curve["name"] == "Opus" and "libopus" in curve["description"]
    res = curve["results"]
    assert set(res) == {"bitrate", "snr", "si-sdr", "mel-distance", "encoding_time", "decoding_time", "quality"}
    assert res["quality"] == [16.0, 64.0] and res["bitrate"][0] < res["bitrate"][1]
    assert res["si-sdr"][0] < res["si-sdr"][1] and res["mel-distance"][0] > res["mel-distance"][1]
    assert sorted(curve["per-image"]) == ["music.flac", "speech.wav"]
    with AudioReader(folder / "speech.wav") as reader:  # the rate counts every byte of the Ogg file
        data = audio_baselines.get("opus").encode(reader, 64)
        frames, rate = reader.info.frames, reader.info.sample_rate
    assert curve["per-image"]["speech.wav"]["bitrate"][1] == pytest.approx(8 * len(data) * rate / frames / 1000)


def test_a_codec_on_the_other_kind_of_dataset_is_one_error_line(data_dir, music_file, tmp_path, capsys) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "music.flac").symlink_to(music_file)
    assert main(["eval", "--codec", "jpeg", "--dataset", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnc: error:") and "no images" in err and err.count("\n") == 1
    assert main(["eval", "--codec", "opus", "--dataset", str(data_dir / "kodak")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnc: error: no audio files") and err.count("\n") == 1
    assert main(["eval", "--codec", "mp3", "-q", "64", "400", "--dataset", str(folder)]) == 2
    assert capsys.readouterr().err == "lnc: error: MP3 quality is a target bit rate in [8, 320] kbit/s, got 400\n"

    surround = tmp_path / "surround"
    surround.mkdir()
    with AudioWriter(str(surround / "three.flac"), 44100, 3, "flac") as writer:
        writer.write(np.zeros((3, 4410), np.float32))
    assert main(["eval", "--codec", "aac", "-q", "64", "--dataset", str(surround)]) == 2
    err = capsys.readouterr().err  # found once the file is opened: after the (cleared) progress bar
    assert err.endswith("\rlnc: error: the AAC baseline codes mono or stereo audio, not 3 channels\n")
    assert err.count("lnc: error:") == 1 and "Traceback" not in err


def test_speech_metrics_rank_noise_levels_on_real_speech(data_dir) -> None:
    """PESQ-wb and STOI on the 16 kHz VCTK clip (and its 44.1 kHz stereo JFK peer, resampled and
    averaged to mono): the clean signal scores the scale's top, more noise scores lower."""
    from lnc.tools.eval.audio_metrics import pesq_wb, stoi

    for name, seconds in ((SPEECH, 3.0), ("jfk.flac", 4.0)):
        x, rate = excerpt(data_dir / "audio" / name, seconds)
        assert pesq_wb(x, x, rate) > 4.5 and stoi(x, x, rate) > 0.999
        scores = [(pesq_wb(x, with_noise(x, snr), rate), stoi(x, with_noise(x, snr), rate)) for snr in (30.0, 5.0)]
        assert scores[0][0] > scores[1][0] + 0.5 and scores[0][1] > scores[1][1]
