"""Sequential: a stack of layers run forward in order and backward in reverse.

Backpropagation is nothing more than this loop: each layer turns the gradient of the loss
with respect to its output into the gradient with respect to its input, and hands it down.

Parameters are named "<index>_<class>.<key>", e.g. "0_conv2d.w", so that an optimizer can
keep state per parameter and a saved .npz file lists exactly what it holds.
"""

from collections import namedtuple
from pathlib import Path

import numpy as np

from ._checks import as_flag, positive_int
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU

LayerTrace = namedtuple("LayerTrace", ["name", "x_shape", "out_shape", "dx_shape"])


class Sequential:
    """A network made of layers applied one after the other.

    Parameters
    ----------
    *layers : Layer objects, in order (a single list of layers works too).
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = layers[0]
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} must be a cnnlib layer (Conv2D, Dense, ...), got {layer!r}")
        if len({id(layer) for layer in layers}) != len(layers):
            # A layer keeps the cache of its last forward pass; used twice, its second forward
            # would overwrite the cache the first backward needs, and its weights would be
            # updated twice per step. Make a new layer object for each position.
            raise ValueError("the same layer object appears more than once; give each position its own layer")
        self.layers = list(layers)
        self.names = [f"{i}_{type(layer).__name__.lower()}" for i, layer in enumerate(self.layers)]

    def forward(self, x):
        """x : (N, ...) ndarray -> the last layer's output, e.g. (N, K) logits."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, *, input_grad=True):
        """dout = dL/d(output of forward) -> dx = dL/dx; fills every layer's grads on the way.

        input_grad=False skips the first layer's dx, the gradient with respect to the input
        itself, and returns None: training never uses it (fit does this). Every layer's grads,
        the first's included, are the same either way.
        """
        input_grad = as_flag(input_grad, "input_grad")
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        return self.layers[0].backward(dout, input_grad=input_grad)

    def params(self):
        """Dict name -> parameter array, the live arrays (writing into them changes the model)."""
        return {f"{name}.{key}": p
                for name, layer in zip(self.names, self.layers) for key, p in layer.params.items()}

    def grads(self):
        """Dict name -> gradient of the last backward pass, same names as params()."""
        return {f"{name}.{key}": g
                for name, layer in zip(self.names, self.layers) for key, g in layer.grads.items()}

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
        respect to an array has one entry per entry of that array.
        """
        shapes = []
        for layer in self.layers:
            out = layer.forward(x)
            shapes.append((np.shape(x), out.shape))
            x = out
        dout = np.random.default_rng(0).standard_normal(x.shape) if dout is None else dout
        dx_shapes = []
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            dx_shapes.append(dout.shape)
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
        """
        rows = []
        shape = tuple(input_shape)
        for name, layer in zip(self.names, self.layers):
            try:
                shape = layer.output_shape(shape)
            except ValueError as exc:
                raise ValueError(
                    f"layer {name} ({layer!r}) cannot take input of shape {shape} "
                    f"(one sample, no batch axis): {exc}"
                ) from exc
            rows.append((name, _with_batch(shape), sum(p.size for p in layer.params.values())))
        total = sum(count for *_, count in rows)
        w_name = max(len("Layer"), *(len(r[0]) for r in rows))
        w_shape = max(len("Output shape"), *(len(r[1]) for r in rows))
        w_count = max(len("Params"), len(f"{total:,}"))
        line = "=" * (w_name + w_shape + w_count + 4)
        lines = [f"Input: {_with_batch(tuple(input_shape))}", line,
                 f"{'Layer':<{w_name}}  {'Output shape':<{w_shape}}  {'Params':>{w_count}}", line]
        lines += [f"{name:<{w_name}}  {shp:<{w_shape}}  {count:>{w_count},}" for name, shp, count in rows]
        lines += [line, f"Total params: {total:,}"]
        return "\n".join(lines)

    def save_weights(self, path):
        """Save every parameter to an .npz file (plain arrays, no pickle); returns the Path.

        numpy appends ".npz" to `path` if it does not end with it already.
        """
        path = _npz_path(path)
        np.savez(path, **self.params())
        return path

    def load_weights(self, path):
        """Copy the parameters saved by save_weights into this model, in place.

        `path` is taken as save_weights takes it (".npz" is added when missing).
        The file must hold exactly this model's parameter names and shapes; anything else
        raises ValueError before a single value is copied. Copying in place (rather than
        replacing the arrays) keeps every reference to them, an optimizer's for example, valid.
        """
        path = _npz_path(path)
        with np.load(path, allow_pickle=False) as data:
            stored = {name: data[name] for name in data.files}
        params = self.params()
        problems = []
        if missing := sorted(params.keys() - stored.keys()):
            problems.append(f"missing from the file: {', '.join(missing)}")
        if extra := sorted(stored.keys() - params.keys()):
            problems.append(f"not in this model: {', '.join(extra)}")
        for name in sorted(params.keys() & stored.keys()):
            if stored[name].shape != params[name].shape:
                problems.append(f"{name} has shape {stored[name].shape} in the file, "
                                f"{params[name].shape} in the model")
        if problems:
            raise ValueError(f"weights in {path} do not fit this model: " + "; ".join(problems))
        for name, p in params.items():
            p[...] = stored[name]

    def __repr__(self):
        return "Sequential(\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + ")"


def _npz_path(path):
    """`path` as a Path ending in .npz, the way np.savez names the file it writes."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _with_batch(shape):
    return "(" + ", ".join(["N", *map(str, shape)]) + ")"


def reference_cnn(*, channels=16, image_size=8, seed=0, dtype=np.float64):
    """The course's reference network for 1-channel square images, with 10 outputs (the logits).

    Conv2D(1, channels, 3, pad=1) -> ReLU -> MaxPool2D(2) -> Flatten -> Dense(channels*S*S, 10),
    with S = image_size // 2: 8 for the digits (S = 4), 28 for MNIST (S = 14).

    Every layer draws its weights from one Generator seeded with `seed`, so the result is
    reproducible and no two layers start from copies of the same random numbers. With 16
    channels it reaches about 98% test accuracy on the digits; 8 levels off near 97%.
    """
    image_size = positive_int(image_size, "image_size")
    if image_size < 2:
        raise ValueError(f"image_size must be at least 2 (the pool window), got {image_size}")
    side = image_size // 2
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2D(1, channels, 3, pad=1, rng=rng, dtype=dtype),  # (N, channels, S*2, S*2)
        ReLU(),
        MaxPool2D(2),  # (N, channels, S, S)
        Flatten(),  # (N, channels*S*S)
        Dense(channels * side * side, 10, rng=rng, dtype=dtype),  # (N, 10)
    )
