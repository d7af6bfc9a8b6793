"""Small filesystem helpers shared by everything that writes files atomically.

A file is written under a hidden temporary name in its destination folder (the same filesystem,
so the final :func:`os.replace` is atomic) and renamed into place only when complete: a reader
sees the previous file or the whole new one, never a partial one. :func:`atomic_path` does this
for a file written in one go; writers that stream (:class:`restorer.media.VideoWriter`) or swap a
folder (:class:`restorer.data.store.DatasetWriter`) use :func:`temp_file_beside` and
:func:`set_default_mode` themselves.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".restorer-tmp-"


def set_default_mode(path: Path) -> None:
    """mkstemp makes files private (0600); a finished file gets the usual umask mode instead."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def temp_file_beside(path: Path, suffix: str | None = None) -> Path:
    """Create an empty hidden temp file in ``path``'s folder and return its path.

    The suffix defaults to ``path``'s, for tools that pick a format from the name. Raises
    :class:`OSError` when the folder is missing or not writable.
    """
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent,
                               suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    return Path(tmp)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk, so that a crash after the rename cannot leave it empty."""
    fd = os.open(path, os.O_RDWR)  # Windows' fsync needs a writable descriptor
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write; on success it replaces ``path``.

    When the body returns, the temp file gets the default mode (mkstemp's is private), is
    flushed to disk when ``durable``, and is renamed over ``path``. When the body raises, the
    temp file is deleted and ``path`` is left as it was. The folder must exist.

    Examples
    --------
    >>> with atomic_path(out) as tmp:  # doctest: +SKIP
    ...     tmp.write_bytes(data)
    """
    path = Path(path)
    tmp = temp_file_beside(path)
    try:
        yield tmp
        set_default_mode(tmp)
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
