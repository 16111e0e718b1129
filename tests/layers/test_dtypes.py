"""Every backward returns gradients in the dtype of what they are gradients of.

A float32 network stays float32 even when an upstream gradient arrives in float64 (NumPy
would otherwise promote the result and the optimizer's in-place update would round it).
"""

import numpy as np
import pytest

import cnnlib as c


def pairs(rng):
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    wd, bd = rng.standard_normal((5, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    return {
        "conv": (lambda: c.conv2d_forward(x, w, b, pad=1), c.conv2d_backward),
        "conv naive": (lambda: c.conv2d_forward_naive(x, w, b, pad=1), c.conv2d_backward_naive),
        "maxpool": (lambda: c.maxpool2d_forward(x, size=2), c.maxpool2d_backward),
        "maxpool naive": (lambda: c.maxpool2d_forward_naive(x, size=2), c.maxpool2d_backward_naive),
        "avgpool": (lambda: c.avgpool2d_forward(x, size=2), c.avgpool2d_backward),
        "avgpool naive": (lambda: c.avgpool2d_forward_naive(x, size=2), c.avgpool2d_backward_naive),
        "dense": (lambda: c.dense_forward(x[:, 0, 0], wd, bd), c.dense_backward),
        "relu": (lambda: c.relu_forward(x), c.relu_backward),
    }


@pytest.mark.parametrize("name", ["conv", "conv naive", "maxpool", "maxpool naive", "avgpool",
                                  "avgpool naive", "dense", "relu"])
def test_float32_layers_return_float32_gradients_for_float64_dout(rng, name):
    forward, backward = pairs(rng)[name]
    out, cache = forward()
    assert out.dtype == np.float32
    grads = backward(rng.standard_normal(out.shape), cache)  # float64 dout
    for g in grads if isinstance(grads, tuple) else (grads,):
        assert g.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_])
def test_integer_and_boolean_input_becomes_float64(dtype):
    x = np.ones((1, 1, 4, 4), dtype=dtype)
    for out, _ in [c.maxpool2d_forward(x), c.avgpool2d_forward(x), c.relu_forward(x), c.flatten_forward(x),
                   c.conv2d_forward(x, np.ones((1, 1, 2, 2), np.float32), np.zeros(1, np.float32))]:
        assert out.dtype == np.float64
