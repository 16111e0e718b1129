"""Checks for lessons 5-7: the pieces around the layers, written as small functions in the lessons.

- `scatter_one(fn)`: lesson 5's one-channel dx, every output sending dout * w back onto its window.
- `pool_output_size(fn)`: lesson 6's (H', W') of a pooling layer.
- `permute_dense_weights(fn)`: lesson 7's dense weights for an F-order Flatten.
- `flatten_dense(fn)`: lesson 7's Flatten + dense as one contraction (np.einsum or np.tensordot).
- `port_dense_weights(fn)`: lesson 7's dense weights of a channels-last network, ported to channels-first.

scatter_one's cases are recorded as the backward of a convolution of one image with one filter,
so the catalogue's convolution entries read them as they read check.conv2d's. `reference` is the
module of the lessons' working functions (the exercise editions' fallbacks name it from here).
"""

import numpy as np

from . import reference
from ._core import refuse, rng, shown
from .basics import run


def _weight_cases(offset):
    for i, (label, N, shape, M) in enumerate([
            ("(C, H, W) = (3, 4, 2), 5 outputs", 2, (3, 4, 2), 5),
            ("(C, H, W) = (2, 3, 5), 2 outputs, batch 1", 1, (2, 3, 5), 2),
            ("(C, H, W) = (4, 2, 3), 1 output", 3, (4, 2, 3), 1),
            ("one channel, (C, H, W) = (1, 3, 4), 3 outputs", 2, (1, 3, 4), 3),
            ("square maps, (C, H, W) = (2, 3, 3), 4 outputs", 2, (2, 3, 3), 4)]):
        r = rng(offset + i)
        yield label, {"x": r.standard_normal((N, *shape)), "w": r.standard_normal((int(np.prod(shape)), M)),
                      "b": r.standard_normal(M), "shape": shape}


# ---- lesson 5: scatter_one ----
def _scatter_cases():
    for i, (label, hw, kernel, stride, pad) in enumerate([
            ("3x3 kernel, stride 1, pad 1", (6, 6), (3, 3), 1, 1),
            ("3x3 kernel, stride 1, pad 0", (5, 5), (3, 3), 1, 0),
            ("non-square image and kernel (7x5, 3x2), stride 2, pad 1", (7, 5), (3, 2), 2, 1),
            ("stride 3, pad 0: rows and columns 6-7 are never read", (8, 8), (3, 3), 3, 0),
            ("2x2 kernel, stride 2: windows do not overlap", (4, 6), (2, 2), 2, 0),
            ("3x3 kernel, stride 1, pad 2", (4, 5), (3, 3), 1, 2)]):
        r = rng(800 + i)
        dout = r.standard_normal(tuple((n + 2 * pad - k) // stride + 1 for n, k in zip(hw, kernel)))
        w = r.standard_normal(kernel)
        inputs = {"x": np.zeros((1, 1, *hw)), "w": w[None, None], "b": np.zeros(1), "dout": dout[None, None]}
        yield label, [dout, w, stride, pad, hw], {}, inputs, {"stride": stride, "pad": pad}


def _judge_scatter(case, dx):
    i = case.inputs
    want = reference.conv_grads(i["dout"], i["x"], i["w"], case.settings["stride"], case.settings["pad"])["dx"]
    case.judge("dx", dx, want[0, 0])
    if isinstance(dx, np.ndarray) and dx.ndim == 2:
        case.got["dx"], case.want["dx"] = dx[None, None], want


@shown
def scatter_one(fn=None, *args, **unknown):
    """Check lesson 5's fn(dout, w, stride, pad, shape) -> dx (H, W), one channel and one filter:
    every output (i, j) sends dout[i, j] * w back onto its window, and the padding is cut off."""
    refuse("scatter_one", "check.scatter_one(fn)", args, unknown)
    return run("scatter_one", "fn(dout, w, stride, pad, shape) -> dx of shape `shape`", fn,
               ["dout", "w", "stride", "pad", "shape"], _scatter_cases(), _judge_scatter)


# ---- lesson 6: pool_output_size ----
def _judge_sizes(case, got):
    want = reference.pool_output_size(*case.inputs["args"])
    got = tuple(got) if isinstance(got, list) else got
    if isinstance(got, tuple) and all(isinstance(g, np.integer) for g in got):
        got = tuple(int(g) for g in got)
    case.got["size"], case.want["size"] = got, want
    if not (isinstance(got, tuple) and len(got) == 2):
        case.fail(f"should return (H', W'), two ints, got {type(got).__name__}")
    elif not all(isinstance(g, int) and not isinstance(g, bool) for g in got):
        case.fail(f"should return two ints, got ({', '.join(type(g).__name__ for g in got)}) {got}")
    elif got != want:
        case.fail(f"got {got}, expected {want}")
    if case.status == "fail":
        case.wrong.add("size")


@shown
def pool_output_size(fn=None, *args, **unknown):
    """Check lesson 6's fn(H, W, size, stride) -> (H', W'), the output size of a pooling layer."""
    refuse("pool_output_size", "check.pool_output_size(fn)", args, unknown)

    def cases():
        for H, W, size, stride in [(8, 8, 2, 2), (7, 5, 3, 2), (6, 7, 2, 1), (8, 7, 2, 3), (4, 4, 4, 1), (5, 9, 3, 3),
                                   (9, 6, 3, 2)]:
            yield (f"{H}x{W} map, size {size}, stride {stride}", [H, W, size, stride], {},
                   {"args": (H, W, size, stride)}, {"axes": [(H, size, stride, 0), (W, size, stride, 0)]})

    return run("pool_output_size", "fn(H, W, size, stride) -> (H', W')", fn, ["H", "W", "size", "stride"], cases(),
               _judge_sizes)


# ---- lesson 7: the dense weights after a Flatten ----
def _weights_check(name, what, fn, offset, label, expected, args_of):
    def cases():
        for text, inputs in _weight_cases(offset):
            yield text, args_of(inputs), {}, inputs, {}

    def judge(case, got):
        key = "out" if label == "out" else "w"
        case.judge(key, got, expected(case.inputs), label=label)
        i = case.inputs
        if key == "w" and "w" in case.wrong and isinstance(got, np.ndarray) and got.shape == i["w"].shape:
            flat = i["x"].reshape(len(i["x"]), -1, order="F" if name == "permute_dense_weights" else "C")
            off = np.abs(flat @ got - flat @ expected(i)).max()
            case.problems[-1] += f"; the outputs with these weights are off by up to {off:.3g}"

    names = ["x", "w", "b"] if label == "out" else ["w", "shape"]
    return run(name, what, fn, names, cases(), judge)


@shown
def permute_dense_weights(fn=None, *args, **unknown):
    """Check lesson 7's fn(w, shape) -> w_F: the rows of w (C*H*W, M), which follow cnnlib's C-order
    Flatten of (C, H, W) = shape, for an F-order one (row j: the row of the cell at F position j)."""
    refuse("permute_dense_weights", "check.permute_dense_weights(fn)", args, unknown)
    return _weights_check("permute_dense_weights", "fn(w, shape) -> w_F, the same rows in the F order of the cells",
                          fn, 300, "w_F", lambda i: reference.permute_dense_weights(i["w"], i["shape"]),
                          lambda i: [i["w"], i["shape"]])


@shown
def flatten_dense(fn=None, *args, **unknown):
    """Check lesson 7's fn(x, w, b) -> out: Flatten then dense in one contraction, out (N, M) =
    x.reshape(N, -1) @ w + b for x (N, C, H, W) and w (C*H*W, M) in cnnlib's C-order rows."""
    refuse("flatten_dense", "check.flatten_dense(fn)", args, unknown)
    return _weights_check("flatten_dense", "fn(x, w, b) -> out (N, M), the same as dense(flatten(x))", fn, 400, "out",
                          lambda i: reference.flatten_dense(i["x"], i["w"], i["b"]), lambda i: [i["x"], i["w"], i["b"]])


@shown
def port_dense_weights(fn=None, *args, **unknown):
    """Check lesson 7's fn(w_nhwc, shape) -> w_nchw: the rows of a channels-last network's dense
    weights (its flattened (H, W, C) maps) for cnnlib's flattened (C, H, W) maps, shape = (C, H, W)."""
    refuse("port_dense_weights", "check.port_dense_weights(fn)", args, unknown)
    return _weights_check("port_dense_weights", "fn(w_nhwc, shape) -> w_nchw, shape = (C, H, W)", fn, 500, "w_nchw",
                          lambda i: reference.port_dense_weights(i["w"], i["shape"]), lambda i: [i["w"], i["shape"]])
