"""Bit rate of a residual-VQ audio codec's indices under its three priors, and codebook usage.

    python -m lnc.tools.bench.rvq_priors [-m MODEL] [--dataset speech] [-q Q …]

For every clip and rate point the same indices are coded three times: as fixed-length codes
(``log2 K`` bits an index, what EnCodec and DAC send), with the factorized prior (one distribution
per stage) and with the stage context prior; each is a whole ``.lnc`` file as ``lnc encode`` writes
it, and each decodes to the same waveform (checked). Prints kbit/s over all clips, each learned
prior's saving against fixed-length codes, and the usage of the stages' codebooks (fraction of
entries used, perplexity, averaged over the stages sent).
"""
from __future__ import annotations

import argparse
import io

import numpy as np
import torch
from torchaudio.functional import resample

from lnc.codecs import load
from lnc.codecs.audio.rvq import ResidualVQSpeech
from lnc.codecs.latent.indices import INDEX_PRIORS
from lnc.codecs.layers.vq import usage
from lnc.entropy.chunked import open_reader
from lnc.entropy.errors import InputError
from lnc.tools.eval.audio import audio_clips
from lnc.tools.io.audio import AudioReader
from lnc.tools.pipeline.audio import decode_audio_to, encode_audio_to


def _code(codec: ResidualVQSpeech, source, quality: float) -> tuple[bytes, bytes]:
    """The ``.lnc`` file of ``source`` and its decoded WAV."""
    out, wav = io.BytesIO(), io.BytesIO()
    with AudioReader(source) as reader:
        encode_audio_to(out, reader, codec, quality)
    with open_reader(out.getvalue()) as coded:
        decode_audio_to(coded, codec, wav, "wav")
    return out.getvalue(), wav.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="rvq-speech-vr")
    parser.add_argument("--dataset", default="speech", help="speech, music or a folder of audio files")
    parser.add_argument("-q", "--quality", type=float, nargs="+", help="rate points (default: all)")
    args = parser.parse_args(argv)

    codec = load(args.model)
    if not isinstance(codec, ResidualVQSpeech):
        raise InputError(f"{codec.name} is a {codec.architecture} codec, not a residual-VQ one")
    clips, name, _ = audio_clips(args.dataset)
    qualities = args.quality or codec.quality_points
    seconds = 0.0
    for _, source in clips:
        with AudioReader(source) as reader:
            seconds += reader.info.frames / reader.info.sample_rate
    shipped = codec.index_prior
    print(f"{codec.name} on {name} ({len(clips)} clips, {seconds:.1f} s): kbit/s of whole .lnc files")
    print(f"{'quality':>7} {'stages':>6} {'fixed':>8} {'factorized':>10} {'context':>8} {'fact.':>7} "
          f"{'context':>8} {'used':>6} {'perplexity':>10}")
    for quality in qualities:
        sizes = dict.fromkeys(INDEX_PRIORS, 0)
        stages = codec.stage_counts[round(quality) - 1]
        indices = []
        for _, source in clips:
            decoded = []
            for prior in INDEX_PRIORS:
                codec.index_prior = prior
                data, wav = _code(codec, source, quality)
                sizes[prior] += len(data)
                decoded.append(wav)
            codec.index_prior = shipped
            if any(d != decoded[0] for d in decoded[1:]):
                raise AssertionError(f"q{quality:g}: the priors decoded different waveforms")
            with AudioReader(source) as reader, torch.no_grad():
                wave = np.concatenate(list(reader.chunks(1 << 22)), axis=1).mean(0)
                x = torch.from_numpy(wave)
                if reader.info.sample_rate != codec.sample_rate:
                    x = resample(x, reader.info.sample_rate, codec.sample_rate)
            x = x[: x.numel() // codec.downsampling * codec.downsampling].reshape(1, 1, -1)
            indices.append(codec.indices(x, quality)[0])
        kbps = {prior: 8 * size / seconds / 1000 for prior, size in sizes.items()}
        stats = [usage(torch.cat([i[s] for i in indices]), codec.quantizer.num_codes) for s in range(stages)]
        fixed, factorized, context = (kbps[p] for p in INDEX_PRIORS)
        print(f"{quality:7g} {stages:6d} {fixed:8.3f} {factorized:10.3f} {context:8.3f} "
              f"{1 - factorized / fixed:7.1%} {1 - context / fixed:8.1%} "
              f"{np.mean([s['used'] for s in stats]):6.1%} {np.mean([s['perplexity'] for s in stats]):10.1f}")


if __name__ == "__main__":
    main()
