"""Reading inputs and writing outputs for the CLI: ``-`` for stdin/stdout, atomic files, --force."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lnc.entropy.container import atomic_open
from lnc.entropy.errors import LncError


def read_input(path: str) -> bytes:
    """All bytes of ``path``, or of stdin when ``path`` is ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def default_output(path: str, suffix: str) -> str:
    """``photo.png`` → ``photo.lnc``: the output name when ``-o`` is not given."""
    if path == "-":
        raise LncError("reading from stdin needs -o (a file, or - for stdout)")
    return str(Path(path).with_suffix(suffix))


def check_output(path: str, force: bool) -> None:
    """Fail before any work when ``path`` exists (without ``force``) or its folder is missing."""
    if path == "-":
        return
    if os.path.exists(path) and not force:
        raise LncError(f"{path} exists; refusing to overwrite it without --force")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LncError(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise LncError(f"cannot write {path}: folder {folder} is not writable")


@contextmanager
def open_output(path: str, force: bool) -> Iterator[BinaryIO]:
    """A binary stream to write ``path`` through piece by piece: stdout for ``-``, else an
    atomic file that appears complete when the block ends, and never partially."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with atomic_open(path, force=force) as f:
            yield f
    except OSError as exc:
        raise LncError(f"cannot write {path}: {exc.strerror}") from None


def write_output(path: str, data: bytes, force: bool) -> None:
    """Write ``data`` to stdout (``-``) or atomically to ``path``: never a partial file."""
    with open_output(path, force) as f:
        f.write(data)
