"""Lesson 8 as learners write it: layer objects, the two loops of Sequential, a model.

check.layer(factory, kind) builds the layer with factory(w, b) for "dense" and factory() for
"relu"; a layer has params and grads (dicts), forward(x) -> out and backward(dout) -> dx.
check.sequential(forward=run_forward(layers, x), backward=run_backward(layers, dout)).
check.network(model, input_shape=...) takes a model with forward, backward, params(), grads().
Written for issue 23 from the lesson's stubs, without reading cnnlib/check.
"""

from functools import reduce

import numpy as np

from . import IN_PLACE, NONE, Learner

# ----------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------


class EinsumDense:
    """Keeps only x as its cache; einsum for everything; grads written into the same arrays."""

    def __init__(self, w, b):
        self.params = {"w": w, "b": b}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    def forward(self, x):
        self._x = x
        return np.einsum("nd,dm->nm", x, self.params["w"]) + self.params["b"]

    def backward(self, dout):
        np.einsum("nd,nm->dm", self._x, dout, out=self.grads["w"])
        self.grads["b"][...] = np.einsum("nm->m", dout)
        return np.einsum("nm,dm->nd", dout, self.params["w"])


class MaskReLU:
    """Keeps a boolean mask, not x."""

    def __init__(self):
        self.params, self.grads = {}, {}
        self.mask = None

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask


def make_dense_no_return(w, b):
    """A factory that builds the layer and forgets to return it."""
    layer = EinsumDense(w, b)
    layer.name = "fc"


class AccumulatingDense(EinsumDense):
    """grads["w"] += ...: the second backward adds to the first's gradients."""

    def backward(self, dout):
        self.grads["w"] += self._x.T @ dout
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["w"].T


class TypoGradsDense:
    """grads is a property reading self.dw, but backward stores self.d_w: AttributeError."""

    def __init__(self, w, b):
        self.params = {"w": w, "b": b}
        self.d_w, self.d_b = np.zeros_like(w), np.zeros_like(b)

    @property
    def grads(self):
        return {"w": self.dw, "b": self.d_b}

    def forward(self, x):
        self.x = x
        return x @ self.params["w"] + self.params["b"]

    def backward(self, dout):
        self.d_w[...] = self.x.T @ dout
        self.d_b[...] = dout.sum(axis=0)
        return dout @ self.params["w"].T


class ZeroingReLU(MaskReLU):
    """dout[~mask] = 0 and return dout: the gradient of the layer above is changed."""

    def backward(self, dout):
        dout[~self.mask] = 0.0
        return dout


# ----------------------------------------------------------------------------------------
# The two loops
# ----------------------------------------------------------------------------------------


def reduce_forward(layers, x):
    return reduce(lambda a, layer: layer.forward(a), layers, x)


def index_backward(layers, dout):
    for i in range(len(layers) - 1, -1, -1):
        dout = layers[i].backward(dout)
    return dout


def no_return_forward(layers, x):
    for layer in layers:
        x = layer.forward(x)


def no_return_backward(layers, dout):
    for layer in layers[::-1]:
        dout = layer.backward(dout)


def every_output_forward(layers, x):
    """Keeps every layer's output (to look at them later) and returns the whole list."""
    outputs = [x]
    for layer in layers:
        outputs.append(layer.forward(outputs[-1]))
    return outputs


def summary_forward(layers, x):
    """Returns a description of the result instead of the result."""
    for layer in layers:
        x = layer.forward(x)
    return f"output of shape {x.shape}"


def reversing_backward(layers, dout):
    """layers.reverse(): the caller's list of layers is left reversed."""
    layers.reverse()
    for layer in layers:
        dout = layer.backward(dout)
    return dout


def popping_forward(layers, x):
    """Consumes the list with pop(0): the caller's list is empty afterwards."""
    while layers:
        x = layers.pop(0).forward(x)
    return x


# ----------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------


def _three_layers(rng):
    return [EinsumDense(rng.standard_normal((5, 6)), rng.standard_normal(6)), MaskReLU(),
            EinsumDense(rng.standard_normal((6, 3)), rng.standard_normal(3))]


class NamedModel:
    """A model of its own, parameters named "fc1.w" etc."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        return reduce_forward(self.layers, x)

    def backward(self, dout):
        return index_backward(self.layers, dout)

    def _named(self, attribute):
        return {f"fc{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in getattr(layer, attribute).items()}

    def params(self):
        return self._named("params")

    def grads(self):
        return self._named("grads")


class ListModel(NamedModel):
    """params() and grads() as lists of arrays, not dicts name -> array."""

    def params(self):
        return [p for layer in self.layers for p in layer.params.values()]

    def grads(self):
        return [g for layer in self.layers for g in layer.grads.values()]


def named_model():
    return NamedModel(_three_layers(np.random.default_rng(4)))


def list_model():
    return ListModel(_three_layers(np.random.default_rng(4)))


RAISES = (("attributeerror", "error", "raise", "exception"),)
NET = (("input_shape", (5,)),)

CASES = [
    Learner("layer", "pass", "ok-einsum-dense", "einsum, x as cache, einsum(out=grads['w'])", fn=EinsumDense,
            args=("dense",)),
    Learner("layer", "pass", "ok-mask-relu", "boolean mask as cache", fn=MaskReLU, args=("relu",)),
    Learner("layer", "fail", "factory-without-return", "make_dense(w, b) builds the layer, returns None",
            fn=make_dense_no_return, args=("dense",), hint_words=NONE, keys=("returns_none",)),
    Learner("layer", "fail", "grads-accumulate", "grads['w'] += ...: a second backward adds up",
            fn=AccumulatingDense, args=("dense",),
            hint_words=(("replace", "accumulat", "add", "+=", "zero", "reset"),), keys=("grads_accumulate",)),
    Learner("layer", "fail", "grads-property-raises", "a grads property reading a misspelt attribute",
            fn=TypoGradsDense, args=("dense",), hint_words=RAISES, keys=("raises",)),
    Learner("layer", "fail", "relu-zeroes-dout", "dout[~mask] = 0; return dout", fn=ZeroingReLU, args=("relu",),
            hint_words=IN_PLACE, keys=("in_place",)),
    Learner("sequential", "pass", "ok-reduce-and-index", "functools.reduce forward, index loop backward",
            forward=reduce_forward, backward=index_backward),
    Learner("sequential", "fail", "forward-without-return", "the loop, no return", forward=no_return_forward,
            hint_words=NONE, keys=("returns_none",)),
    Learner("sequential", "fail", "backward-without-return", "the reverse loop, no return",
            backward=no_return_backward, hint_words=NONE, keys=("returns_none",)),
    Learner("sequential", "fail", "forward-returns-every-output", "returns the list of every layer's output",
            forward=every_output_forward, hint_words=(("list", "last"),), keys=("returns_list",)),
    Learner("sequential", "fail", "forward-returns-string", "returns a description string",
            forward=summary_forward, hint_words=(("str", "string"),), keys=("returns_not_array",)),
    Learner("sequential", "fail", "backward-reverses-the-list", "layers.reverse() on the caller's list",
            backward=reversing_backward, hint_words=IN_PLACE + (("list", "layers"),), keys=("layers_changed",)),
    Learner("sequential", "fail", "forward-pops-layers", "layers.pop(0) until empty", forward=popping_forward,
            hint_words=IN_PLACE + (("list", "layers"),), keys=("layers_changed",)),
    Learner("network", "pass", "ok-own-model-names", "a model class of its own, names fc0.w ...",
            fn=named_model, build=True, options=NET),
    Learner("network", "fail", "params-a-list", "params() and grads() return lists", fn=list_model, build=True,
            options=NET, hint_words=(("dict",),), keys=("params_not_dict",)),
]
