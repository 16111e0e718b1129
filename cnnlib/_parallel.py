"""Run a layer on slices of its batch at once, one slice per CPU core.

Why: the fast layers spend about half their time copying (im2col, col2im) and NumPy copies on
one core. OpenBLAS does use every core, but only inside each matrix product, and its idle
threads keep spinning between products, so threading the copies alone gained nothing
(measured). Giving each core a slice of the batch to take through the whole layer, with BLAS
held to one thread, keeps every core busy from start to end; PyTorch's CPU convolution works
the same way. NumPy releases the GIL while it copies and multiplies, so plain threads suffice.

Each slice's result is exactly what the whole batch would give for those images, apart from
sums over the batch (dw), which adds the slices' partial sums in a fixed order.

CNNLIB_THREADS=k in the environment sets the number of slices (1: never split).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

# Each slice gets at least this many elements of work (e.g. of its im2col matrix): handing a
# slice to another thread costs 0.1-0.3 ms on a 2-core VM, more than a smaller slice saves
# (measured in benchmarks/README.md).
MIN_SLICE_WORK = 1 << 17

_lock = threading.Lock()
_pools = {}
_blas = None  # the controller of NumPy's BLAS threads, made on first use


def n_threads():
    """How many slices a large batch is split into: CNNLIB_THREADS, else the usable cores."""
    setting = os.environ.get("CNNLIB_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"CNNLIB_THREADS must be a whole number >= 1, got {setting!r}")
        return int(setting)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def batch_slices(n, work):
    """Split range(n) into consecutive slices, one per thread, none with too little work.

    work : how many elements the layer touches for the whole batch (e.g. its im2col matrix).
    """
    k = max(1, min(n, n_threads(), work // MIN_SLICE_WORK))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def map_slices(fn, slices, *args):
    """[fn(s, *a) for s, *a in zip(slices, *args)], the slices run at once in threads."""
    calls = list(zip(slices, *args))
    with blas_one_thread():
        if len(calls) == 1:
            return [fn(*calls[0])]
        # The calling thread takes the first slice itself: one thread hand-off fewer.
        rest = [_pool(len(calls) - 1).submit(fn, *call) for call in calls[1:]]
        first = fn(*calls[0])
        return [first] + [future.result() for future in rest]


def _pool(k):
    with _lock:
        if k not in _pools:
            _pools[k] = ThreadPoolExecutor(max_workers=k, thread_name_prefix="cnnlib")
        return _pools[k]


def blas_one_thread():
    """A context in which NumPy's BLAS uses one thread, so k slices use k cores, not k * cores.

    Every product in cnnlib runs inside it, split or not: one multithreaded product would set
    OpenBLAS's threads spinning on the cores for a while, and the next split layer would have
    to share its cores with them (measured: a LeNet step 1.5x slower).
    """
    global _blas
    with _lock:
        if _blas is None:  # finding the BLAS libraries takes about 0.1 s: do it once, when needed
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController().select(user_api="blas")
    return _blas.limit(limits=1)


def _forget_threads():
    # A forked child has none of its parent's threads: build new pools on first use.
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)
