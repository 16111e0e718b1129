"""Let freed arrays' memory be reused instead of handed back to the operating system.

A training step allocates and frees the same arrays every time. glibc's malloc serves a
block over its mmap threshold with fresh pages and gives them back to the kernel when it is
freed, and gives back the free top of its heap once more than its trim threshold is free:
both thresholds rise by themselves, but only to the largest block freed (the trim threshold
to twice that), up to 32 MiB, so a step that frees much more than its largest array has its
memory page-faulted in again at every step. Raising the two thresholds below keeps it.

The engine no longer needs this: its layers take their arrays from arrays.py, which keeps
its own memory from call to call (as PyTorch's allocator does), and they page-fault nothing
in step after step with malloc as the process found it (benchmarks/README.md). What is left
for this setting is the rest of a program's arrays (dense layers', the caller's own). It is a
setting of the whole process:
importing cnnlib or calling a layer never applies it; a program that wants it calls
keep_freed_memory() itself.
Each thread allocates from its own malloc arena, which keeps its share too: the process may
hold memory up to its peak again after a large step. Nothing changes off glibc (macOS,
Windows, musl). Set the environment variable CNNLIB_KEEP_FREED_MEMORY=0 to make the call a
no-op.
"""

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>
_MIB = 2**20


def keep_freed_memory(*, largest_reused_block_mib=256, kept_mib=512):
    """Ask glibc to serve blocks up to `largest_reused_block_mib` from its heap and to keep up
    to `kept_mib` of freed memory for reuse. Returns True if the settings were applied."""
    if os.environ.get("CNNLIB_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, largest_reused_block_mib * _MIB)) and bool(
        mallopt(_M_TRIM_THRESHOLD, kept_mib * _MIB)
    )
