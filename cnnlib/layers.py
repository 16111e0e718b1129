"""Layer classes: the pure functions plus the bookkeeping a network needs.

A layer object does three things the functions leave to the caller: it owns its parameters
(`params`, a dict of arrays: "w" and "b", empty for layers without any), it remembers the
cache of its last forward pass so `backward(dout)` needs nothing else, and it stores the
parameter gradients of its last backward pass in `grads` (same keys as `params`).

    out = layer.forward(x)      # keeps the cache
    dx = layer.backward(dout)   # fills layer.grads, returns dL/dx

Shapes: N batch, C channels, F filters, KH x KW kernel, D input and M output features;
every layer's x and out are (N, ...), (N, C, H, W) images or (N, D) features.

The arithmetic is entirely the vectorized functions'; nothing here computes a gradient.
`grads` arrays are overwritten in place, like `params`, so a reference taken once (by an
optimizer, for example) stays valid for the whole of training.

Every layer has a `training` flag, True by default: BatchNorm2D and Dropout behave
differently in training and in evaluation, the others ignore it. Sequential.train() and
.eval() set it on every layer; fit trains in train mode and evaluate runs in eval mode.
A layer may also keep `buffers`, arrays it updates itself rather than being trained
(BatchNorm2D's running statistics): saved and loaded with the weights, never given to an
optimizer.
"""

import numbers

import numpy as np

from ._calls import run_backward
from ._validate import as_flag, as_pair, positive_int
from .activations import relu_backward, relu_forward
from .batchnorm import _number, batchnorm2d_backward, batchnorm2d_forward
from .conv import conv2d_backward, conv2d_forward
from .dense import dense_backward, dense_forward
from .dropout import check_p, dropout_backward, dropout_forward
from .flatten import flatten_backward, flatten_forward
from .init import check_float_dtype, init_weights
from .pool import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward


class Layer:
    """Base class. Subclasses implement `_forward(x) -> (out, cache)` and
    `_backward(dout, cache) -> dx`, calling the pure functions. A layer with weights may take
    `_backward(dout, cache, *, input_grad=True)` instead, to skip dx (Conv2D and Dense do; the
    rules are in cnnlib/_calls.py)."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.training = True
        self._cache = None

    def forward(self, x):
        """Run the layer on a batch and keep what backward needs.

        Parameters
        ----------
        x : (N, ...) ndarray, e.g. (N, C, H, W) images or (N, D) features.

        Returns
        -------
        out : (N, ...) ndarray, the layer's output.

        The cache refers to x rather than copying it (copies would double the memory of
        training), so change x in place only after the matching backward.
        """
        out, self._cache = self._forward(x)
        return out

    def backward(self, dout, *, input_grad=True):
        """Backpropagate through the last forward pass; fills `grads`.

        Parameters
        ----------
        dout : ndarray shaped like the last output, dL/dout.
        input_grad : bool, default True. False when nothing will use dx, as for the first
            layer of a network in training: a layer with weights then computes only their
            gradients, and one without weights has nothing to do.

        Returns
        -------
        dx : ndarray shaped like the last input x, dL/dx; None when input_grad is False.
        """
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward was called before forward: backward needs the "
                "values the forward pass saw, so call forward(x) first"
            )
        input_grad = as_flag(input_grad, "input_grad")
        # Whether _backward is called, told input_grad, and its dx kept: cnnlib/_calls.py.
        return run_backward(self._backward, dout, self._cache, input_grad=input_grad, params=self.params)

    def output_shape(self, input_shape):
        """Shape of one sample's output, without the batch axis, e.g. (1, 8, 8) -> (8, 8, 8).

        Parameters
        ----------
        input_shape : tuple of int, one sample's input shape, e.g. (C, H, W).

        Returns
        -------
        tuple of int. Raises ValueError if the layer cannot take that input.

        The forward function itself is run on an empty batch (N = 0): it costs nothing, and
        the shape formula and the ValueError for a bad shape are exactly the function's own.
        """
        shape = tuple(input_shape)
        if not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ValueError(
                f"input_shape must be a tuple of positive ints (no batch axis), got {input_shape!r}"
            )
        out, _ = self._forward(np.zeros((0, *shape)))  # (0, ...)
        return out.shape[1:]

    def _forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} must define _forward(x) -> (out, cache)")

    def _backward(self, dout, cache):
        raise NotImplementedError(f"{type(self).__name__} must define _backward(dout, cache) -> dx")

    def _set_params(self, **params):
        self.params = params
        # Zeros until the first backward; from then on always the last backward's gradients.
        self.grads = {name: np.zeros_like(p) for name, p in params.items()}

    def _store_grads(self, **grads):
        for name, g in grads.items():
            self.grads[name][...] = g

    def __repr__(self):
        return f"{type(self).__name__}()"


class Conv2D(Layer):
    """2-D convolution layer, weights w : (F, C, KH, KW), biases b : (F,).

    Parameters
    ----------
    in_channels, out_channels : int, C and F.
    kernel_size, stride, pad : int or (int, int)
    init : {"he", "glorot"}, how w is drawn; He suits a conv followed by ReLU.
    rng : int, np.random.Generator or None; an int seed makes the weights reproducible,
        one Generator shared by several layers gives each different weights, None (the
        default) draws fresh weights every time.
    dtype : np.float32 or np.float64
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, pad=0, init="he", rng=None,
                 dtype=np.float64):
        super().__init__()
        C, F = positive_int(in_channels, "in_channels"), positive_int(out_channels, "out_channels")
        KH, KW = as_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = as_pair(stride, "stride", minimum=1)
        self.pad = as_pair(pad, "pad", minimum=0)
        w = init_weights(init, (F, C, KH, KW), C * KH * KW, F * KH * KW, rng, dtype)
        self._set_params(w=w, b=np.zeros(F, dtype=w.dtype))

    def _forward(self, x):
        return conv2d_forward(x, self.params["w"], self.params["b"], stride=self.stride, pad=self.pad)

    def _backward(self, dout, cache, *, input_grad=True):
        dx, dw, db = conv2d_backward(dout, cache, input_grad=input_grad)
        self._store_grads(w=dw, b=db)
        return dx

    def __repr__(self):
        F, C, KH, KW = self.params["w"].shape
        return f"Conv2D({C}, {F}, {(KH, KW)}, stride={self.stride}, pad={self.pad})"


class Dense(Layer):
    """Fully connected layer, out = x @ w + b, weights w : (D, M), biases b : (M,).

    Parameters
    ----------
    in_features, out_features : int, D and M.
    init : {"he", "glorot"}; Glorot suits the last layer, whose outputs are the logits.
    rng : int, np.random.Generator or None, as for Conv2D.
    dtype : np.float32 or np.float64
    """

    def __init__(self, in_features, out_features, *, init="glorot", rng=None, dtype=np.float64):
        super().__init__()
        D, M = positive_int(in_features, "in_features"), positive_int(out_features, "out_features")
        w = init_weights(init, (D, M), D, M, rng, dtype)
        self._set_params(w=w, b=np.zeros(M, dtype=w.dtype))

    def _forward(self, x):
        return dense_forward(x, self.params["w"], self.params["b"])

    def _backward(self, dout, cache, *, input_grad=True):
        dx, dw, db = dense_backward(dout, cache, input_grad=input_grad)
        self._store_grads(w=dw, b=db)
        return dx

    def __repr__(self):
        return f"Dense({self.params['w'].shape[0]}, {self.params['w'].shape[1]})"


class MaxPool2D(Layer):
    """Max pooling layer (no parameters).

    Parameters
    ----------
    size : int or (int, int), the window KH x KW.
    stride : int or (int, int), default `size` (windows side by side).
    pad : int or (int, int), at most half the window; padding never wins the max.
    """

    def __init__(self, size=2, *, stride=None, pad=0):
        super().__init__()
        self.size = as_pair(size, "size", minimum=1)
        self.stride = self.size if stride is None else as_pair(stride, "stride", minimum=1)
        self.pad = as_pair(pad, "pad", minimum=0)

    def _forward(self, x):
        return maxpool2d_forward(x, size=self.size, stride=self.stride, pad=self.pad)

    def _backward(self, dout, cache):
        return maxpool2d_backward(dout, cache)

    def __repr__(self):
        return f"MaxPool2D({self.size}, stride={self.stride}, pad={self.pad})"


class AvgPool2D(Layer):
    """Average pooling layer (no parameters, no padding).

    Parameters
    ----------
    size : int or (int, int), the window KH x KW.
    stride : int or (int, int), default `size`.
    """

    def __init__(self, size=2, *, stride=None):
        super().__init__()
        self.size = as_pair(size, "size", minimum=1)
        self.stride = self.size if stride is None else as_pair(stride, "stride", minimum=1)

    def _forward(self, x):
        return avgpool2d_forward(x, size=self.size, stride=self.stride)

    def _backward(self, dout, cache):
        return avgpool2d_backward(dout, cache)

    def __repr__(self):
        return f"AvgPool2D({self.size}, stride={self.stride})"


class Flatten(Layer):
    """Flatten layer: (N, C, H, W) -> (N, C*H*W), and the reverse reshape for the gradient."""

    def _forward(self, x):
        return flatten_forward(x)

    def _backward(self, dout, cache):
        return flatten_backward(dout, cache)


class ReLU(Layer):
    """ReLU layer: out = max(x, 0), elementwise, any shape."""

    def _forward(self, x):
        return relu_forward(x)

    def _backward(self, dout, cache):
        return relu_backward(dout, cache)


class BatchNorm2D(Layer):
    """Batch normalisation per channel, for (N, C, H, W) images; see cnnlib/batchnorm.py.

    Parameters gamma : (C,), ones, and beta : (C,), zeros (the identity at first, as in
    PyTorch); buffers running_mean : (C,), zeros, and running_var : (C,), ones, updated by
    every forward in training and used in eval mode.

    Parameters
    ----------
    num_channels : int, C.
    momentum : float in [0, 1], PyTorch's sense: running = (1 - momentum) * running
        + momentum * batch.
    eps : float > 0
    dtype : np.float32 or np.float64, of the parameters and running statistics.
    """

    def __init__(self, num_channels, *, momentum=0.1, eps=1e-5, dtype=np.float64):
        super().__init__()
        C = positive_int(num_channels, "num_channels")
        self.momentum = _number(momentum, "momentum", low=0.0, high=1.0)
        self.eps = _number(eps, "eps", low=0.0, low_open=True)
        dtype = check_float_dtype(dtype)
        self._set_params(gamma=np.ones(C, dtype), beta=np.zeros(C, dtype))
        self.buffers = {"running_mean": np.zeros(C, dtype), "running_var": np.ones(C, dtype)}

    @property
    def running_mean(self):
        """(C,) ndarray, the running mean (the live array; load_weights copies into it)."""
        return self.buffers["running_mean"]

    @property
    def running_var(self):
        """(C,) ndarray, the running (unbiased) variance."""
        return self.buffers["running_var"]

    def _forward(self, x):
        p = self.params
        return batchnorm2d_forward(x, p["gamma"], p["beta"], training=self.training,
                                   running_mean=self.running_mean, running_var=self.running_var,
                                   momentum=self.momentum, eps=self.eps)

    def _backward(self, dout, cache):
        dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)
        self._store_grads(gamma=dgamma, beta=dbeta)
        return dx

    def __repr__(self):
        return f"BatchNorm2D({self.params['gamma'].shape[0]}, momentum={self.momentum:g}, eps={self.eps:g})"


class Dropout(Layer):
    """Inverted dropout layer (no parameters); see cnnlib/dropout.py. Eval mode passes x through.

    Parameters
    ----------
    p : float in [0, 1), the probability of dropping each value.
    rng : int, np.random.Generator or None. The layer keeps one generator and draws a new
        mask from it at every forward in training: an int seeds it (reproducible masks), a
        Generator is used as it is (shared with other layers, say), None seeds it afresh.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        self.p = check_p(p)
        if rng is not None and not isinstance(rng, np.random.Generator) and (
                isinstance(rng, bool) or not isinstance(rng, numbers.Integral)):
            raise TypeError(f"rng must be an int seed, a np.random.Generator or None, got {rng!r}")
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def _forward(self, x):
        return dropout_forward(x, p=self.p, training=self.training, rng=self.rng)

    def _backward(self, dout, cache):
        return dropout_backward(dout, cache)

    def __repr__(self):
        return f"Dropout(p={self.p:g})"
