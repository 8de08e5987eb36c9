"""``lnc train --config configs/image/<model>.yaml [LightningCLI/Trainer flags]``: train a codec."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a codec from a YAML config (LightningCLI: every Trainer flag works)",
        description="All arguments go to LightningCLI (fit by default); `lnc train --help` lists them.",
        add_help=False,
        prefix_chars="+",  # so that --flags reach LightningCLI untouched
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="LightningCLI arguments, e.g. --config FILE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lnc.train.cli import main

    main(list(args.argv))
    return 0
