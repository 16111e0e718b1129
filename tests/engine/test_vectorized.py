"""The fast functions contain no Python loop over the batch or over output pixels.

Instead of timing (speed goals live in benchmarks/), count the lines of cnnlib that run:
for a vectorized function that count depends on the kernel size only, so it must be the
same for a batch of 1 and a batch of 8, and for a small and a large image. (Conv's one loop
over the batch goes a chunk of several MiB at a time, cnnlib.engine.conv.CHUNK_BYTES: these
batches fit in one chunk, and test_conv runs its tests of the fast version with the chunks
forced to 2 images too.) The engine's allocator (cnnlib/engine/arrays.py) is not counted: it
looks through the buffers it keeps, as many as earlier calls left, whatever the batch.
"""

import os
import sys

import numpy as np
import pytest

import cnnlib as c

PACKAGE_DIR = os.path.dirname(c.__file__)
ALLOCATOR = os.path.join(PACKAGE_DIR, "engine", "arrays.py")


def lines_run(fn, *args, **kwargs):
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if not frame.f_code.co_filename.startswith(PACKAGE_DIR) or frame.f_code.co_filename == ALLOCATOR:
            return None  # NumPy's own Python code is not ours to count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(None)
    return count


def conv_pair(x):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, x.shape[1], 3, 2)), rng.standard_normal(4)
    out, cache = c.conv2d_forward(x, w, b, stride=(1, 2), pad=1)
    return lambda: c.conv2d_forward(x, w, b, stride=(1, 2), pad=1), lambda: c.conv2d_backward(out, cache)


def maxpool_pair(x):
    out, cache = c.maxpool2d_forward(x, size=3, stride=2, pad=1)
    return lambda: c.maxpool2d_forward(x, size=3, stride=2, pad=1), lambda: c.maxpool2d_backward(out, cache)


def avgpool_pair(x):
    out, cache = c.avgpool2d_forward(x, size=2)
    return lambda: c.avgpool2d_forward(x, size=2), lambda: c.avgpool2d_backward(out, cache)


@pytest.mark.parametrize("make_pair", [conv_pair, maxpool_pair, avgpool_pair])
def test_line_count_does_not_grow_with_batch_or_image(make_pair):
    rng = np.random.default_rng(1)
    small = make_pair(rng.standard_normal((1, 2, 6, 6)))
    large = make_pair(rng.standard_normal((8, 2, 20, 24)))
    for fn_small, fn_large in zip(small, large):
        n_small, n_large = lines_run(fn_small), lines_run(fn_large)
        assert n_small > 0
        assert n_small == n_large


def test_the_naive_versions_do_loop():
    # The counter can tell: the reference loops run once per output element.
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3)), np.zeros(1)
    x_big = rng.standard_normal((2, 1, 6, 6))
    assert lines_run(c.conv2d_forward_naive, x_big, w, b) > lines_run(c.conv2d_forward_naive, x, w, b)
