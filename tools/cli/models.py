"""``lnc models``: the codec architectures and the shipped weights."""
from __future__ import annotations

import argparse
import json


def _trained(model) -> str:
    """What the model card says of the training: its first line starting "Trained" or the
    steps recorded in the weights."""
    card = model.path.with_suffix(".md")
    if card.is_file():
        for line in card.read_text().splitlines():
            if line.lower().lstrip("*- ").startswith("trained"):
                return line.strip("*- ").strip()
    steps = model.metadata.get("lnc.train.steps")
    return f"{steps} training steps" if steps else ""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list codec architectures and shipped models")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import ARCHITECTURES, DEFAULT_MODEL, shipped_models

    models = [
        {
            "name": m.name,
            "architecture": m.architecture,
            "modality": ARCHITECTURES[m.architecture].modality if m.architecture in ARCHITECTURES else "?",
            "rate_points": m.config.get("rate_points", 0),
            "default": m.name == DEFAULT_MODEL,
            "size_bytes": m.path.stat().st_size,
            "trained": _trained(m),
        }
        for m in shipped_models()
    ]
    if args.json:
        architectures = [{"name": name, "modality": cls.modality} for name, cls in sorted(ARCHITECTURES.items())]
        print(json.dumps({"architectures": architectures, "models": models}, indent=2))
        return 0
    print("architectures: " + ", ".join(sorted(ARCHITECTURES)))
    print("shipped models:")
    for m in models:
        rates = f"-q 1..{m['rate_points']}" if m["rate_points"] else "fixed rate"
        mark = " (default)" if m["default"] else ""
        print(f"  {m['name']}{mark}: {m['modality']} {m['architecture']}, {rates}, {m['size_bytes'] / 1e6:.1f} MB  {m['trained']}")
    return 0
