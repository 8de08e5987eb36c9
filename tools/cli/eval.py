"""``lnc eval``: a codec's rate-distortion curve on a dataset of images, audio files or video clips, from real files.

Images are measured by :mod:`lnc.tools.eval.image` (whole-file bpp, PSNR, MS-SSIM, LPIPS), audio by
:mod:`lnc.tools.eval.audio` (whole-file bit rate in kbit/s, SNR, SI-SDR, mel distance), video by
:mod:`lnc.tools.eval.video` (bpp and kbit/s of all coded bytes, per-frame PSNR-RGB/Y/U/V/YUV and
MS-SSIM, at one intra period); all write CompressAI's results JSON. ``--codec`` picks a classical
codec of any kind, and with it the kind of dataset it reads; a learned codec reads the kind its
modality says.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lnc.entropy.errors import InputError
from lnc.tools.eval import (
    audio_baselines, datasets, image_baselines as baselines, image_metrics as metrics, results, video_baselines,
)
from lnc.tools.eval.image import LearnedCodec, RateCodec, evaluate, summary_table
from lnc.tools.pipeline import DEFAULT_INTRA_PERIOD
from lnc.tools.io.files import check_output, write_output


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _intra_period(text: str) -> int:
    value = int(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError("must be at least 1, or -1 for an intra frame on the first frame only")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure a codec's rate-distortion curve on a dataset of images, audio files or video clips",
        description=(
            "Encode and decode every image (audio file, video clip) of a dataset at each rate point, measure "
            "the rate from the real coded bytes (bpp, or kbit/s for audio) and PSNR / MS-SSIM (/ LPIPS) "
            "on 8-bit RGB (SNR / SI-SDR / mel distance for audio; per-frame PSNR-RGB/Y/U/V/YUV and "
            "MS-SSIM for video), and report the averages in CompressAI's results JSON."
        ),
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-m", "--model", help="learned codec name (default: the shipped default model)")
    which.add_argument(
        "--codec", choices=(*baselines.CODECS, *audio_baselines.CODECS, *video_baselines.CODECS),
        help="a classical codec instead of a learned one (audio: quality = target kbit/s; video: quality = CRF)",
    )
    parser.add_argument(
        "-q", "--quality", type=float, nargs="+", metavar="Q",
        help="rate points (default: every point the model offers, or the codec's default sweep)",
    )
    parser.add_argument(
        "--dataset", required=True,
        help="kodak, clic (under $LNC_DATA), or a folder of images; for audio codecs speech (16 kHz mono, "
             "with PESQ-wb and STOI), music, or a folder of audio files; for video codecs hevc-d "
             "(BasketballPass 416x240, 64 frames), yuv (the raw .yuv clips), video (both), or one clip "
             "(a video file, a .yuv named with its WxH, or a folder of PNG frames)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write the results here")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing --json file")
    parser.add_argument("--per-image", action="store_true", help="keep per-image (per-file) values in the JSON")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N images (audio files, clips)")
    parser.add_argument("--frames", type=_positive_int, metavar="N", help="video: only the first N frames of each clip")
    parser.add_argument(
        "--intra-period", type=_intra_period, metavar="N",
        help=f"video: an intra frame every N frames (default {DEFAULT_INTRA_PERIOD}, as DCVC tests; -1: the first frame only)",
    )
    parser.add_argument(
        "--refine", type=_positive_int, metavar="STEPS", help="learned codecs: encoder-side latent refinement steps"
    )
    parser.set_defaults(func=run)


def _json_path(path: Path) -> str:
    """``--json`` as a file name; ``-`` is a file named ``-`` here, not stdout (the table goes there)."""
    text = os.fspath(path)
    return os.path.join(".", text) if text == "-" else text


def _save(curve, args: argparse.Namespace) -> None:
    """Write the results JSON atomically."""
    write_output(_json_path(args.json), results.dumps(curve).encode(), args.force)
    print(f"wrote {args.json}")


def _qualities(args: argparse.Namespace, codec) -> tuple[float, ...]:
    """The rate points to measure (``-q``, else the codec's sweep), each checked before any coding."""
    qualities = tuple(args.quality) if args.quality else codec.qualities
    for quality in qualities:
        codec.check_quality(quality)
    return qualities


def _report(args: argparse.Namespace, curve, table: str, count: str) -> int:
    """Print the summary table of a measured curve and write its JSON when asked."""
    print(f"{curve.name} on {args.dataset} ({count})")
    print(table)
    if args.json:
        _save(curve, args)
    return 0


def _run_audio(args: argparse.Namespace, codec: LearnedCodec | audio_baselines.AudioBaseline) -> int:
    from lnc.tools.eval import audio

    if isinstance(codec, LearnedCodec):
        codec = audio.LearnedAudioCodec(codec)
    qualities = _qualities(args, codec)
    clips, name, speech = audio.audio_clips(args.dataset, args.limit)
    curve = audio.evaluate(codec, clips, qualities, args.per_image, speech, name)
    return _report(args, curve, audio.summary_table(curve), f"{len(clips)} files")


def _run_video(args: argparse.Namespace, codec: LearnedCodec | video_baselines.VideoBaseline) -> int:
    from lnc.tools.eval import video

    if isinstance(codec, LearnedCodec):
        codec = video.LearnedVideoCodec(codec)
    qualities = _qualities(args, codec)
    intra_period = DEFAULT_INTRA_PERIOD if args.intra_period is None else args.intra_period
    clips, name = video.video_clips(args.dataset, args.limit)
    curve = video.evaluate(codec, clips, qualities, intra_period, args.frames, args.per_image, name)
    return _report(args, curve, video.summary_table(curve), f"{len(clips)} clips")


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_output(_json_path(args.json), args.force)  # before the long evaluation, not after it
    if args.codec and args.refine:
        raise InputError("--refine applies to learned codecs only")
    if args.codec in video_baselines.CODECS:
        return _run_video(args, video_baselines.get(args.codec))
    if args.codec in audio_baselines.CODECS:
        return _run_audio(args, audio_baselines.get(args.codec))
    codec: RateCodec = baselines.get(args.codec) if args.codec else LearnedCodec(args.model, args.refine or 0)
    modality = codec.codec.modality if isinstance(codec, LearnedCodec) else "image"
    if args.refine and modality != "image":
        raise InputError("--refine applies to image codecs only")
    if modality == "video":
        return _run_video(args, codec)
    if args.frames or args.intra_period is not None:
        raise InputError("--frames and --intra-period apply to video codecs only")
    if modality == "audio":
        return _run_audio(args, codec)
    paths = datasets.image_paths(args.dataset, args.limit)
    qualities = _qualities(args, codec)
    lpips, reason = metrics.load_lpips(datasets.data_root())
    if lpips is None:
        print(f"lnc: LPIPS skipped: {reason}", file=sys.stderr)
    curve = evaluate(codec, paths, qualities, lpips, args.per_image)
    return _report(args, curve, summary_table(curve), f"{len(paths)} images")
