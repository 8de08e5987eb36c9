"""``lnc info FILE.lnc [--json]``: what a ``.lnc`` file holds and what it costs."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from lnc.entropy import container
from lnc.entropy.chunked import ChunkReader, open_reader
from lnc.entropy.container import Header, Modality

# Geometry fields worth showing per modality; any other field is shown only if not its default.
_RELEVANT = {
    Modality.IMAGE: ("height", "width", "channels", "bit_depth"),
    Modality.VIDEO: ("height", "width", "channels", "bit_depth", "frames", "fps"),
    Modality.AUDIO: ("channels", "bit_depth", "frames", "sample_rate"),
    Modality.OTHER: (),
}
_MAX_CHUNK_ROWS = 16
_GEOMETRY = [
    f for f in dataclasses.fields(Header) if f.name not in ("modality", "codec", "weights_hash", "quality")
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show the header, stream layout, chunks and bit rate of a .lnc file",
        description="Show the header, stream layout, every chunk's streams and the bit rate of a .lnc file, checking it fully.",
    )
    parser.add_argument("file", help=".lnc file to inspect, or - to read standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def describe(reader: ChunkReader, total_bytes: int) -> dict:
    """The facts ``lnc info`` prints, as a JSON-ready dict: header, stream layout, every chunk's
    stream sizes (checked against its CRC), the extra sections, and the rate of the whole file."""
    h, layout = reader.header, reader.layout
    info: dict = {
        "version": reader.version,
        "modality": h.modality.name.lower(),
        "codec": h.codec,
        "weights_hash": h.weights_hash.hex(),
        "quality": h.quality,
    }
    info.update({f.name: getattr(h, f.name) for f in _GEOMETRY})
    info["streams"] = list(layout.streams)
    info["chunk_span"] = layout.span
    info["items_per_chunk"] = layout.items
    info["checksummed"] = layout.checksummed
    from lnc.codecs.registry import decoder_problem  # torch's import, only once the file parsed

    problem = decoder_problem(h.codec, h.weights_hash, layout.streams)
    info["decodable"] = problem is None
    if problem:
        info["problem"] = problem
    video_class = _video_class(h.codec) if h.modality is Modality.VIDEO else None
    info["chunks"], frames = [], []
    for items in reader.chunks():
        info["chunks"].append([{"name": name, "bytes": len(payload)} for item in items
                               for name, payload in item.streams.items()])
        if h.modality is Modality.VIDEO:
            frames.append({"bits": 8 * sum(len(p) for item in items for p in item.streams.values())})
            if video_class is not None:
                frames[-1]["type"] = "I" if video_class.is_intra(items[0]) else "P"
    if frames:
        info["frames_coded"] = frames
    info["extras"] = [{"name": name, "bytes": len(payload)} for name, payload in reader.extras().items()]
    payload = sum(s["bytes"] for chunk in info["chunks"] for s in chunk) + sum(e["bytes"] for e in info["extras"])
    info["overhead_bytes"] = total_bytes - payload
    info["total_bytes"] = total_bytes
    bits = 8 * total_bytes
    if h.modality in (Modality.IMAGE, Modality.VIDEO):
        info["bpp"] = bits / (h.height * h.width * h.frames)
    if h.modality is Modality.VIDEO and h.fps > 0:
        info["kbps"] = bits * h.fps / h.frames / 1000
    if h.modality is Modality.AUDIO:
        info["kbps"] = bits * h.sample_rate / h.frames / 1000
    return info


def _video_class(name: str):
    """The codec class of the shipped video model ``name`` (which tells frame types apart), else None."""
    from lnc.codecs.registry import ARCHITECTURES, shipped_models

    model = next((m for m in shipped_models() if m.name == name), None)
    return ARCHITECTURES.get(model.architecture) if model is not None else None


def _text(name: str, h: Header, info: dict) -> str:
    rows = [("file", name), ("version", str(info["version"])), ("modality", info["modality"]), ("codec", h.codec)]
    rows += [("weights hash", info["weights_hash"]), ("quality", str(h.quality))]
    for f in _GEOMETRY:
        value = getattr(h, f.name)
        if f.name in _RELEVANT[h.modality] or value != f.default:
            rows.append((f.name.replace("_", " "), f"{value:g}" if isinstance(value, float) else str(value)))
    unit = {Modality.IMAGE: "px tiles"}.get(h.modality, "frames")
    rows.append(("streams", f"{', '.join(info['streams'])}; {len(info['chunks'])} chunks of {info['chunk_span']} {unit}"
                 + (f", {info['items_per_chunk']} items each" if info["items_per_chunk"] > 1 else "")))
    frames = info.get("frames_coded")
    for k, chunk in enumerate(info["chunks"][:_MAX_CHUNK_ROWS]):
        label = f"frame {k}" + (f" ({frames[k]['type']})" if frames and "type" in frames[k] else "")
        detail = ", ".join(f"{s['name']} {s['bytes']} B" for s in chunk if s["bytes"] or not frames)
        rows.append((label if frames else f"chunk {k}",
                     f"{frames[k]['bits']} bits: {detail}" if frames else detail))
    if len(info["chunks"]) > _MAX_CHUNK_ROWS:
        rows.append(("", f"… {len(info['chunks']) - _MAX_CHUNK_ROWS} more chunks (--json lists all)"))
    rows += [(f"extra {e['name']}", f"{e['bytes']} B") for e in info["extras"]]
    rows.append(("decoder", f"the shipped {h.codec}" if info["decodable"] else f"none: {info['problem']}"))
    rows += [("overhead", f"{info['overhead_bytes']} B"), ("total", f"{info['total_bytes']} B")]
    if "bpp" in info:
        rows.append(("bits per pixel", f"{info['bpp']:.4f}"))
    if "kbps" in info:
        rows.append(("kbit/s", f"{info['kbps']:.3f}"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def run(args: argparse.Namespace) -> int:

    if args.file == "-":
        data = sys.stdin.buffer.read(container.MAX_FILE_BYTES + 1)
        source, total, name = data, len(data), "<stdin>"
    else:
        source, total, name = args.file, os.path.getsize(args.file), args.file
    with open_reader(source) as reader:
        info = describe(reader, total)
    if args.json:
        print(json.dumps({"file": name, **info}, indent=2))
    else:
        print(_text(name, reader.header, info))
    return 0
