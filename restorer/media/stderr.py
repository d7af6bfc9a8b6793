"""Collect an ffmpeg child's stderr on a background thread.

A child that writes more than a pipe buffer (64 KiB on Linux) of warnings blocks until someone
reads it; the reader and the writer read stdout or feed stdin instead, so stderr is drained here
and only its start is kept, for error messages.
"""

from __future__ import annotations

import threading
from typing import IO

LIMIT = 65536  # bytes kept; the first lines name the problem, the rest repeat it


class StderrDrain:
    """Read ``stream`` to its end on a daemon thread, keeping its first :data:`LIMIT` bytes."""

    def __init__(self, stream: IO[bytes] | None, limit: int = LIMIT) -> None:
        if stream is None:
            raise ValueError("StderrDrain needs the child's stderr pipe (stderr=PIPE)")
        self._buf = bytearray()
        self._limit = limit
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[bytes]) -> None:
        for line in stream:
            if len(self._buf) < self._limit:
                self._buf += line

    def join(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` s) for the child to close its stderr."""
        self._thread.join(timeout)

    @property
    def text(self) -> str:
        """What was kept so far, decoded and stripped."""
        return self._buf.decode("utf-8", "replace").strip()
