"""``lnc models``: the codec architectures and the shipped weights."""
from __future__ import annotations

import argparse
import json

COST_SIZE = 256
"""Side of the image ``lnc models --flops`` codes (per-pixel counts do not depend on it)."""


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
    parser.add_argument(
        "--flops", action="store_true",
        help="instead, parameters and MACs/FLOPs per pixel of each shipped image model and of each "
             "image architecture at its paper size (lnc.codecs.costs)",
    )
    parser.set_defaults(func=run)


def _costs() -> list[dict]:
    """:func:`~lnc.codecs.costs.decode_costs` of every shipped image model, then of every image
    architecture at its paper size (random weights: the counts do not depend on them)."""
    from lnc.codecs.costs import PAPER_SIZES, decode_costs
    from lnc.codecs.registry import ARCHITECTURES, build_codec, load, shipped_models

    codecs = [
        (m.name, "shipped", load(m.name)) for m in shipped_models() if ARCHITECTURES[m.architecture].modality == "image"
    ]
    codecs += [
        (name, "paper size", build_codec(name, **PAPER_SIZES.get(name, {})).eval())
        for name, cls in sorted(ARCHITECTURES.items()) if cls.modality == "image"
    ]
    return [
        {"name": name, "kind": kind, "architecture": codec.architecture, "config": codec.config,
         "costs": decode_costs(codec, COST_SIZE)}
        for name, kind, codec in codecs
    ]


def _print_costs(rows: list[dict]) -> None:
    """One line per row: parameters in millions, MACs per pixel in thousands, decoding FLOPs."""
    configs = [" ".join(f"{k}={v}" for k, v in r["config"].items() if k != "rate_points") for r in rows]
    name_width = max(len(r["name"]) for r in rows) + 4
    config_width = max(map(len, configs)) + 2
    from lnc.codecs.costs import PARTS

    headers = ("g_a", "h_a", "g_s", "entropy", "decode", "encode")  # PARTS, as the table names them
    print(f"costs of coding a {COST_SIZE}x{COST_SIZE} image, per pixel "
          "(FlopCounterMode: a multiply-add is 2 FLOPs, MACs = FLOPs / 2)")
    print(f"{'':{name_width + config_width}}{'parameters (M)':^22}{'K MACs per pixel':^48}{'K FLOPs':>9}")
    print(f"{'model':{name_width}}{'config':{config_width}}{'g_a':>7}{'g_s':>7}{'decode':>8}"
          + "".join(f"{h:>8}" for h in headers) + f"{'decode':>9}")
    for kind in ("shipped", "paper size"):
        print(f"{kind}:")
        for row, config in ((r, c) for r, c in zip(rows, configs) if r["kind"] == kind):
            costs = row["costs"]
            params = "".join(f"{costs[p]['parameters'] / 1e6:{w}.2f}" for p, w in
                             (("analysis", 7), ("synthesis", 7), ("decode", 8)))
            per_pixel = "".join(f"{costs[p]['macs_per_pixel'] / 1e3:8.1f}" for p in PARTS)
            print(f"  {row['name']:{name_width - 2}}{config:{config_width}}{params}{per_pixel}"
                  f"{costs['decode']['flops_per_pixel'] / 1e3:9.1f}")


def run(args: argparse.Namespace) -> int:
    from lnc.codecs.registry import ARCHITECTURES, DEFAULT_MODEL, shipped_models

    if args.flops:
        rows = _costs()
        if args.json:
            print(json.dumps({"costs": rows}, indent=2))
        else:
            _print_costs(rows)
        return 0
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
