"""Run a layer on slices of its batch at once, one slice per CPU core (the engine's threads).

Why: the fast layers spend about half their time copying (im2col, adding dx back) and
NumPy copies on one core. OpenBLAS does use every core, but only inside each matrix product,
and its idle threads keep spinning between products, so threading the copies alone gained
nothing (measured). Giving each core a slice of the batch to take through the whole layer,
with BLAS held to one thread, keeps every core busy from start to end; PyTorch's CPU
convolution works the same way. NumPy releases the GIL while it copies and multiplies, so
plain threads suffice. Convolution cuts the slices further into chunks of a few images, and
the threads share out the chunks as they go (map_slices): a core the host slows down for a
while then takes fewer chunks instead of holding up the end.

Each slice's result equals, up to rounding, what the whole batch gives for those images; how
many slices there are can change the last bits (BLAS rounds differently for fewer columns),
and dw adds the partial sums of the slices, or of conv's chunks, in a fixed order, whichever
thread computed them.

The helper threads are a concurrent.futures.ThreadPoolExecutor shared by every caller, of
n_threads() - 1 workers, made when first needed and made anew when the setting changes. The
caller takes calls itself while the helpers join in, and when it runs out of calls it cancels
the requests no helper has picked up yet: a split never waits for a helper to become free
(it waits only for the calls a helper has started), so one made while another thread's split
keeps every helper busy runs in its own thread alone, and two user
threads running layers at once each go at their own pace instead of one queueing behind the
other's work. A split made inside a split's work (a layer called from a slice) runs inline.

CNNLIB_THREADS=k in the environment sets the number of slices and threads (1: never split).
"""

import contextlib
import contextvars
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

# Each slice gets at least this many elements of work (e.g. of its im2col matrix): handing a
# slice to another thread costs 0.1-0.3 ms on a 2-core VM, more than a smaller slice saves
# (measured in benchmarks/README.md).
MIN_SLICE_WORK = 1 << 17
CPU_MAX = "/sys/fs/cgroup/cpu.max"  # a container's CPU quota (cgroup v2), e.g. "200000 100000"

_lock = threading.Lock()  # guards _executor and _executor_workers
_executor = None  # the helpers, made on the first split that wants one
_executor_workers = 0  # its max_workers: n_threads() - 1 when it was made
_local = threading.local()  # .splitting: this thread is running calls of a split
_blas = None  # threadpoolctl's controllers of the BLAS libraries loaded, found on first use
_restore = []  # (controller, its thread count) to set back on leaving the outermost block
_depth = 0  # how many blas_one_thread blocks the main thread is inside


def n_threads():
    """How many slices a large batch is split into: CNNLIB_THREADS, else the usable cores."""
    setting = os.environ.get("CNNLIB_THREADS", "").strip()
    if setting:
        if not (setting.isascii() and setting.isdigit()) or int(setting) < 1:
            raise ValueError(f"CNNLIB_THREADS must be a whole number >= 1, got {setting!r}")
        return int(setting)
    return _usable_cores(CPU_MAX)


@functools.lru_cache(maxsize=4)
def _usable_cores(cpu_max):
    """The cores this process may use, read once: every layer asks, and reading the quota
    file each time cost about 10 us a call, a few % of a small layer."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    # Binder and Docker may show every core of the host but allow only a share of one or two.
    try:
        with open(cpu_max) as f:
            quota, period = f.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


def batch_slices(n, work, min_work=None):
    """Split range(n) into consecutive slices, one per thread, none with too little work.

    work : how many elements the layer touches for the whole batch (e.g. its im2col matrix).
    min_work : the least work worth a slice of its own (default MIN_SLICE_WORK).
    """
    min_work = MIN_SLICE_WORK if min_work is None else min_work
    k = max(1, min(n, n_threads(), work // max(1, min_work)))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def map_slices(fn, slices, *args):
    """[fn(s, *a) for s, *a in zip(slices, *args)], the calls shared out among the threads.

    Up to n_threads() threads, the caller's among them, take the calls in order, each thread
    the next call not yet taken whenever it is free. A layer that cuts its slices into
    smaller chunks (conv) thus keeps every core busy to the end even when the host slows one
    down for a while, as it often does on a shared VM: that core just takes fewer chunks.
    Helpers busy with another caller's split never hold this one up: the caller takes every
    call they leave, then cancels its requests that are still queued. A split from inside a
    split's work runs in that thread alone.
    After a failed call no further call starts; the error is raised once no call is still
    running, so no thread is still writing into the caller's arrays.
    """
    job = {"fn": fn, "calls": list(zip(slices, *args))}
    if len(job["calls"]) == 1:  # nothing to share out: no hand-off, no lock
        with blas_one_thread():
            return [fn(*job["calls"][0])]
    results = [None] * len(job["calls"])
    todo = iter(range(len(results)))
    lock = threading.Lock()  # guards job and todo: a call is taken, or the job stopped, whole

    def stop():  # no further call starts
        with lock:
            job.clear()

    def take_calls():  # the next call not yet taken, until none is left or the job stopped
        outer, _local.splitting = getattr(_local, "splitting", False), True
        try:
            while True:
                with lock:
                    i = next(todo, None) if job else None
                    call = None if i is None else (job["fn"], job["calls"][i])
                if call is None:
                    return
                results[i] = call[0](*call[1])
                call = None
        except BaseException:
            stop()
            raise
        finally:
            _local.splitting = outer

    n = n_threads()  # read once: CNNLIB_THREADS may change while this split runs
    threads = min(len(results), n)
    with blas_one_thread():
        futures = []
        executor = None if getattr(_local, "splitting", False) else _helpers(n - 1, threads > 1)
        try:
            for _ in range(threads - 1 if executor else 0):
                # In a copy of the caller's context, so that its np.errstate holds in its slices
                # there too (NumPy keeps it in a context variable): a split layer warns, or
                # not, as a whole one would.
                futures.append(executor.submit(contextvars.copy_context().run, take_calls))
        except RuntimeError:  # no thread could be started, or the executor was just replaced
            pass
        try:
            take_calls()  # the caller takes calls too: one hand-off fewer
        finally:
            # Every call is taken by now, unless one failed or the caller was interrupted;
            # then none starts from here on. A request that could not be cancelled nor
            # waited for (lost in a failed submit) finds nothing to do and keeps none of the
            # caller's arrays alive.
            stop()
            errors = _wait_out([f for f in futures if not f.cancel()])  # cancelled: never picked up
        for error in errors:
            if error is not None:
                raise error
    return results


def _wait_out(futures):
    """The exceptions (or None) of futures, once every one has finished. A Ctrl+C while
    waiting is raised after the wait, so that no helper is still writing into the caller's
    arrays when map_slices returns or raises (each call is one chunk: milliseconds)."""
    interrupted = None
    while True:
        try:
            errors = [f.exception() for f in futures]
            break
        except BaseException as error:  # KeyboardInterrupt: finish waiting first
            interrupted = error
    if interrupted is not None:
        raise interrupted
    return errors


def _helpers(workers, wanted):
    """The shared executor of `workers` helper threads, or None when no helper is wanted.

    Made anew when the number of workers has changed since it was made (CNNLIB_THREADS set
    while running): the old one's workers end once they are idle, none of its work is lost.
    """
    global _executor, _executor_workers
    executor = _executor
    if executor is not None and _executor_workers == workers and wanted:
        return executor  # as it was at the last split: no lock needed to hand it out
    with _lock:
        if _executor is not None and _executor_workers != workers:
            _executor.shutdown(wait=False)
            _executor = None
        if not wanted or workers <= 0:
            return None
        if _executor is None:
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="cnnlib-helper",
                                           initializer=_mark_helper)
            _executor_workers = workers
        return _executor


def _mark_helper():
    _local.splitting = True  # a helper runs nothing but calls of splits


@contextlib.contextmanager
def blas_one_thread():
    """Inside this block NumPy's BLAS uses one thread, so k slices use k cores, not k * cores.

    Every product in cnnlib runs inside it, split or not: one multithreaded product would set
    OpenBLAS's threads spinning on the cores for a while, and the next split layer would have
    to share its cores with them (measured: a LeNet step 1.5x slower). The limit holds for
    every thread and is restored on leaving the outermost block.

    Only the main thread sets it: OpenBLAS ignores a thread count set from any other thread
    (measured with OpenBLAS 0.3.31), and a limit set by main but restored elsewhere would stay
    for good. Called from another thread this block leaves BLAS as it is: slower, still right.
    """
    global _blas, _restore, _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _blas is None:  # finding the BLAS libraries takes about 0.1 s: once, when first needed
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    if _depth == 0:
        # Each library's own setter, not threadpoolctl's limit(), which builds an info report
        # of the libraries first: about half the time (9 -> 5 us, benchmarks/README.md).
        _restore = [(lib, lib.num_threads) for lib in _blas]
        for lib, _ in _restore:
            lib.set_num_threads(1)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _set_back()


def _set_back():
    for lib, threads in _restore:
        lib.set_num_threads(threads)


def _after_fork_in_child():
    # The child has only the thread that forked: none of the helpers, and no other thread
    # that could release the lock or leave a blas_one_thread block. Start afresh.
    global _lock, _executor, _depth
    _lock = threading.Lock()
    _executor = None  # its threads are the parent's; the child makes its own when it splits
    if _depth:
        _set_back()
        _depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
