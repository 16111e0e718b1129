"""Helpers shared by the layer tests: random data that keeps finite differences honest."""

import numpy as np

from cnnlib import numerical_gradient, rel_error

TOL = 1e-7  # the bar for every backward against finite differences, in float64


def distinct(rng, shape, gap=0.05):
    """Random values that are all at least `gap` apart and never within gap/2 of zero.

    Max-pooling and ReLU have kinks; a finite-difference step of 1e-5 must never move an
    element across one, or the numerical gradient is not the derivative at x.
    """
    size = int(np.prod(shape))
    grid = (np.arange(size) - size // 2 + 0.5) * gap  # spaced, symmetric, zero excluded
    return rng.permutation(grid).reshape(shape) + rng.uniform(-gap / 4, gap / 4, shape)


def check_grads(forward, inputs, grads, dout, tol=TOL):
    """Assert each analytic gradient matches the numerical one of sum(forward(*inputs) * dout).

    `forward(*inputs)` returns the output array; `grads` are the analytic gradients, in the
    order of `inputs`. Returns the relative errors, for the assertion message.
    """
    errors = []
    for k, (arr, grad) in enumerate(zip(inputs, grads)):
        def f(a, k=k):
            args = list(inputs)
            args[k] = a
            return forward(*args)
        num = numerical_gradient(f, arr, dout)
        assert grad.shape == arr.shape, f"gradient {k} has shape {grad.shape}, input has {arr.shape}"
        errors.append(rel_error(grad, num))
    assert max(errors) < tol, f"relative errors {errors} exceed {tol}"
    return errors
