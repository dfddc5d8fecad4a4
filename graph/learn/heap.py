"""Keep freed memory in the process while the big array passes run (features, GNN training and inference).

glibc serves every allocation above its mmap threshold (128 KB, rising with use to at most 32 MB) with a fresh
``mmap`` and gives it back on free, so a tensor or array larger than 32 MB is page-faulted in and zeroed by the
kernel every time it is allocated. At 1M accounts each [accounts x 32] GNN tensor is 128 MB and a training step
allocates 9 GB of them, and faulting them in took most of a step's CPU time. Served from the heap and not
trimmed, the same memory is reused instead (no fresh pages after the first epoch).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading

try:  # glibc; elsewhere (macOS, Windows) this is a no-op
    _LIBC = ctypes.CDLL(None)
    _MALLOPT = _LIBC.mallopt
    _MALLOC_TRIM = _LIBC.malloc_trim
except (OSError, AttributeError, TypeError):
    _MALLOPT = _MALLOC_TRIM = None

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_depth = 0  # nested or concurrent blocks: the last one out restores
_lock = threading.Lock()
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit, where its dynamic threshold ends up


@contextlib.contextmanager
def reuse_freed_memory():
    """Within the block, no allocation is mmap-ed and the heap is never trimmed, so freed blocks are reused.
    Peak RSS can grow a little (heap fragmentation). On exit the heap's unused top is returned to the system and
    glibc goes back to its steady-state thresholds (mmap above 32 MB, trim above 64 MB), fixed rather than
    adaptive since setting any of them turns adaptation off."""
    global _depth
    if _MALLOPT is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _MALLOPT(_M_MMAP_MAX, 0)
            _MALLOPT(_M_TRIM_THRESHOLD, 2**31 - 1)  # an int: trim only when 2 GB lie free at the top
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _MALLOPT(_M_MMAP_MAX, 65536)
                _MALLOPT(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
                _MALLOPT(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD_MAX)
                _MALLOC_TRIM(0)
