"""Audio distortion metrics on float waveforms ``[channels, frames]`` in [-1, 1], one value per file.

- ``snr_db``: plain signal-to-noise ratio over all channels, the waveform-exact measure.
- ``si_sdr_db``: scale-invariant SDR (Le Roux, Wisdom, Erdogan & Hershey 2019, "SDR – half-baked
  or well done?", arXiv:1811.02508) per channel on zero-mean signals, averaged over channels: it
  forgives a gain error, which SNR counts as noise.
- ``mel_distance``: the multi-scale mel distance that DAC (Kumar et al. 2023, arXiv:2306.06546)
  trains with and reports as ``mel``: the L1 distance between log10 mel magnitudes, summed over
  seven STFT scales. It is phase-blind, so it rates codecs that do not reproduce the waveform
  (low-rate Opus, generative decoders) on what is heard rather than on sample errors.

torch and torchaudio are imported on first use, so the commands that only read results start fast.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from lnc.entropy.errors import InputError

# DAC's MelSpectrogramLoss as configured in its conf/base.yml (pow 1, mag_weight 0, log_weight 1):
# window lengths (= n_fft, hop a quarter of it) and mel bands per scale, and the floor under the log.
MEL_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
MEL_BANDS = (5, 10, 20, 40, 80, 160, 320)
MEL_CLAMP = 1e-5
MEL_MIN_FRAMES = MEL_WINDOWS[-1] // 2 + 1
"""Shortest signal the centred, reflect-padded 2048-sample STFT can take."""


def _check_pair(reference: np.ndarray, decoded: np.ndarray) -> None:
    if reference.shape != decoded.shape or reference.ndim != 2:
        raise ValueError(f"need two [channels, frames] arrays of one shape, got {reference.shape} and {decoded.shape}")


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of ``decoded`` against ``reference`` (same shape)."""
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {decoded.shape}")
    noise = float(np.mean((reference.astype(np.float64) - decoded) ** 2))
    signal = float(np.mean(reference.astype(np.float64) ** 2))
    return 10.0 * np.log10(max(signal, 1e-20) / max(noise, 1e-20))


def si_sdr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Scale-invariant SDR in dB, per channel on zero-mean signals, averaged over the channels.

    ``decoded`` is split into ``a·reference`` (the least-squares gain ``a``) and the rest, and the
    ratio of their energies is the SI-SDR. Channels whose reference is digital silence have no
    target to project on and are left out of the average (unless every channel is silent).
    """
    _check_pair(reference, decoded)
    target = reference.astype(np.float64)
    target -= target.mean(axis=1, keepdims=True)
    estimate = decoded.astype(np.float64)
    estimate -= estimate.mean(axis=1, keepdims=True)
    energy = np.sum(target**2, axis=1)
    gain = np.sum(estimate * target, axis=1) / np.maximum(energy, 1e-20)
    projection = gain[:, None] * target
    signal = np.sum(projection**2, axis=1)
    noise = np.sum((estimate - projection) ** 2, axis=1)
    per_channel = 10.0 * np.log10(np.maximum(signal, 1e-20) / np.maximum(noise, 1e-20))
    audible = energy > 0
    return float(np.mean(per_channel[audible] if audible.any() else per_channel))


@lru_cache(maxsize=4)
def _mel_spectrograms(sample_rate: int) -> tuple:
    """One torchaudio ``MelSpectrogram`` per DAC scale at ``sample_rate``.

    They compute what DAC's audiotools does: a centred, reflect-padded STFT with a periodic Hann
    window as long as the FFT, magnitudes (power 1), and librosa's default mel filters (Slaney mel
    scale and area normalisation) from 0 Hz to Nyquist.
    """
    from torchaudio.transforms import MelSpectrogram

    # The short windows have more mel bands than frequency bins can fill (DAC's own configuration
    # does too); torchaudio's warning about the empty bands says nothing a user can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
        return tuple(
            MelSpectrogram(sample_rate, n_fft=window, hop_length=window // 4, n_mels=bands, power=1.0,
                           center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")
            for window, bands in zip(MEL_WINDOWS, MEL_BANDS)
        )


def mel_distances(reference: "torch.Tensor", decoded: "torch.Tensor", sample_rate: int) -> "torch.Tensor":
    """:func:`mel_distance` of each item of two ``[B, channels, frames]`` batches, as a ``[B]`` tensor
    that gradients flow through (the training loss of :mod:`lnc.train.losses` uses it), in float32."""
    import torch

    if reference.shape != decoded.shape or reference.dim() != 3:
        raise ValueError(f"need two [B, channels, frames] tensors of one shape, got {tuple(reference.shape)} "
                         f"and {tuple(decoded.shape)}")
    if reference.shape[-1] < MEL_MIN_FRAMES:
        raise InputError(f"the mel distance needs at least {MEL_MIN_FRAMES} sample frames, got {reference.shape[-1]}")
    pair = torch.stack([reference, decoded]).float()
    total = pair.new_zeros(reference.shape[0])
    with torch.autocast(pair.device.type, enabled=False):
        for mel in _mel_spectrograms(sample_rate):
            x, y = mel.to(pair.device)(pair).clamp(min=MEL_CLAMP).log10()
            total = total + torch.abs(x - y).flatten(1).mean(1)
    return total


def mel_distance(reference: np.ndarray, decoded: np.ndarray, sample_rate: int) -> float:
    """DAC's multi-scale mel distance: per scale, the mean over channels, bands and STFT frames of
    ``|log10(max(mel(reference), 1e-5)) - log10(max(mel(decoded), 1e-5))|``, summed over the scales.

    0 for identical signals. Measured at the file's own sample rate (DAC's evaluation resamples to
    44.1 kHz first and calls the result ``mel-44k``).
    """
    import torch

    _check_pair(reference, decoded)
    with torch.no_grad():
        pair = [torch.from_numpy(np.asarray(a, dtype=np.float32))[None] for a in (reference, decoded)]
        return float(mel_distances(*pair, sample_rate)[0])


SPEECH_RATE = 16000
"""PESQ wide-band is defined at 16 kHz; the speech metrics resample to it."""


def _speech(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """A ``[channels, frames]`` waveform as float64 mono at :data:`SPEECH_RATE`."""
    import torch
    from torchaudio.functional import resample

    mono = torch.from_numpy(np.asarray(wave, dtype=np.float32).mean(axis=0))
    if sample_rate != SPEECH_RATE:
        mono = resample(mono, sample_rate, SPEECH_RATE)
    return mono.double().numpy()


def pesq_wb(reference: np.ndarray, decoded: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, the ``pesq`` package's implementation), MOS-LQO 1.04–4.64, on
    the channels' mean resampled to 16 kHz. ``InputError`` for a signal PESQ finds no speech in."""
    from pesq import pesq
    from pesq.cypesq import PesqError

    _check_pair(reference, decoded)
    try:
        return float(pesq(SPEECH_RATE, _speech(reference, sample_rate), _speech(decoded, sample_rate), "wb"))
    except PesqError as exc:
        raise InputError(f"PESQ cannot rate this signal: {exc}") from None


def stoi(reference: np.ndarray, decoded: np.ndarray, sample_rate: int) -> float:
    """Short-time objective intelligibility (Taal et al. 2011, the ``pystoi`` package), 0–1, on the
    channels' mean resampled to 16 kHz (STOI itself works at 10 kHz)."""
    from pystoi import stoi as _stoi

    _check_pair(reference, decoded)
    return float(_stoi(_speech(reference, sample_rate), _speech(decoded, sample_rate), SPEECH_RATE, extended=False))
