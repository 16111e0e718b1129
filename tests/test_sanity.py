"""Read this test first: one small CNN built from cnnlib's layer functions, and every gradient
its backward pass computes checked against finite differences. (micrograd's test_engine.py checks
the gradients of small expressions against PyTorch; finite differences need nothing installed.)"""

import numpy as np

import cnnlib as c


def loss_and_gradients(x, w1, b1, w2, b2, y):
    """conv -> ReLU -> max-pool -> flatten -> dense -> softmax cross-entropy, then back again."""
    a1, conv_cache = c.conv2d_forward(x, w1, b1, pad=1)
    a2, relu_cache = c.relu_forward(a1)
    a3, pool_cache = c.maxpool2d_forward(a2, size=2)
    a4, flat_cache = c.flatten_forward(a3)
    scores, dense_cache = c.dense_forward(a4, w2, b2)
    loss, dscores = c.softmax_cross_entropy(scores, y)
    # The chain rule: each backward takes the gradient of the layer above it.
    da4, dw2, db2 = c.dense_backward(dscores, dense_cache)
    da1 = c.relu_backward(c.maxpool2d_backward(c.flatten_backward(da4, flat_cache), pool_cache), relu_cache)
    dx, dw1, db1 = c.conv2d_backward(da1, conv_cache)
    return loss, [dx, dw1, db1, dw2, db2]


def test_every_gradient_matches_finite_differences():
    # Fixed data: no ReLU input within a finite-difference step of 0, and no pool window where
    # a gradient flows with its top two values that close (all-zero windows after ReLU pass none).
    rng = np.random.default_rng(0)
    # float64, as finite differences need; 2 images of 1x6x4, so a transposed H and W would show;
    # 3 filters 3x3; pooled to 3x3x2 = 18 features, then 4 classes. Biases are random, not zero.
    inputs = [rng.standard_normal(shape) for shape in [(2, 1, 6, 4), (3, 1, 3, 3), (3,), (18, 4), (4,)]]
    inputs[3] *= 0.1  # small dense weights, as at the start of training: a saturated softmax
    # would give gradients so small that finite differences would be mostly rounding
    y = np.array([1, 3])
    _, gradients = loss_and_gradients(*inputs, y)
    names = ["dx", "dw1", "db1", "dw2", "db2"]
    for k, gradient in enumerate(gradients):
        def loss_of(a, k=k):  # the loss as a function of input k alone
            return loss_and_gradients(*inputs[:k], a, *inputs[k + 1:], y)[0]
        numerical = c.numerical_gradient(loss_of, inputs[k], 1.0)  # nudges each entry by +-1e-5
        assert c.rel_error(gradient, numerical) <= c.check.TOLERANCE, f"{names[k]} is wrong"
