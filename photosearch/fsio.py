"""Durable file writes: a file replaced atomically, and folders whose contents are on disk.

A crash (or a power cut) at any instant leaves the old file or the new one, never half of one:
the new content goes to a hidden temporary sibling, is fsynced, takes the name with
``os.replace``, and the folder is fsynced so that the rename itself survives.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str],
    mode: str = "w+b",
    *,
    encoding: str | None = None,
    suffix: str = "",
) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` when the block ends without an error.

    The file is a temporary ``.{name}.…{suffix}`` beside ``path``; on an error (or Ctrl-C)
    it is deleted and ``path`` stays as it was. ``OSError`` from creating, writing, syncing
    or renaming reaches the caller.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` with ``data`` atomically (text is written as UTF-8)."""
    if isinstance(data, str):
        with atomic_file(path, "w", encoding="utf-8") as f:
            f.write(data)
    else:
        with atomic_file(path) as f:
            f.write(data)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make renames and new names in ``folder`` durable; best effort (POSIX only: Windows has
    no directory handles for it, and some file systems refuse)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_files(folder: str | os.PathLike[str]) -> None:
    """Put the content of every file directly in ``folder`` on disk, then its names, before the
    folder is renamed into place. ``OSError`` from a file (disk full) reaches the caller."""
    for f in Path(folder).iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)
