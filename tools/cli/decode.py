"""``lnc decode``: ``.lnc`` bitstream → image, video or audio file; the pipeline follows the header's modality."""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from lnc.entropy.chunked import open_reader
from lnc.entropy.container import Modality
from lnc.entropy.errors import LncError
from lnc.tools.io.files import check_output, default_output, open_output, read_input

_IMAGE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
_AUDIO_FORMATS = {".wav": "wav", ".flac": "flac"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode a .lnc file to an image (PNG by default), a video (y4m by default) or audio (WAV by default)",
        description="Decode a .lnc bitstream to a lossless image file, a video (y4m, lossless FFV1 mkv or a "
        "folder of PNG frames) or a 16-bit WAV/FLAC file.",
    )
    parser.add_argument("input", help=".lnc file, or - for stdin")
    parser.add_argument(
        "-o", "--output",
        help="output image (.png, .bmp, .tif, lossless .webp), video (.y4m, .mkv, or a new folder for PNG frames) "
        "or audio (.wav, .flac), or - for PNG/y4m/WAV on stdout",
    )
    parser.add_argument(
        "-m", "--model",
        help="shipped model name or .safetensors path to decode with "
        "(default: the shipped model the bitstream names)",
    )
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    parser.set_defaults(func=run)


def _format(output: str, formats: dict[str, str], default: str, kind: str) -> str:
    fmt = default if output == "-" else formats.get(Path(output).suffix.lower())
    if fmt is None:
        raise LncError(f"cannot write {output}: a decoded {kind} is written as {', '.join(formats)}")
    return fmt


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import load, load_shipped

    source = read_input(args.input) if args.input == "-" else args.input
    with open_reader(source) as reader:
        if reader.header.modality is Modality.VIDEO:
            return _decode_video(args, reader)
        audio = reader.header.modality is Modality.AUDIO
        output = args.output or default_output(args.input, ".wav" if audio else ".png")
        if audio:
            fmt = _format(output, _AUDIO_FORMATS, "wav", "sound")
        else:
            fmt = _format(output, _IMAGE_FORMATS, "PNG", "picture")
        check_output(output, args.force, inputs=(args.input,))
        # A bitstream may only name a shipped model: a weights file of the user's comes from -m.
        codec = load(args.model) if args.model else load_shipped(reader.header.codec)
        if audio:
            from lnc.tools.pipeline.audio import decode_audio_to

            with open_output(output, args.force) as out:
                decode_audio_to(reader, codec, out, fmt)
            return 0
        from lnc.tools.pipeline.image import decode_picture

        picture = decode_picture(reader, codec)
    buffer = io.BytesIO()
    picture.to_image().save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    with open_output(output, args.force) as out:
        out.write(buffer.getvalue())
    return 0


def _decode_video(args: argparse.Namespace, reader) -> int:
    from tqdm import tqdm

    from lnc.codecs.registry import load, load_shipped
    from lnc.tools.io.video import VideoWriter, output_format
    from lnc.tools.pipeline.video import decode_video_frames

    header = reader.header
    output = args.output or default_output(args.input, ".y4m")
    fmt = output_format(output)
    check_output(output, args.force, inputs=(args.input,))
    codec = load(args.model) if args.model else load_shipped(header.codec)
    frames = tqdm(decode_video_frames(reader, codec), total=header.frames, desc="decoding", unit="frame", leave=False, disable=None)
    if fmt == "png":
        with VideoWriter(output, header.width, header.height, header.fps, fmt) as writer:
            for frame in frames:
                writer.write(frame)
        return 0
    with open_output(output, args.force) as out, VideoWriter(out, header.width, header.height, header.fps, fmt) as writer:
        for frame in frames:
            writer.write(frame)
    return 0
