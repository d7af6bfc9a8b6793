"""Process-wide allocator settings for long exports.

Each exported frame allocates a few dozen full-resolution arrays and frees them again. glibc's
malloc hands memory that large back to the kernel on free (mmap, or trimming the heap top), so
the next frame takes a page fault on every 4 KiB of it. Keeping freed memory for reuse cut the
post-processing thread's CPU by 4-8 ms a PAL SD frame (of about 29) in paired runs; the peak
stays what it was, since the same arrays exist at once either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX / 2); a 1080p float32 RGB frame
# (25 MB) is below it.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Freed memory kept at the heap top before it is given back: enough for the frames in flight.
TRIM_THRESHOLD = 512 * 1024 * 1024


@functools.cache
def reuse_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed frame-sized blocks; True if it took. Elsewhere (macOS,
    Windows, musl) a no-op that returns False: their allocators do not behave so."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("malloc tuned for frame reuse: %s", ok)
    return ok
