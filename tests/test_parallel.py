"""Splitting a batch across threads (cnnlib/_parallel.py): the slices, the threads, the results."""

import multiprocessing
import os
import sys
import threading

import numpy as np
import pytest

import cnnlib
from cnnlib import _parallel


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


def test_threads_default_to_the_usable_cores(monkeypatch):
    monkeypatch.delenv("CNNLIB_THREADS", raising=False)
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
    assert len({r[2] for r in results}) == 3
    assert results[0][2] == threading.get_ident()  # the caller takes the first slice itself


def test_blas_runs_one_thread_inside_and_is_restored_after(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    if not before:
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    inside = _parallel.map_slices(lambda part: blas_threads(), _parallel.batch_slices(4, 10**9))
    assert inside == [[1] * len(before)] * 2
    assert blas_threads() == before


def test_an_error_in_a_slice_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("CNNLIB_THREADS", "2")

    def fn(part):
        if part.start > 0:
            raise RuntimeError(f"slice {part} failed")
        return part.start

    with pytest.raises(RuntimeError, match="slice slice"):
        _parallel.map_slices(fn, _parallel.batch_slices(4, 10**9))


def _conv_grads(x, w, b, dout):
    out, cache = cnnlib.conv2d_forward(x, w, b, pad=1)
    return (out, *cnnlib.conv2d_backward(dout, cache))


def test_a_large_batch_is_split_by_default_and_matches_the_whole_batch(rng, monkeypatch):
    # 144 * 32 * 256 elements of im2col: large enough to split with the default threshold.
    x, w = rng.standard_normal((32, 16, 16, 16)), rng.standard_normal((8, 16, 3, 3))
    b, dout = rng.standard_normal(8), rng.standard_normal((32, 8, 16, 16))
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    _, cache = cnnlib.conv2d_forward(x, w, b, pad=1)
    assert [part for part, _ in cache[5]] == [slice(0, 16), slice(16, 32)]
    split = _conv_grads(x, w, b, dout)
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    whole = _conv_grads(x, w, b, dout)
    for name, s, o in zip(["out", "dx", "dw", "db"], split, whole):
        np.testing.assert_allclose(s, o, rtol=1e-12, atol=1e-12, err_msg=name)


def _child_inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((32, 16, 16, 16)), rng.standard_normal((8, 16, 3, 3)), np.ones(8)


def _split_conv_in_child(queue):
    out, cache = cnnlib.conv2d_forward(*_child_inputs(), pad=1)
    queue.put((len(cache[5]), float(out.sum())))


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_child_can_still_split(monkeypatch):
    # The parent's pool threads do not exist in a forked child; cnnlib must start new ones
    # instead of waiting forever on the old ones.
    monkeypatch.setenv("CNNLIB_THREADS", "2")
    expected = cnnlib.conv2d_forward(*_child_inputs(), pad=1)[0].sum()  # the parent's pool is up
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_split_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in a split convolution")
    slices, total = queue.get(timeout=5)
    assert child.exitcode == 0 and slices == 2
    assert total == pytest.approx(expected, rel=1e-12)

