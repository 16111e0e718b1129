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

The helper threads are shared by every caller, at most n_threads() - 1 of them, started when
first needed. A split takes only helpers idle at that moment and its own thread takes the
rest of the calls, so a split never waits for a helper: one started inside a helper's work,
or while another thread's split holds every helper, runs in its own thread alone, and two
user threads running layers at once each go at their own pace instead of one queueing
behind the other's work.

CNNLIB_THREADS=k in the environment sets the number of slices and threads (1: never split).
"""

import contextlib
import contextvars
import os
import threading
import queue

# Each slice gets at least this many elements of work (e.g. of its im2col matrix): handing a
# slice to another thread costs 0.1-0.3 ms on a 2-core VM, more than a smaller slice saves
# (measured in benchmarks/README.md).
MIN_SLICE_WORK = 1 << 17
CPU_MAX = "/sys/fs/cgroup/cpu.max"  # a container's CPU quota (cgroup v2), e.g. "200000 100000"

_lock = threading.Lock()
_blas = None  # threadpoolctl's handle on NumPy's BLAS, made on first use
_limiter = None  # the one-thread limit of the outermost blas_one_thread block
_depth = 0  # how many blas_one_thread blocks the main thread is inside


def n_threads():
    """How many slices a large batch is split into: CNNLIB_THREADS, else the usable cores."""
    setting = os.environ.get("CNNLIB_THREADS", "").strip()
    if setting:
        if not (setting.isascii() and setting.isdigit()) or int(setting) < 1:
            raise ValueError(f"CNNLIB_THREADS must be a whole number >= 1, got {setting!r}")
        return int(setting)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    # Binder and Docker may show every core of the host but allow only a share of one or two.
    try:
        with open(CPU_MAX) as f:
            quota, period = f.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


def batch_slices(n, work):
    """Split range(n) into consecutive slices, one per thread, none with too little work.

    work : how many elements the layer touches for the whole batch (e.g. its im2col matrix).
    """
    k = max(1, min(n, n_threads(), work // MIN_SLICE_WORK))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def map_slices(fn, slices, *args):
    """[fn(s, *a) for s, *a in zip(slices, *args)], the calls shared out among the threads.

    Up to n_threads() threads, the caller's among them, take the calls in order, each thread
    the next call not yet taken whenever it is free. A layer that cuts its slices into
    smaller chunks (conv) thus keeps every core busy to the end even when the host slows one
    down for a while, as it often does on a shared VM: that core just takes fewer chunks.
    Only helpers idle at that moment join in (see _claim): a split from inside a helper's
    work, or while another thread's split keeps every helper busy, runs in the caller's
    thread alone rather than waiting for one, so it can neither wait on itself nor queue
    behind another caller's work.
    Returns (or raises an error of a failed call) only once no call is still running, so no
    thread is still writing into the caller's arrays.
    """
    calls = list(zip(slices, *args))
    results = [None] * len(calls)
    todo = iter(range(len(calls)))
    lock = threading.Lock()

    def take_calls():  # the next call not yet taken, until none is left
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            results[i] = fn(*calls[i])

    threads = n_threads()
    with blas_one_thread():
        helpers = _claim(min(len(calls), threads) - 1, threads - 1)  # none when 1 thread
        jobs = [helper.run(take_calls) for helper in helpers]
        try:
            take_calls()  # the caller takes calls too: one hand-off fewer
        finally:
            errors = [job.wait() for job in jobs]
        for error in errors:
            if error is not None:
                raise error
    return results


class _Job:
    """One take_calls handed to a helper; wait() returns once it is done, with its error or None."""

    __slots__ = ("done", "error")

    def __init__(self):
        # A held lock that the helper releases when done: the lightest wait there is (a
        # future's or an Event's sits on a Condition built on such a lock).
        self.done = threading.Lock()
        self.done.acquire()
        self.error = None

    def wait(self):
        self.done.acquire()
        return self.error


class _Helper:
    """A thread that runs the jobs handed to it, one at a time, and is idle in between."""

    def __init__(self):
        self._jobs = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._serve, name="cnnlib-helper", daemon=True)
        self.thread.start()

    def run(self, work):
        """Start work() in this helper, in a copy of the caller's context (see _serve)."""
        job = _Job()
        self._jobs.put((job, contextvars.copy_context(), work))
        return job

    def retire(self):
        self._jobs.put(None)

    def _serve(self):
        _local.helper = True  # a split from inside this thread's work runs inline (see _claim)
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, context, work = item
            try:
                # In the caller's context, so that its np.errstate holds in its slices here too
                # (NumPy keeps it in a context variable): a split layer warns, or not, as a
                # whole one would.
                context.run(work)
            except BaseException as error:  # handed to the caller, who raises it
                job.error = error
            item = context = work = None  # the caller's arrays are not this thread's to keep alive
            # Idle again before the caller hears it is done: the caller's next split (the
            # next layer, at once) then finds this helper free, not busy and over the cap.
            stay = _return(self)
            job.done.release()
            if not stay:
                return


# Helper threads, shared by every caller: _idle holds those waiting for a job, _live counts
# them all, idle or busy, and _cap is the most that may live, n_threads() - 1 at the last
# split. All three under _lock.
_idle = []
_live = 0
_cap = 0
_local = threading.local()


def _claim(wanted, cap):
    """Up to `wanted` helpers, idle ones or new ones while fewer than `cap` live.

    None from a helper's own thread: its work is a slice of a split whose other helpers are
    busy, and waiting for one of them could be waiting for itself. A caller is never made to
    wait for a helper: it gets those free now, possibly none, and takes the rest itself.
    When `cap` has been lowered (CNNLIB_THREADS), idle helpers above it end here, and busy
    ones when their job is done (_return).
    """
    global _live, _cap
    if getattr(_local, "helper", False) or (wanted <= 0 and _live <= cap):
        return []
    claimed, retired = [], []
    with _lock:
        _cap = cap
        while _idle and _live > cap:  # the setting was lowered: idle helpers above it go
            retired.append(_idle.pop())
            _live -= 1
        while _idle and len(claimed) < wanted:
            claimed.append(_idle.pop())
        new = max(0, min(wanted - len(claimed), cap - _live))
        _live += new
    for helper in retired:
        helper.retire()
        helper.thread.join()
    try:
        for _ in range(new):
            claimed.append(_Helper())
            new -= 1
    except RuntimeError:  # no thread could be started (a resource limit): go on with fewer
        with _lock:
            _live -= new
    return claimed


def _return(helper):
    """Put a helper back among the idle ones after its job; False if it must end instead."""
    global _live
    with _lock:
        if _live > _cap:  # the setting was lowered while it worked
            _live -= 1
            return False
        _idle.append(helper)
        return True


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
    global _blas, _limiter, _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _blas is None:  # finding the BLAS libraries takes about 0.1 s: once, when first needed
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    if _depth == 0:
        _limiter = _blas.limit(limits=1)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _limiter.restore_original_limits()


def _after_fork_in_child():
    # The child has only the thread that forked: none of the pool threads, and no other
    # thread that could release the lock or leave a blas_one_thread block. Start afresh.
    global _lock, _depth, _live
    _lock = threading.Lock()
    _idle.clear()
    _live = 0
    if _depth:
        _limiter.restore_original_limits()
        _depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
