"""The engine's arrays: memory reused from call to call, never while an array still uses it.

Why: a training step allocates the same arrays every time (outputs, im2col matrices, padded
copies, each tap's products, the masks of max-pooling), and NumPy takes them from malloc.
glibc gives freed memory at the top of its heap back to the kernel once more of it is free
than a threshold, which it keeps at twice the largest block freed so far: a LeNet step frees
about four times that at its end, so the next step page-faults all of it in again, page by
page. Measured without any allocator setting: 2,500-5,000 page faults per LeNet step, and
the step took 1.5-2 times as long as with glibc told to keep freed memory
(benchmarks/README.md). PyTorch keeps its memory in its own allocator instead; so does this
module, so that the engine is fast whatever malloc does.

How it stays safe: each thread keeps a set of raw buffers, and empty() hands one out only
when no array refers to it any more. Every array made from a buffer is a view of it, and
NumPy's views all keep their memory's owner alive (view.base), so the buffer's reference
count says whether anything still uses it: an output the caller holds, a view of it, a cache
kept for the backward, a slice another thread is writing, a memoryview. An array is thus
never handed out twice while alive, whichever call or thread asks, and what the caller gets
back (out, dx, argmax, the im2col matrices a cache keeps) stays as it was however many calls
follow. A thread's buffers are its own (no lock), and go when the thread ends (the helper
threads of parallel.py live as long as their executor, and keep what their last slices
needed while idle). A buffer only
the pool still holds is free memory kept for the next request, as malloc would keep it with
a higher trim threshold; and, as in malloc, an array of one kind (a padded copy in the
forward) can reuse the memory of another (a gradient in the backward).

Bound: a request takes the smallest free buffer of its size up to REUSE_DOWN_TO times it, so
no buffer is more than REUSE_DOWN_TO times what it holds; a buffer no request of its thread
has taken in the last IDLE_REQUESTS is let go, and a thread keeps at most MAX_BUFFERS
(beyond that the least recently used is forgotten, left to whatever array still uses it).
So a thread keeps about what its recent calls needed at once: for bench.py's LeNet step
(batch 64 of 28x28, 8 and 16 filters) 15 MiB in float32 and 26 MiB in float64 in one
thread (tests/engine/test_arrays.py checks it), 16 and 32 MiB over two; of these, ReLU's arrays
are about 4 and 9 MiB.

Where the reference count cannot be trusted (Python built without the GIL), and when KEEP is
set to False (for measuring what this gains), every request gets a new array.
"""

import bisect
import os
import sys
import threading
import weakref

import numpy as np

REUSE_DOWN_TO = 2  # fit's last batch of an epoch of 60,000 at batch 64 is half the others
IDLE_REQUESTS = 1000  # a LeNet step asks for about 60 arrays: a buffer lives some 15 idle steps
MAX_BUFFERS = 64
KEEP = True

_local = threading.local()
_every_pool = weakref.WeakSet()  # for kept_bytes(every_thread=True); a pool goes with its thread
_lock = threading.Lock()


class _Pool:
    """One thread's buffers, sorted by size, each with the number of the request that last took it."""

    __slots__ = ("sizes", "buffers", "taken", "requests", "__weakref__")

    def __init__(self):
        self.sizes, self.buffers, self.taken, self.requests = [], [], [], 0

    def drop(self, i):
        del self.sizes[i], self.buffers[i], self.taken[i]


def _refcount(buffers, i):
    return sys.getrefcount(buffers[i])


# The count of a buffer nothing but its pool refers to, measured the way empty() measures it
# (the interpreter may count its own temporary references differently from version to version).
_FREE = _refcount([np.empty(1, dtype=np.uint8)], 0)
_TRUSTED = getattr(sys, "_is_gil_enabled", lambda: True)()


def empty(shape, dtype):
    """An uninitialised array of `shape` and `dtype` whose memory no live array uses."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if nbytes == 0 or not KEEP or not _TRUSTED:
        return np.empty(shape, dtype=dtype)
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = _Pool()
        with _lock:
            _every_pool.add(pool)
    pool.requests += 1
    sizes, buffers = pool.sizes, pool.buffers
    i = bisect.bisect_left(sizes, nbytes)
    end = bisect.bisect_right(sizes, REUSE_DOWN_TO * nbytes)
    while i < end and _refcount(buffers, i) > _FREE:  # in use
        i += 1
    if i == end:  # none free: a new buffer, of exactly this size
        i = bisect.bisect_right(sizes, nbytes)
        sizes.insert(i, nbytes)
        buffers.insert(i, np.empty(nbytes, dtype=np.uint8))  # malloc aligns it for any dtype
        pool.taken.insert(i, 0)
    pool.taken[i] = pool.requests
    out = buffers[i][:nbytes].view(dtype).reshape(shape)
    if pool.requests % 64 == 0 or len(sizes) > MAX_BUFFERS:
        _tidy(pool)
    return out


def _tidy(pool):
    """Let go of the buffers idle too long, then of the least recently taken beyond MAX_BUFFERS."""
    for i in range(len(pool.sizes) - 1, -1, -1):
        if pool.requests - pool.taken[i] > IDLE_REQUESTS:
            pool.drop(i)
    while len(pool.sizes) > MAX_BUFFERS:
        pool.drop(min(range(len(pool.sizes)), key=pool.taken.__getitem__))


def zeros(shape, dtype):
    """empty(shape, dtype), filled with zeros."""
    a = empty(shape, dtype)
    a.fill(0)
    return a


def kept_bytes(every_thread=False):
    """How many bytes of buffers the calling thread keeps (or every thread), in use or not."""
    if every_thread:
        with _lock:
            pools = list(_every_pool)
    else:
        pools = [getattr(_local, "pool", None) or _Pool()]
    return sum(sum(list(pool.sizes)) for pool in pools)


def release():
    """Let go of the calling thread's buffers (arrays still in use keep theirs alive); the
    helper threads keep theirs (see the module docstring)."""
    _local.pool = None


def _after_fork_in_child():
    # The child has only the thread that forked: a lock another thread held stays locked.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
