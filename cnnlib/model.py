"""Sequential: a stack of layers run forward in order and backward in reverse.

Backpropagation is nothing more than this loop: each layer turns the gradient of the loss
with respect to its output into the gradient with respect to its input, and hands it down.

Shapes: N batch, K outputs (the logits' classes); every layer's x and out are (N, ...).

Parameters are named "<index>_<class>.<key>", e.g. "0_conv2d.w", so that an optimizer can
keep state per parameter and a saved .npz file lists exactly what it holds. Buffers (arrays a
layer updates itself, such as BatchNorm2D's running statistics) are named the same way,
e.g. "1_batchnorm2d.running_mean", and saved in the same file, beside the parameters.

`train()` and `eval()` set every layer's `training` flag (BatchNorm2D and Dropout read it).

A layer is a cnnlib `Layer` or anything shaped like one: an object with `forward(x)`,
`backward(dout)` and `params`/`grads` dicts, such as the layers a learner writes in lesson 8.
"""

from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from . import weights_io
from ._calls import run_backward
from ._validate import NotAMethod, as_flag, as_shape, positive_int
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU

LayerTrace = namedtuple("LayerTrace", ["name", "x_shape", "out_shape", "dx_shape"])


class Sequential:
    """A network made of layers applied one after the other.

    Parameters
    ----------
    *layers : layers, in order (a single list of layers works too). Each is a cnnlib Layer
        or an object of one's own with
        - ``forward(x) -> out``, keeping what its backward needs;
        - ``backward(dout) -> dx``, filling ``grads``; it may take ``input_grad`` as cnnlib's
          layers do (see Layer.backward), or not: then dx is computed and dropped when not
          wanted;
        - ``params`` and ``grads``: dicts of arrays with the same keys, empty without weights.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = layers[0]
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            _check_layer(layer, i)
        if len({id(layer) for layer in layers}) != len(layers):
            # A layer keeps the cache of its last forward pass; used twice, its second forward
            # would overwrite the cache the first backward needs, and its weights would be
            # updated twice per step. Make a new layer object for each position.
            raise ValueError("the same layer object appears more than once; give each position its own layer")
        self.layers = list(layers)
        self.names = [f"{i}_{type(layer).__name__.lower()}" for i, layer in enumerate(self.layers)]

    def forward(self, x):
        """x : (N, ...) ndarray -> the last layer's output, e.g. (N, K) logits.

        Raises TypeError naming the layer whose forward returns anything but one array.
        """
        for name, layer in zip(self.names, self.layers):
            x = _one_array(layer.forward(x), layer, name, "forward")
        return x

    def backward(self, dout, *, input_grad=True):
        """dout = dL/d(output of forward) -> dx = dL/dx; fills every layer's grads on the way.

        input_grad=False skips the first layer's dx, the gradient with respect to the input
        itself, and returns None: training never uses it (fit does this). Every layer's grads,
        the first's included, are the same either way.

        Raises TypeError naming the layer whose backward returns anything but one array (when
        its dx is used).
        """
        input_grad = as_flag(input_grad, "input_grad")
        for name, layer in zip(reversed(self.names[1:]), reversed(self.layers[1:])):
            dout = _backward(layer, dout, True, name)
        return _backward(self.layers[0], dout, input_grad, self.names[0])

    def params(self):
        """Dict name -> parameter array, the live arrays (writing into them changes the model)."""
        return {f"{name}.{key}": p
                for name, layer in zip(self.names, self.layers) for key, p in layer.params.items()}

    def grads(self):
        """Dict name -> gradient of the last backward pass, same names as params()."""
        return {f"{name}.{key}": g
                for name, layer in zip(self.names, self.layers) for key, g in layer.grads.items()}

    def buffers(self):
        """Dict name -> buffer array, the live arrays layers update themselves and do not train
        (BatchNorm2D's running_mean and running_var); empty for a model without any.

        Saved and loaded with the parameters, never given to an optimizer. A layer of one's
        own may keep a `buffers` dict too.
        """
        return {f"{name}.{key}": b for name, layer in zip(self.names, self.layers)
                for key, b in _layer_buffers(layer).items()}

    def train(self, mode=True):
        """Put every layer in training mode (mode=False: eval mode); returns the model.

        In training mode BatchNorm2D normalises with each batch's statistics and updates its
        running ones, and Dropout drops; in eval mode BatchNorm2D uses its running statistics
        and Dropout passes everything through. Layers start in training mode. fit trains in
        training mode and evaluate runs in eval mode, each putting every layer's flag back as
        it was afterwards.
        """
        mode = as_flag(mode, "mode")
        for layer in self.layers:
            layer.training = mode
        return self

    def eval(self):
        """Put every layer in eval mode, as train(False); returns the model."""
        return self.train(False)

    def trace(self, x, dout=None):
        """Run forward then backward and record every layer's shapes.

        Parameters
        ----------
        x : (N, ...) ndarray
        dout : ndarray shaped like the output, default seeded random numbers (only the shapes
            matter here, but an all-ones gradient is a habit worth not teaching).

        Returns
        -------
        list of LayerTrace(name, x_shape, out_shape, dx_shape), one per layer, in order.
        Backpropagation gives every layer dx.shape == x.shape: the gradient of the loss with
        respect to an array has one entry per entry of that array. The layers run in their
        current modes: in training mode a BatchNorm2D updates its running statistics here too.
        """
        shapes = []
        for name, layer in zip(self.names, self.layers):
            out = _one_array(layer.forward(x), layer, name, "forward")
            shapes.append((np.shape(x), out.shape))
            x = out
        dout = np.random.default_rng(0).standard_normal(x.shape) if dout is None else dout
        dx_shapes = []
        for name, layer in zip(reversed(self.names), reversed(self.layers)):
            dout = _backward(layer, dout, True, name)
            dx_shapes.append(np.shape(dout))
        return [LayerTrace(name, xs, outs, dxs)
                for name, (xs, outs), dxs in zip(self.names, shapes, reversed(dx_shapes))]

    def summary(self, input_shape):
        """A table of every layer's output shape and parameter count, like Keras' model.summary().

        Parameters
        ----------
        input_shape : tuple of int, one sample's shape without the batch axis, e.g. (1, 8, 8).

        Returns
        -------
        str; the batch axis is shown as N, since any batch size works.

        Notes
        -----
        A cnnlib layer tells its output shape with `output_shape`, at no cost. A layer of
        one's own (or a Layer subclass with its own `forward`) is run instead: its forward
        gets a batch of ONE sample of zeros, (1, *shape) float64. One, not an empty batch,
        because a forward written with loops over the samples, or one that indexes x[0],
        may fail on N = 0. That forward stores a cache like any other; the layer's
        attributes are put back afterwards, so a summary between a forward and its backward
        leaves the backward what it needs (unless the forward changed an object in place
        rather than assigning a new one).
        """
        rows = []
        shape = input_shape = as_shape(input_shape, "input_shape")
        for name, layer in zip(self.names, self.layers):
            shape = _output_shape(layer, name, shape)
            rows.append((name, _with_batch(shape), sum(p.size for p in layer.params.values())))
        total = sum(count for *_, count in rows)
        w_name = max(len("Layer"), *(len(r[0]) for r in rows))
        w_shape = max(len("Output shape"), *(len(r[1]) for r in rows))
        w_count = max(len("Params"), len(f"{total:,}"))
        line = "=" * (w_name + w_shape + w_count + 4)
        lines = [f"Input: {_with_batch(input_shape)}", line,
                 f"{'Layer':<{w_name}}  {'Output shape':<{w_shape}}  {'Params':>{w_count}}", line]
        lines += [f"{name:<{w_name}}  {shp:<{w_shape}}  {count:>{w_count},}" for name, shp, count in rows]
        lines += [line, f"Total params: {total:,}"]
        return "\n".join(lines)

    def save_weights(self, path):
        """Save every parameter and buffer (running statistics) to an .npz file, plain arrays
        ("0_conv2d.w", ...), no pickle; ".npz" is appended to `path` when missing. Returns the
        Path written. All or nothing: an interrupted save leaves the previous file as it was.
        Errors, and the file's format: see cnnlib/weights_io.py.
        """
        return weights_io.save_weights(self, path)

    def load_weights(self, path):
        """Copy the parameters and buffers saved by save_weights into this model, in place
        (references to them, an optimizer's for example, stay valid). The whole file is
        checked first, so on any error the model is left as it was. Errors: see
        cnnlib/weights_io.py.
        """
        weights_io.load_weights(self, path)

    fit, evaluate, predict = NotAMethod(), NotAMethod(), NotAMethod()  # cnnlib.fit(model, ...)

    def __repr__(self):
        return "Sequential(\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + ")"


_LAYER_PARTS = ("forward", "backward", "params", "grads")


def _layer_buffers(layer):
    """`layer`'s buffers dict; a layer of one's own may have none (or something else so named)."""
    buffers = getattr(layer, "buffers", None)
    return buffers if isinstance(buffers, Mapping) else {}


def _check_layer(layer, i):
    """TypeError unless `layer` can sit in a Sequential: a Layer, or one shaped like it."""
    missing = [part for part in _LAYER_PARTS if not hasattr(layer, part)]
    missing += [part for part in ("forward", "backward")
                if part not in missing and not callable(getattr(layer, part))]
    if missing:
        hint = (" (a Layer subclass whose __init__ does not call super().__init__() has no "
                "params or grads)" if isinstance(layer, Layer) else "")
        raise TypeError(
            f"layer {i} must be a cnnlib layer (Conv2D, Dense, ...) or an object with methods "
            f"forward and backward and dicts params and grads; {layer!r} ({type(layer).__name__}) "
            f"has no {' and no '.join(missing)}{hint}")
    for part in ("params", "grads"):
        value = getattr(layer, part)
        if not isinstance(value, Mapping):
            # A method called params() (rather than a dict) is the likely slip.
            raise TypeError(f"layer {i} ({type(layer).__name__}): {part} must be a dict of arrays "
                            f"(name -> array, empty without weights), got {type(value).__name__}")


def _backward(layer, dout, input_grad, name):
    """layer.backward(dout), by the rules of cnnlib/_calls.py, as Layer.backward calls a
    layer's _backward. `name` is the layer's in the model, for the error when its dx is not
    one array.
    """
    if isinstance(layer, Layer) and type(layer).backward is Layer.backward:
        dx = layer.backward(dout, input_grad=input_grad)  # applies those rules itself
    else:
        dx = run_backward(layer.backward, dout, input_grad=input_grad, params=layer.params)
    return _one_array(dx, layer, name, "backward") if input_grad else None


# What a layer's method must return, and the pure functions' habit that is the likely slip.
_ONE_ARRAY = {
    "forward": "a layer's forward returns one array: a function pair returns (out, cache), "
               "a layer keeps the cache itself",
    "backward": "a layer's backward returns one array, dx: a function pair returns (dx, dw, db), "
                "a layer keeps dw and db in its grads dict",
}


def _one_array(value, layer, name, method):
    """`value` if it is an ndarray, else a TypeError naming the layer whose `method` returned it.

    Caught here, at the layer, rather than as an AttributeError ('tuple' object has no
    attribute 'shape') from whichever code next touches the value.
    """
    if isinstance(value, np.ndarray):
        return value
    missing = f" (is a `return {'out' if method == 'forward' else 'dx'}` missing?)" if value is None else ""
    raise TypeError(f"layer {name} ({type(layer).__name__}): {method} returned {_describe(value)}{missing}; "
                    f"{_ONE_ARRAY[method]}")


def _output_shape(layer, name, shape):
    """One sample's output shape from one sample's input shape `shape` (see summary)."""
    if isinstance(layer, Layer) and type(layer).forward is Layer.forward:
        try:
            return layer.output_shape(shape)
        except ValueError as exc:
            raise ValueError(
                f"layer {name} ({layer!r}) cannot take input of shape {shape} "
                f"(one sample, no batch axis): {exc}"
            ) from exc
    saved = dict(vars(layer)) if hasattr(layer, "__dict__") else None
    try:
        out = layer.forward(np.zeros((1, *shape)))
    except Exception as exc:  # a learner's forward may fail in any way: name the layer
        raise ValueError(
            f"layer {name} ({type(layer).__name__}) failed on one sample of shape {shape} "
            f"(its forward was run on zeros of shape {(1, *shape)} to find its output shape): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if saved is not None:
            vars(layer).clear()
            vars(layer).update(saved)
    if not isinstance(out, np.ndarray) or out.ndim < 1 or out.shape[0] != 1:
        raise ValueError(
            f"layer {name} ({type(layer).__name__}): forward on a batch of one sample returned "
            f"{_describe(out)}; a layer's forward must return one array, batch axis first "
            "(a forward returning (out, cache) is the pure functions' habit, not a layer's)")
    return out.shape[1:]


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} item{'s' * (len(value) != 1)}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _with_batch(shape):
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def reference_cnn(*, channels=16, image_size=8, seed=0, dtype=np.float64):
    """The course's reference network for 1-channel square images, with 10 outputs (the logits).

    Conv2D(1, channels, 3, pad=1) -> ReLU -> MaxPool2D(2) -> Flatten -> Dense(channels*S*S, 10),
    with S = image_size // 2: 8 for the digits (S = 4), 28 for MNIST (S = 14).

    Every layer draws its weights from one Generator seeded with `seed`, so the result is
    reproducible and no two layers start from copies of the same random numbers. Trained as
    the README does (Adam, lr 1e-2, 15 epochs of batches of 32), it reached 96-98% test accuracy
    on the digits over seeds 0-5 (98.1% with seed 0), with 16 channels or 8 alike.
    """
    image_size = positive_int(image_size, "image_size")
    if image_size < 2:
        raise ValueError(f"image_size must be at least 2 (the pool window), got {image_size}")
    side = image_size // 2
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2D(1, channels, 3, pad=1, rng=rng, dtype=dtype),  # (N, channels, image_size, image_size)
        ReLU(),
        MaxPool2D(2),  # (N, channels, S, S)
        Flatten(),  # (N, channels*S*S)
        Dense(channels * side * side, 10, rng=rng, dtype=dtype),  # (N, 10)
    )
