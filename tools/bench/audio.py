"""Encode and decode speed of learned audio codecs on one clip, next to FLAC through the same I/O.

    python -m lnc.tools.bench.audio [-m MODEL [-m MODEL …]] [--file NAME] [--seconds S] [-q Q] [--repeat 3]
                                    [--opus-kbps 12]

The clip (the first ``--seconds`` of a file in ``$LNC_DATA/audio``) is held in memory as a 16-bit
WAV, and each codec runs the whole file path (WAV bytes → ``.lnc`` bytes → WAV bytes). Prints
seconds (best of ``--repeat``), mega-samples per second (frames × channels) and times real time,
from one run; the FLAC row (a lossless encode and decode of the same WAV) and an Opus row (libopus
through PyAV at ``--opus-kbps``, the codec the learned ones are compared with) are the peers
measured beside them.
"""
from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
import torch

from lnc.codecs import load
from lnc.entropy.chunked import open_reader
from lnc.entropy.errors import InputError
from lnc.tools.eval import audio_baselines
from lnc.tools.eval.datasets import data_root
from lnc.tools.io.audio import AudioReader, AudioWriter
from lnc.tools.pipeline.audio import decode_audio_to, encode_audio_to


def _best(fn: Callable[[], bytes], repeat: int) -> tuple[float, bytes]:
    best, result = float("inf"), b""
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _write(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    out = io.BytesIO()
    with AudioWriter(out, sample_rate, samples.shape[0], fmt, frames=samples.shape[1]) as writer:
        writer.write(samples)
    return out.getvalue()


def _read(data: bytes) -> np.ndarray:
    with AudioReader(data) as reader:
        return np.concatenate(list(reader.chunks(1 << 20)), axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", action="append", dest="models", required=True,
                        help="audio model name or .safetensors path; repeat to compare")
    parser.add_argument("--file", default="librosa_Kevin_MacLeod_-_Vibe_Ace.hq.ogg", help="a file in $LNC_DATA/audio")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the excerpt")
    parser.add_argument("-q", "--quality", type=float, help="rate point (default: the model's default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--opus-kbps", type=float, default=12.0, help="bit rate of the Opus peer")
    args = parser.parse_args(argv)

    with AudioReader(data_root() / "audio" / args.file) as reader:
        rate = reader.info.sample_rate
        samples = np.concatenate(list(reader.chunks(1 << 20)), axis=1)[:, : int(args.seconds * rate)]
    wav = _write(samples, rate, "wav")
    channels, frames = samples.shape
    rows = []
    for model in args.models:
        codec = load(model)
        if codec.modality != "audio":
            raise InputError(f"{codec.name} is an {codec.modality} model, not an audio one")

        def encode() -> bytes:
            out = io.BytesIO()
            with AudioReader(wav) as source:
                encode_audio_to(out, source, codec, args.quality)
            return out.getvalue()

        def decode() -> bytes:
            out = io.BytesIO()
            with open_reader(coded) as reader:
                decode_audio_to(reader, codec, out, "wav")
            return out.getvalue()

        encode_s, coded = _best(encode, args.repeat)
        decode_s, _ = _best(decode, args.repeat)
        rows.append((f"lnc {codec.name}", encode_s, decode_s, len(coded)))
    encode_s, flac = _best(lambda: _write(_read(wav), rate, "flac"), args.repeat)
    decode_s, _ = _best(lambda: _write(_read(flac), rate, "wav"), args.repeat)
    rows.append(("FLAC (lossless, through the same I/O)", encode_s, decode_s, len(flac)))
    opus = audio_baselines.get("opus")
    with AudioReader(wav) as source:
        info = source.info

    def opus_encode() -> bytes:
        with AudioReader(wav) as source:
            return opus.encode(source, args.opus_kbps)

    encode_s, ogg = _best(opus_encode, args.repeat)
    decode_s, _ = _best(lambda: _write(opus.decode(ogg, info), rate, "wav"), args.repeat)
    rows.append((f"Opus {args.opus_kbps:g} kbit/s (libopus, PyAV)", encode_s, decode_s, len(ogg)))

    seconds = frames / rate
    print(f"{args.file}: {seconds:.1f} s, {channels} ch, {rate} Hz; torch threads {torch.get_num_threads()}, "
          f"best of {args.repeat}")
    print(f"{'codec':40} {'encode s':>9} {'decode s':>9} {'enc MS/s':>9} {'dec MS/s':>9} "
          f"{'enc ×RT':>8} {'dec ×RT':>8} {'kbit/s':>8}")
    for name, enc, dec, size in rows:
        print(f"{name:40} {enc:9.3f} {dec:9.3f} {frames * channels / enc / 1e6:9.2f} "
              f"{frames * channels / dec / 1e6:9.2f} {seconds / enc:8.1f} {seconds / dec:8.1f} "
              f"{8 * size / seconds / 1000:8.1f}")


if __name__ == "__main__":
    main()
