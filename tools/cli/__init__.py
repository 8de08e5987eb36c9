"""The ``lnc`` command: one entry point, one module per subcommand in this package.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func=run`` on it. Every failure a user can cause surfaces as ``lnc: error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

# Subcommand modules inside lnc.tools.cli, in the order `lnc --help` lists them.
COMMANDS = (
    "encode",
    "decode",
    "info",
    "models",
    "eval",
    "bdrate",
    "plot",
    "grid",
    "train",
    "export",
    "reduce_codebook",
)


def _version() -> str:
    try:
        return version("lnc")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lnc", description="Learned neural codecs: encode, decode, evaluate and train."
    )
    parser.add_argument("--version", action="version", version=f"lnc {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"lnc.tools.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lnc.tools.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(sub)
    return parser


def error(message: str) -> int:
    """Print the one-line error every user-caused failure ends in; return the exit code 2."""
    print(f"lnc: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from lnc.entropy.errors import LncError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LncError as exc:
        return error(str(exc))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        return error(f"{exc.strerror}: {exc.filename}")
    except KeyboardInterrupt:
        return error("interrupted")


if __name__ == "__main__":
    sys.exit(main())
