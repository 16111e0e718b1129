"""Splitting a batch across threads (cnnlib/engine/parallel.py): the slices, the threads, the results."""

import multiprocessing
import os
import sys
import threading
import time

import numpy as np
import pytest

import cnnlib
import cnnlib.engine.conv
from cnnlib.engine import parallel as _parallel


@pytest.mark.parametrize("n, threads, work, expected", [
    (10, 2, 10**9, [(0, 5), (5, 10)]),
    (5, 3, 10**9, [(0, 1), (1, 3), (3, 5)]),  # uneven: 1, 2, 2
    (2, 8, 10**9, [(0, 1), (1, 2)]),  # never more slices than images
    (64, 4, 3 * _parallel.MIN_SLICE_WORK + 1, [(0, 21), (21, 42), (42, 64)]),  # work limits it
    (64, 4, _parallel.MIN_SLICE_WORK - 1, [(0, 64)]),  # too little work to split
    (1, 4, 10**9, [(0, 1)]),
])
def test_batch_slices(monkeypatch, n, threads, work, expected):
    monkeypatch.setenv("CNNLIB_THREADS", str(threads))
    slices = _parallel.batch_slices(n, work)
    assert [(s.start, s.stop) for s in slices] == expected


def test_threads_default_to_the_usable_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLIB_THREADS", raising=False)
    monkeypatch.setattr(_parallel, "CPU_MAX", str(tmp_path / "no-quota-here"))  # see below
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _parallel.n_threads() == cores


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_setting_is_named(monkeypatch, value):
    monkeypatch.setenv("CNNLIB_THREADS", value)
    with pytest.raises(ValueError, match=f"CNNLIB_THREADS must be a whole number >= 1, got '{value}'"):
        _parallel.batch_slices(8, 10**9)


def test_map_slices_runs_each_slice_once_in_its_own_thread_in_order(monkeypatch):
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    slices = _parallel.batch_slices(7, 10**9)
    barrier = threading.Barrier(3, timeout=10)  # only passes if all 3 slices run at once

    def fn(part, tag):
        barrier.wait()
        return part.start, tag, threading.get_ident()

    results = _parallel.map_slices(fn, slices, ["a", "b", "c"])
    assert [r[:2] for r in results] == [(0, "a"), (2, "b"), (4, "c")]
    threads = {r[2] for r in results}
    assert len(threads) == 3
    assert threading.get_ident() in threads  # the caller takes a slice itself


def test_a_free_thread_takes_the_next_call(monkeypatch):
    # A thread the host holds up must not hold up the rest: the other takes its share.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    last_done = threading.Event()

    def fn(part):
        if part.start == 0:  # held up until the other thread has done every other call
            assert last_done.wait(10), "the other thread left calls 1-5 undone"
        if part.start == 5:
            last_done.set()
        return threading.get_ident()

    threads = _parallel.map_slices(fn, [slice(i, i + 1) for i in range(6)])
    held_up, other = threads[0], threads[1]
    assert other != held_up
    assert threads[1:] == [other] * 5
    assert threading.get_ident() in (held_up, other)


def test_blas_runs_one_thread_inside_and_is_restored_after(monkeypatch):
    before = _blas_threads()
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    inside = _parallel.map_slices(lambda part: _blas_threads(), _parallel.batch_slices(4, 10**9))
    assert inside == [[1] * len(before)] * 2
    assert _blas_threads() == before


def test_an_error_in_a_slice_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("CNNLIB_THREADS", "2")

    def fn(part):
        if part.start > 0:
            raise RuntimeError(f"slice {part} failed")
        return part.start

    with pytest.raises(RuntimeError, match="slice slice"):
        _parallel.map_slices(fn, _parallel.batch_slices(4, 10**9))


def test_an_error_returns_only_after_every_started_slice_has_finished(monkeypatch):
    # Otherwise a slice could still be writing into out or dx after the caller got the error.
    # After the failure no further slice starts: the layer's result is lost anyway.
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    started, finished = [], []
    all_three = threading.Barrier(3, timeout=10)

    def fn(part):
        started.append(part.start)
        if part.start < 3:
            all_three.wait()  # three slices running at once, one in each thread
        if part.start == 0:
            raise RuntimeError("first slice failed")
        time.sleep(0.2)
        finished.append(part.start)

    with pytest.raises(RuntimeError, match="first slice failed"):
        _parallel.map_slices(fn, [slice(i, i + 1) for i in range(6)])
    assert sorted(finished) == [1, 2]
    assert sorted(started) == [0, 1, 2]  # the three after the failure never started


def _blas_threads():
    """The thread counts of the BLAS libraries cnnlib limits: those loaded when it first needed
    one, NumPy's among them. A BLAS loaded later (scipy's, when scikit-learn is imported after a
    split) is never called by cnnlib, which leaves it as it is."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with _parallel.blas_one_thread():
        pass  # finds the libraries, once
    paths = {lib.filepath for lib in _parallel._blas}
    threads = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["filepath"] in paths]
    if not threads:
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    return threads


def test_other_threads_never_change_the_limit(monkeypatch):
    # OpenBLAS ignores thread counts set outside the main thread, so only the main thread may
    # set and restore the limit: a user thread leaving its own split layer while the main
    # thread is inside one must not lift the main thread's limit, nor leave one behind.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    before = _blas_threads()
    seen = {}

    def user_thread():
        _parallel.map_slices(lambda part: None, _parallel.batch_slices(4, 10**9))

    def main_slice(part):
        if part.start == 0:  # the main thread's own slice
            t = threading.Thread(target=user_thread)
            t.start()
            t.join(20)
            seen["main, after the user thread left"] = _blas_threads()

    _parallel.map_slices(main_slice, _parallel.batch_slices(4, 10**9))
    assert seen["main, after the user thread left"] == [1] * len(before)
    assert _blas_threads() == before
    user_thread()  # alone: the main thread's setting is unchanged
    assert _blas_threads() == before


def test_overlapping_user_threads_leave_the_setting_as_it_was(monkeypatch):
    # Two user threads whose split layers overlap, the first leaving first: a limit saved and
    # restored per call would put back the other's one-thread setting for good.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    before = _blas_threads()
    first_inside, first_left = threading.Event(), threading.Event()

    def first():
        def fn(part):
            first_inside.set()
            time.sleep(0.05)
        _parallel.map_slices(fn, _parallel.batch_slices(2, 10**9))
        first_left.set()

    def second():
        first_inside.wait(10)
        _parallel.map_slices(lambda part: first_left.wait(10), _parallel.batch_slices(2, 10**9))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert _blas_threads() == before


def test_the_backward_uses_the_forwards_slices(rng, monkeypatch):
    # The im2col matrices in the cache belong to the forward's slices, whatever the setting
    # is by the time of the backward.
    x, w, b = rng.standard_normal((5, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((5, 3, 6, 6))
    monkeypatch.setattr(_parallel, "MIN_SLICE_WORK", 1)
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    whole = cnnlib.conv2d_backward(dout, cnnlib.conv2d_forward(x, w, b, pad=1)[1])
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    _, cache = cnnlib.conv2d_forward(x, w, b, pad=1)
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    for name, s, o in zip(["dx", "dw", "db"], cnnlib.conv2d_backward(dout, cache), whole):
        np.testing.assert_allclose(s, o, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cpu_max, expected", [
    ("100000 100000\n", 1),  # one CPU
    ("250000 100000\n", 2),  # two and a half: whole CPUs only
    ("50000 100000\n", 1),  # half a CPU still gets one slice
    ("max 100000\n", None),  # no quota: the cores
    ("garbage\n", None),
])
def test_a_container_cpu_quota_caps_the_threads(tmp_path, monkeypatch, cpu_max, expected):
    monkeypatch.delenv("CNNLIB_THREADS", raising=False)
    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(_parallel, "CPU_MAX", str(tmp_path / "cpu.max"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _parallel.n_threads() == (cores if expected is None else min(cores, expected))


def _conv_grads(x, w, b, dout):
    out, cache = cnnlib.conv2d_forward(x, w, b, pad=1)
    return (out, *cnnlib.conv2d_backward(dout, cache))


def test_a_large_batch_is_split_by_default_and_matches_the_whole_batch(rng, monkeypatch):
    # 144 * 32 * 256 elements of im2col: large enough to split with the default threshold.
    x, w = rng.standard_normal((32, 16, 16, 16)), rng.standard_normal((8, 16, 3, 3))
    b, dout = rng.standard_normal(8), rng.standard_normal((32, 8, 16, 16))
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    monkeypatch.setattr(cnnlib.engine.conv, "map_slices", _recording(cnnlib.engine.conv.map_slices, seen := []))
    cnnlib.conv2d_forward(x, w, b, pad=1)
    # Slices of 16 images, cut into chunks of 3 MiB // (144 * 256 * 8 bytes) = 10 images.
    assert seen == [[slice(0, 10), slice(10, 16), slice(16, 26), slice(26, 32)]]
    split = _conv_grads(x, w, b, dout)
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    whole = _conv_grads(x, w, b, dout)
    for name, s, o in zip(["out", "dx", "dw", "db"], split, whole):
        np.testing.assert_allclose(s, o, rtol=1e-12, atol=1e-12, err_msg=name)


def _child_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 16, 16, 16)), rng.standard_normal((8, 16, 3, 3)), np.ones(8)


def _recording(map_slices, seen):
    """map_slices that first appends the slices it is given to the list `seen`."""
    def record(fn, slices, *args):
        seen.append(list(slices))
        return map_slices(fn, slices, *args)
    return record


def _split_conv_in_child(queue):
    cnnlib.engine.conv.map_slices = _recording(cnnlib.engine.conv.map_slices, seen := [])  # this child's own copy
    out, _ = cnnlib.conv2d_forward(*_child_inputs(), pad=1)
    both = threading.Barrier(2, timeout=20)  # passes only if a helper of the child's own joins in
    idents = _parallel.map_slices(lambda part: (both.wait(), threading.get_ident())[1], [slice(0, 1), slice(1, 2)])
    queue.put((len(seen[0]), float(out.sum()), len(set(idents))))


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_child_can_still_split(monkeypatch):
    # The parent's helper threads do not exist in a forked child, nor does the thread that was
    # in the middle of a split: the child must make helpers of its own, not wait for those.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    expected = cnnlib.conv2d_forward(*_child_inputs(), pad=1)[0].sum()  # the parent's helpers are up
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_split_conv_in_child, args=(queue,))
    both, release = threading.Barrier(3, timeout=10), threading.Event()

    def held(part):
        both.wait()
        assert release.wait(20)

    # Fork while a user thread's split keeps the parent's only helper busy.
    user, user_done, user_results = _in_thread(lambda: _parallel.map_slices(held, [slice(0, 1), slice(1, 2)]))
    both.wait()
    try:
        child.start()
    finally:
        release.set()
    assert user_done.wait(20) and "error" not in user_results, user_results
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in a split")
    slices, total, threads = queue.get(timeout=5)
    assert child.exitcode == 0 and slices == 4  # chunks: two slices of 16 images, cut 10 + 6
    assert total == pytest.approx(expected, rel=1e-12)
    assert threads == 2


# ---- the helper threads: bounded, never waiting on themselves or on another caller ----


def _helpers():
    return [t for t in threading.enumerate() if t.name.startswith("cnnlib")]


def _in_thread(target):
    """Run target() in a daemon thread; returns (thread, done event, results dict)."""
    done, results = threading.Event(), {}

    def run():
        try:
            results["value"] = target()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            results["error"] = error
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done, results


def test_at_most_n_threads_run_a_split_and_lowered_settings_end_the_helpers(monkeypatch):
    # Splits of every size, at several settings: never more threads than the setting, and the
    # helpers made for a higher setting end once it is lowered (those of the last one stay).
    for threads in (4, 3, 2):
        monkeypatch.setenv("CNNLIB_THREADS", str(threads))
        for calls in range(2, threads + 2):
            ready = threading.Barrier(min(calls, threads), timeout=10)  # at most `threads` at once

            def fn(part):
                if part.start < threads:
                    ready.wait()
                return threading.get_ident()
            idents = _parallel.map_slices(fn, [slice(i, i + 1) for i in range(calls)])
            assert len(set(idents)) == min(calls, threads)
        assert _eventually(lambda: len(_helpers()) <= threads - 1), _helpers()
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    _parallel.map_slices(lambda part: None, [slice(0, 1), slice(1, 2)])
    assert _eventually(lambda: _helpers() == []), _helpers()  # lowered to 1: the idle helpers end


def _eventually(condition, seconds=10):
    """Whether condition() holds within `seconds` (helpers end in their own time)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_a_helper_busy_when_the_setting_is_lowered_ends_after_its_job(monkeypatch):
    monkeypatch.setenv("CNNLIB_THREADS", "3")
    all_three, inside, release = threading.Barrier(3, timeout=10), threading.Semaphore(0), threading.Event()

    def fn(part):
        all_three.wait()
        inside.release()
        assert release.wait(20)

    thread, done, results = _in_thread(lambda: _parallel.map_slices(fn, [slice(i, i + 1) for i in range(3)]))
    try:
        assert all(inside.acquire(timeout=10) for _ in range(3))
        busy = _helpers()
        assert len(busy) == 2
        monkeypatch.setenv("CNNLIB_THREADS", "1")
        # No helper is free, and the setting allows none: this split runs inline.
        assert _parallel.map_slices(lambda part: threading.get_ident(), [slice(0, 1), slice(1, 2)]) == (
            [threading.get_ident()] * 2)
    finally:
        release.set()
    assert done.wait(20) and "error" not in results, results
    for helper in busy:
        helper.join(10)
        assert not helper.is_alive()
    assert _helpers() == []


def test_a_split_inside_a_helpers_work_runs_inline_instead_of_waiting_for_itself(monkeypatch):
    # A layer called from inside a split layer's work: its split used to queue a job behind
    # the helper's own, and wait for it forever.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    both = threading.Barrier(2, timeout=10)  # one outer call in the caller, one in the helper

    def inner(part):
        return threading.get_ident()

    def outer(part):
        both.wait()
        return threading.get_ident(), _parallel.map_slices(inner, [slice(i, i + 1) for i in range(4)])

    thread, done, results = _in_thread(lambda: _parallel.map_slices(outer, [slice(0, 1), slice(1, 2)]))
    assert done.wait(20), "a split inside a helper's work waited for the helper itself"
    assert "error" not in results, results
    caller = thread.ident
    for ident, inner_idents in results["value"]:
        if ident != caller:  # the helper's outer call: every inner call ran in the helper
            assert inner_idents == [ident] * 4
    assert {ident for ident, _ in results["value"]} != {caller}


def test_a_second_caller_does_not_queue_behind_a_first_that_holds_every_helper(monkeypatch):
    # A small layer in one thread used to wait behind a large one from another thread (2.3 ms
    # became 140 ms): its share went into the same queue as the large layer's.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    both, inside, release = threading.Barrier(2, timeout=10), threading.Semaphore(0), threading.Event()

    def held(part):
        both.wait()  # the first caller's thread and the one helper are both in here
        inside.release()
        assert release.wait(20)

    first, first_done, first_results = _in_thread(lambda: _parallel.map_slices(held, [slice(0, 1), slice(1, 2)]))
    try:
        assert inside.acquire(timeout=10) and inside.acquire(timeout=10)
        second, second_done, second_results = _in_thread(
            lambda: _parallel.map_slices(lambda part: threading.get_ident(), [slice(i, i + 1) for i in range(4)]))
        assert second_done.wait(10), "the second caller waited for the first caller's helper"
        assert second_results["value"] == [second.ident] * 4  # no helper was free: all inline
    finally:
        release.set()
    assert first_done.wait(20) and "error" not in first_results, first_results


def test_two_callers_with_free_helpers_both_split(monkeypatch):
    # Independent callers share the helpers: with three free, two callers of two calls each
    # both get one (they need not run inline when helpers are idle).
    monkeypatch.setenv("CNNLIB_THREADS", "4")
    _parallel.map_slices(lambda part: None, [slice(i, i + 1) for i in range(4)])  # three helpers up
    four = threading.Barrier(4, timeout=10)  # both callers and a helper each: all four at once

    def run():
        return _parallel.map_slices(lambda part: (four.wait(), threading.get_ident())[1], [slice(0, 1), slice(1, 2)])

    a, a_done, a_results = _in_thread(run)
    b, b_done, b_results = _in_thread(run)
    assert a_done.wait(20) and b_done.wait(20)
    assert "error" not in a_results and "error" not in b_results, (a_results, b_results)
    idents = a_results["value"] + b_results["value"]
    assert len(set(idents)) == 4 and a.ident in idents and b.ident in idents
    assert len(_helpers()) <= 3


def test_the_callers_errstate_holds_in_the_helpers(monkeypatch):
    # NumPy keeps np.errstate per context: a split layer must warn, or not, as a whole one would.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    both = threading.Barrier(2, timeout=10)

    def fn(part):
        both.wait()  # one call in the caller, one in a helper
        return np.geterr()["invalid"], threading.get_ident()

    with np.errstate(invalid="ignore"):
        results = _parallel.map_slices(fn, [slice(0, 1), slice(1, 2)])
    assert [setting for setting, _ in results] == ["ignore", "ignore"]
    assert len({ident for _, ident in results}) == 2
    with np.errstate(invalid="raise"):
        assert [s for s, _ in _parallel.map_slices(fn, [slice(0, 1), slice(1, 2)])] == ["raise", "raise"]


def test_a_helpers_failure_is_raised_and_never_turned_into_another_error(monkeypatch):
    # A helper's failure stops the split while the caller is taking calls; the caller must
    # find a call whole or the split stopped. Taking them apart without the lock raised
    # KeyError: 'fn' instead of the helper's error in about a third of such splits.
    class Boom(Exception):
        pass

    def call(part):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(20e-6)  # the caller takes calls meanwhile
            raise Boom

    monkeypatch.setenv("CNNLIB_THREADS", "2")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows
    raised = 0
    try:
        for _ in range(100):
            try:
                _parallel.map_slices(call, [slice(i, i + 1) for i in range(1000)])
            except Boom:
                raised += 1
    finally:
        sys.setswitchinterval(interval)
    assert raised > 0  # a helper took a call and failed, and its error reached the caller
