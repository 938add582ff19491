"""Keep a pixel step's large buffers in the heap between requests.

glibc serves every allocation above its mmap threshold with a fresh ``mmap`` and unmaps it on
``free``, so each request's multi-megabyte arrays (a 1 MP float32 plane is 4 MiB) fault in page by
page again. In a plain process glibc raises that threshold by itself after the first frees; in the
python-backend stubs it did not (measured: 5,700 minor faults per 1 MP mask in ``postprocess``
against 210 for the same ``compose`` in one process, 11 ms of its 25-33). Fixing the mmap threshold
at 32 MiB (glibc's ceiling for ``mallopt``) and the trim threshold at 128 MiB keeps those buffers
mapped: the stub holds its working set between requests instead of returning it each time.
Allocations above 32 MiB (arrays of photos over ~8 MP) are still mapped and returned per request.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def keep_large_buffers() -> str | None:
    """Set the thresholds for this process; returns why not, or None when set (glibc only)."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return f"no glibc mallopt in {name!r}: large buffers are mapped afresh per request"
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        return "mallopt refused the thresholds: large buffers are mapped afresh per request"
    return None
