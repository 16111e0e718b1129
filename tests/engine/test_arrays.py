"""The engine's reused memory (cnnlib/engine/arrays.py): what a call returns stays as it was
whatever calls follow, a buffer is reused only once nothing refers to it, threads never share
one, and what is kept is bounded."""

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest

import cnnlib as c
from cnnlib.engine import arrays


@pytest.fixture(autouse=True)
def own_buffers():
    """Each test starts from no kept buffers in this thread, and leaves none behind."""
    arrays.release()
    yield
    arrays.release()


CASES = {  # x shape, w shape, stride, pad: each of conv's ways back (runs, taps, one product)
    "runs": ((5, 8, 12, 11), (4, 8, 3, 3), 1, 1),
    "taps, stride 2": ((5, 3, 12, 11), (4, 3, 3, 2), 2, 1),
    "more filters than taps": ((5, 2, 6, 7), (9, 2, 2, 2), 1, 0),
}


@pytest.mark.parametrize("case", CASES)
def test_a_second_forward_leaves_the_first_calls_arrays_and_backward_as_they_were(rng, case, slicing, products):
    (xs, ws, stride, pad) = CASES[case]
    x1, x2 = rng.standard_normal(xs), rng.standard_normal(xs)
    w, b = rng.standard_normal(ws), rng.standard_normal(ws[0])
    out1, cache1 = c.conv2d_forward(x1, w, b, stride=stride, pad=pad)
    kept1 = [None if cols is None else cols.copy() for _, cols in cache1[5]]
    saved = out1.copy()
    out2, cache2 = c.conv2d_forward(x2, w, b, stride=stride, pad=pad)  # same shapes: same roles
    np.testing.assert_array_equal(out1, saved)
    for (_, cols), before in zip(cache1[5], kept1):
        if cols is not None:
            np.testing.assert_array_equal(cols, before)  # the im2col matrix the cache keeps
            assert not any(np.shares_memory(cols, other) for _, other in cache2[5] if other is not None)
    assert not np.shares_memory(out1, out2)
    dout1, dout2 = rng.standard_normal(out1.shape), rng.standard_normal(out2.shape)
    grads1 = c.conv2d_backward(dout1, cache1)
    saved_grads = [g.copy() for g in grads1]
    grads2 = c.conv2d_backward(dout2, cache2)
    for got, expected in zip(grads1, c.conv2d_backward_naive(dout1, cache1)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    for got, saved_grad, other in zip(grads1, saved_grads, grads2):
        np.testing.assert_array_equal(got, saved_grad)  # call 2's backward changed none of them
        assert not np.shares_memory(got, other)
    np.testing.assert_array_equal(out1, saved)


@pytest.mark.parametrize("pad", [0, 1])
def test_pooling_arrays_survive_the_next_call(rng, pad, slicing):
    x1, x2 = rng.standard_normal((5, 3, 8, 9)), rng.standard_normal((5, 3, 8, 9))
    out1, cache1 = c.maxpool2d_forward(x1, size=3, stride=2, pad=pad)
    saved_out, saved_argmax = out1.copy(), cache1[1].copy()
    out2, cache2 = c.maxpool2d_forward(x2, size=3, stride=2, pad=pad)
    np.testing.assert_array_equal(out1, saved_out)
    np.testing.assert_array_equal(cache1[1], saved_argmax)
    dout = rng.standard_normal(out1.shape)
    dx1 = c.maxpool2d_backward(dout, cache1)
    saved_dx = dx1.copy()
    dx2 = c.maxpool2d_backward(dout, cache2)
    np.testing.assert_allclose(dx1, c.maxpool2d_backward_naive(dout, cache1), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(dx1, saved_dx)
    assert not np.shares_memory(dx1, dx2)
    a1, cache_a = c.avgpool2d_forward(x1, size=2)
    saved_a = a1.copy()
    c.avgpool2d_backward(c.avgpool2d_forward(x2, size=2)[0], cache_a)
    np.testing.assert_array_equal(a1, saved_a)


def test_a_buffer_is_reused_only_when_nothing_refers_to_it():
    a = arrays.empty((4, 5), np.float64)
    address = a.ctypes.data
    view = a[1:, ::2].T  # a view keeps the memory in use
    del a
    b = arrays.empty((4, 5), np.float64)
    assert not np.shares_memory(b, view)
    del view
    c_ = arrays.empty((4, 5), np.float64)  # the first buffer is free again
    assert c_.ctypes.data == address
    m = memoryview(c_)  # any holder counts, not only NumPy's views
    del c_
    d = arrays.empty((4, 5), np.float64)
    assert d.ctypes.data != address
    del m
    assert arrays.empty((4, 5), np.float64).ctypes.data == address  # b and d hold the others


def test_a_buffer_serves_smaller_requests_down_to_half_its_size():
    assert arrays.REUSE_DOWN_TO == 2
    address = arrays.empty((100,), np.float64).ctypes.data
    assert arrays.empty((50,), np.float64).ctypes.data == address  # fit's last batch may be smaller
    assert arrays.empty((100,), np.float32).ctypes.data == address  # any dtype: bytes count
    assert arrays.empty((2, 5, 7), np.float64).ctypes.data == address  # any shape
    assert arrays.empty((49,), np.float64).ctypes.data != address
    assert arrays.empty((101,), np.float64).ctypes.data != address


def test_the_smallest_free_buffer_that_fits_is_taken():
    large, small = arrays.empty((100,), np.float64), arrays.empty((40,), np.float64)
    addresses = large.ctypes.data, small.ctypes.data
    del large, small
    assert arrays.empty((30,), np.float64).ctypes.data == addresses[1]
    assert arrays.empty((30,), np.float64).ctypes.data == addresses[1]  # the last one went: free again


def test_buffers_are_bounded_in_number_and_let_go_when_idle():
    held = [arrays.empty((1000,), np.float64) for _ in range(arrays.MAX_BUFFERS + 3)]
    assert arrays.kept_bytes() == arrays.MAX_BUFFERS * 8000  # the others are the caller's alone
    del held
    for _ in range(arrays.IDLE_REQUESTS + 64):  # another size, asked again and again
        arrays.empty((10,), np.float64)
    assert arrays.kept_bytes() == 80  # the large buffers went unused, and went


def test_empty_requests_touch_no_buffer():
    arrays.empty((0, 3), np.float64)
    assert arrays.kept_bytes() == 0


def test_threads_never_share_a_buffer(rng, monkeypatch):
    # Two user threads running the same layers at once, each checking its results: a buffer
    # shared between them would mix their numbers.
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    inputs = [rng.standard_normal((6, 3, 10, 10)) for _ in range(2)]
    expected = []
    for x in inputs:
        out, cache = c.conv2d_forward_naive(x, w, b, pad=1)
        pooled, pcache = c.maxpool2d_forward_naive(out, size=2)
        expected.append((pooled, c.conv2d_backward_naive(c.maxpool2d_backward_naive(pooled, pcache), cache)))
    both = threading.Barrier(2, timeout=10)
    failures = []

    def run(i):
        try:
            both.wait()
            for _ in range(30):
                out, cache = c.conv2d_forward(inputs[i], w, b, pad=1)
                pooled, pcache = c.maxpool2d_forward(out, size=2)
                grads = c.conv2d_backward(c.maxpool2d_backward(pooled, pcache), cache)
                np.testing.assert_allclose(pooled, expected[i][0], rtol=1e-12, atol=1e-12)
                for got, want in zip(grads, expected[i][1]):
                    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures[0]


def test_results_are_the_same_with_buffers_kept_or_not(rng, monkeypatch, slicing):
    x, w, b = rng.standard_normal((6, 4, 9, 9)), rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)

    def run():
        out, cache = c.conv2d_forward(x, w, b, pad=1)
        pooled, pcache = c.maxpool2d_forward(out, size=3, stride=2, pad=1)
        return (out, pooled, *c.conv2d_backward(c.maxpool2d_backward(pooled, pcache), cache))

    kept = [run() for _ in range(3)][-1]  # buffers in place, then reused
    monkeypatch.setattr(arrays, "KEEP", False)
    for a, b_ in zip(kept, run()):
        np.testing.assert_array_equal(a, b_)


def _bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench_for_test_arrays", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.parametrize("dtype, most_mib", [("float32", 16), ("float64", 27)])  # ReLU's arrays included
def test_a_lenet_step_keeps_about_its_working_memory(monkeypatch, dtype, most_mib):
    # arrays.py's docstring says what bench.py's LeNet step keeps in one thread.
    monkeypatch.setenv("CNNLIB_THREADS", "1")
    bench = _bench()
    step = bench.numpy_step("lenet", bench.make_data("lenet", dtype), naive=False)
    for _ in range(3):  # the first steps settle which array takes which buffer
        step()
    settled = arrays.kept_bytes()
    for _ in range(5):
        step()
    assert arrays.kept_bytes() == settled  # then the same buffers, step after step
    assert settled <= most_mib * 2**20
