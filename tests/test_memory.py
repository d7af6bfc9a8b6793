"""memory: the allocator keeps freed frame-sized blocks, so the next frame reuses them."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

# In a fresh interpreter: the setting is process-wide and sticky.
_FAULTS = """
import resource, sys
import numpy as np
from restorer.memory import reuse_freed_memory
if sys.argv[1] == "tuned":
    assert reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def one_frame():  # a merge's temporaries: a dozen PAL planes alive at once, then freed
    planes = [np.ones((576, 720), np.float32) for _ in range(12)]
    del planes
one_frame()
before = faults()
for _ in range(10):
    one_frame()
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_frames_are_reused_without_page_faults() -> None:
    def run(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True,
                             text=True, check=True)
        return int(out.stdout.strip())

    plain, tuned = run("plain"), run("tuned")
    pages = 12 * 576 * 720 * 4 // resource.getpagesize()  # one frame's temporaries
    assert plain > 5 * pages  # freed and given back, so each frame faults them in afresh
    assert tuned < pages  # kept for reuse: ten frames take fewer faults than one did
