"""Let freed arrays' memory be reused instead of handed back to the operating system.

A training step allocates and frees the same arrays every time (im2col matrices, outputs,
gradients). glibc's malloc serves a block over its mmap threshold with fresh pages and gives
them back to the kernel when it is freed, so the next step page-faults them in again. The
threshold starts at 128 KiB and rises by itself to the largest block freed, but only up to
32 MiB: blocks bigger than that (a conv layer's output or dout on a large batch) are fetched
fresh every step. Raising the two thresholds below keeps them too: measured, 7% of a step
of a conv layer on a batch of 256 32x32 images in float64, nothing measurable at MNIST's
size and batch, whose arrays stay under 32 MiB (benchmarks/README.md, lesson 10). The process never holds more than its own peak, and
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
