"""Keep freed memory in the process, so that each explanation does not fault its buffers in afresh (glibc).

An explanation allocates and frees tensors of a few to tens of megabytes (the top-5 gradients at
DenseNet-121's first block are 16 MB).  glibc's ``malloc`` serves a block above its mmap threshold
(128 KiB at start, raised to the largest block freed so far) with a fresh ``mmap``, and gives the top of
its heap back to the system whenever more than twice that threshold lies free there.  Either way the next
call touches new pages: top-5 at four blocks took about 10,000 page faults a call in a session that
also predicts and switches classes (18-30 ms of system time), none once freed memory stays.

Fixed thresholds turn both off for blocks up to ``MMAP_THRESHOLD`` and heaps up to ``TRIM_THRESHOLD``
free: the process keeps what an explanation used (DenseNet-121's largest takes about 150 MB) for the
next one.  Other C libraries (macOS, Windows, musl) are left as they are.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its moving threshold
TRIM_THRESHOLD = 256 << 20

_applied: bool | None = None


def retain_freed_memory() -> bool:
    """Set glibc's thresholds once per process; True where they are in force."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has mallopt but ignores it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
