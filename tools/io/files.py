"""Reading inputs and writing outputs for the CLI: ``-`` for stdin/stdout, atomic files, --force.

An output is a new or regular file written atomically (a symlink's target, the link kept), or a
character device or FIFO written through in place (see :func:`lnc.entropy.container.atomic_open`).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lnc.entropy.container import MAX_FILE_BYTES, atomic_open, output_target
from lnc.entropy.errors import LncError


MAX_INPUT_BYTES = MAX_FILE_BYTES
"""The largest input read whole (stdin, or a ``.lnc`` file given by path): the container's limit."""


def error_reason(exc: BaseException) -> str:
    """An exception's reason without file names or object reprs (the caller names the file)."""
    text = getattr(exc, "strerror", None) or str(exc)
    if not text:
        text = "unexpected end of file" if isinstance(exc, EOFError) else type(exc).__name__
    return text


class AbandonOnError:
    """The ``with`` protocol of a file writer: :meth:`close` when the block ends normally,
    ``_abandon`` (drop what was written) when it raises, so no partial output is left."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon()

    def close(self) -> None:
        raise NotImplementedError

    def _abandon(self) -> None:
        raise NotImplementedError


def read_input(path: str) -> bytes:
    """All bytes of ``path``, or of stdin when ``path`` is ``-``; the size is checked before the
    bytes are read (a file) or while they are (stdin), never after reading an unbounded input."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise LncError(f"standard input holds more than {MAX_INPUT_BYTES} bytes")
        return data
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_INPUT_BYTES:
            raise LncError(f"{path} is {size} bytes, more than {MAX_INPUT_BYTES}")
        return f.read(MAX_INPUT_BYTES + 1)


def default_output(path: str, suffix: str) -> str:
    """``photo.png`` → ``photo.lnc``: the output name when ``-o`` is not given."""
    if path == "-":
        raise LncError("reading from stdin needs -o (a file, or - for stdout)")
    return str(Path(path).with_suffix(suffix))


def check_output(path: str, force: bool, inputs: Iterable[str] = ()) -> None:
    """Fail before any work when ``path`` cannot or may not be written: it is one of ``inputs``
    (the same file, also through a symlink or a hard link), it exists (without ``force``), it is a
    directory or another special file that is neither a character device nor a FIFO, or its folder
    is missing or not writable. ``-`` (stdout) always passes; so does an input ``-`` (stdin)."""
    if path == "-":
        return
    try:
        target, kind = output_target(path)
    except OSError as exc:
        raise LncError(f"cannot write {path}: {exc.strerror}") from None
    if kind == "file":
        for source in inputs:
            if source != "-" and _same_file(source, target):
                same = os.path.abspath(source) == os.path.abspath(path)
                raise LncError(f"cannot write {path}: it is the input file" + ("" if same else f" {source}"))
    if os.path.lexists(path) and not force:
        raise LncError(f"{path} exists; refusing to overwrite it without --force")
    if kind != "file":
        if not os.access(target, os.W_OK):
            raise LncError(f"cannot write {path}: permission denied")
        return
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise LncError(f"cannot write {path}: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise LncError(f"cannot write {path}: folder {folder} is not writable")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # a missing input is reported where it is read
        return False


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
