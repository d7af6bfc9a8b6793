"""The stderr drain: a chatty child never blocks, and the start of what it said is kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from restorer.media.stderr import LIMIT, StderrDrain


def test_drain_keeps_the_start_and_never_blocks() -> None:
    # Four times a pipe buffer of warnings: without a reader the child would hang forever.
    script = ("import sys\n"
              "for i in range(4096): sys.stderr.write(f'warning {i:04d} ' + 'x' * 50 + '\\n')")
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    drain = StderrDrain(proc.stderr)
    assert proc.wait(timeout=30) == 0
    drain.join(timeout=5)
    assert drain.text.startswith("warning 0000 ")
    assert LIMIT <= len(drain.text) + 1 < LIMIT + 100  # stops after the line that passes LIMIT
    proc.stderr.close()


def test_drain_needs_a_pipe() -> None:
    with pytest.raises(ValueError, match="stderr=PIPE"):
        StderrDrain(None)
