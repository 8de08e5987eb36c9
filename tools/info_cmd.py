"""``lnc info FILE.lnc [--json]``: what a ``.lnc`` file holds and what it costs."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from lnc.entropy import container
from lnc.entropy.container import Container, Header, Modality

# Geometry fields worth showing per modality; any other field is shown only if not its default.
_RELEVANT = {
    Modality.IMAGE: ("height", "width", "channels", "bit_depth"),
    Modality.VIDEO: ("height", "width", "channels", "bit_depth", "frames", "fps"),
    Modality.AUDIO: ("channels", "bit_depth", "frames", "sample_rate"),
    Modality.OTHER: (),
}
_GEOMETRY = [
    f for f in dataclasses.fields(Header) if f.name not in ("modality", "codec", "weights_hash", "quality")
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show the header, sections and bit rate of a .lnc file",
        description="Show the header, sections and bit rate of a .lnc file, checking it fully.",
    )
    parser.add_argument("file", help=".lnc file to inspect, or - to read standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def describe(c: Container, total_bytes: int) -> dict:
    """The facts ``lnc info`` prints, as a JSON-ready dict (rates only where geometry defines them)."""
    h = c.header
    info: dict = {
        "modality": h.modality.name.lower(),
        "codec": h.codec,
        "weights_hash": h.weights_hash.hex(),
        "quality": h.quality,
    }
    info.update({f.name: getattr(h, f.name) for f in _GEOMETRY})
    info["sections"] = [{"name": name, "bytes": len(payload)} for name, payload in c.sections]
    info["overhead_bytes"] = total_bytes - sum(len(payload) for _, payload in c.sections)
    info["total_bytes"] = total_bytes
    bits = 8 * total_bytes
    if h.modality in (Modality.IMAGE, Modality.VIDEO):
        info["bpp"] = bits / (h.height * h.width * h.frames)
    if h.modality is Modality.VIDEO and h.fps > 0:
        info["kbps"] = bits * h.fps / h.frames / 1000
    if h.modality is Modality.AUDIO:
        info["kbps"] = bits * h.sample_rate / h.frames / 1000
    return info


def _text(name: str, h: Header, info: dict) -> str:
    rows = [("file", name), ("modality", info["modality"]), ("codec", h.codec)]
    rows += [("weights hash", info["weights_hash"]), ("quality", str(h.quality))]
    for f in _GEOMETRY:
        value = getattr(h, f.name)
        if f.name in _RELEVANT[h.modality] or value != f.default:
            rows.append((f.name.replace("_", " "), f"{value:g}" if isinstance(value, float) else str(value)))
    rows += [(f"section {s['name']}", f"{s['bytes']} B") for s in info["sections"]]
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
        c, total, name = container.read(data), len(data), "<stdin>"
    else:
        c, total, name = container.read_file(args.file), os.path.getsize(args.file), args.file
    info = describe(c, total)
    if args.json:
        print(json.dumps({"file": name, **info}, indent=2))
    else:
        print(_text(name, c.header, info))
    return 0
