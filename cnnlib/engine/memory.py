"""Let freed arrays' memory be reused instead of handed back to the operating system.

A training step allocates and frees the same few dozen megabytes every time (im2col
matrices, gradients). By default glibc's malloc serves large blocks with fresh mmap pages
and gives freed memory back to the kernel, so the next step page-faults it all in again.
Raising the two thresholds below keeps that memory in the process for the next step
(measured in benchmarks/README.md). The process never holds more than its own peak, and
nothing changes off glibc (macOS, Windows, musl). Each thread that splits a batch (see
parallel.py) allocates from its own malloc arena, which keeps its share too: after a large
step the process may hold memory up to its peak again.

It is a setting of the whole process, so importing cnnlib does not apply it: cnnlib.fit
calls keep_freed_memory() when training starts (the setting then stays for the rest of the
process), and anyone timing or training with the layer functions directly may call it too.
Set the environment variable CNNLIB_KEEP_FREED_MEMORY=0 to leave malloc alone.
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
