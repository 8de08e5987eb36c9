"""``lnc models``: the codec architectures and the shipped weights."""
from __future__ import annotations

import argparse
import json



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
            "rate_points": m.config.get("rate_points", 0),
            "default": m.name == DEFAULT_MODEL,
            "size_bytes": m.path.stat().st_size,
            "trained": m.metadata.get("lnc.trained", ""),
        }
        for m in shipped_models()
    ]
    if args.json:
        print(json.dumps({"architectures": sorted(ARCHITECTURES), "models": models}, indent=2))
        return 0
    print("architectures: " + ", ".join(sorted(ARCHITECTURES)))
    print("shipped models:")
    for m in models:
        rates = f"-q 1..{m['rate_points']}" if m["rate_points"] else "fixed rate"
        mark = " (default)" if m["default"] else ""
        print(f"  {m['name']}{mark}: {m['architecture']}, {rates}, {m['size_bytes'] / 1e6:.1f} MB  {m['trained']}")
    return 0
