"""``lnc bdrate``: Bjøntegaard delta rate and quality of test RD curves against an anchor."""
from __future__ import annotations

import argparse
import json
import sys

from lnc.entropy.errors import LncError
from lnc.tools.eval import bdrate, results


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bdrate",
        help="BD-rate and BD-PSNR of RD curves against an anchor",
        description=(
            "BD-rate (%, negative = the test needs less rate) and BD-quality (dB for PSNR) of each "
            "TEST results JSON against ANCHOR, over the range where the curves overlap "
            "(Bjøntegaard, VCEG-M33; pchip as in the JCT-VC/JVET CTC sheet)."
        ),
    )
    parser.add_argument("anchor", metavar="ANCHOR.json")
    parser.add_argument("tests", nargs="+", metavar="TEST.json")
    parser.add_argument("--metric", choices=results.METRICS, default="psnr-rgb")
    parser.add_argument("--method", choices=bdrate.METHODS, default="pchip")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    anchor = results.load(args.anchor)
    # A distance falls as quality rises: compare its negative, and report the gap in its own sign.
    sign = -1.0 if args.metric in results.LOWER_IS_BETTER else 1.0
    rate, values = anchor.points(args.metric)
    anchor_points = (rate, sign * values)
    rows = []
    for path in args.tests:
        test = results.load(path)
        if test.rate_key != anchor.rate_key:
            raise LncError(f"{test.name} counts rate in {test.rate_key}, {anchor.name} in {anchor.rate_key}")
        try:
            test_rate, test_values = test.points(args.metric)
            found = bdrate.compare(*anchor_points, test_rate, sign * test_values, method=args.method)
        except LncError as exc:
            raise type(exc)(f"{test.name} against {anchor.name}: {exc}") from None
        if found.overlap < bdrate.SMALL_OVERLAP:
            print(
                f"lnc: warning: {test.name} and {anchor.name} share only {found.overlap:.0%} of their "
                f"range; the BD figures lean on the interpolation",
                file=sys.stderr,
            )
        rows.append({"test": test.name, "bd_rate": found.bd_rate, "bd_psnr": sign * found.bd_quality})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [["test", "BD-rate (%)", f"BD-{results.METRIC_LABELS[args.metric]}"]]
    table += [[r["test"], f"{r['bd_rate']:+.2f}", f"{r['bd_psnr']:+.4f}"] for r in rows]
    print(f"anchor: {anchor.name} ({args.anchor}); metric {args.metric}; {args.method} interpolation")
    print(results.text_table(table, left=1))
    return 0
