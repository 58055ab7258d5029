"""Hand freed heap memory back to the operating system after each cycle.

A cycle allocates and frees tens of MB (query answers, windows, the batch through the model). glibc keeps
freed chunks for reuse, and fragmentation keeps the heap's resident size near its high-water mark; its
``malloc_trim`` returns the free pages. Elsewhere (musl, macOS) it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def release_free_memory() -> bool:
    """Return free heap pages to the OS; True where the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
