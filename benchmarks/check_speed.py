"""How long each cnnlib.check takes on loop-based learner functions (the goal: under 2 s each).

A learner's first version of a layer is loops, and a check runs it on every case, plus the
finite differences of its forward; a wrong one also makes the check run every catalogue entry
that applies to it. This times both, the worst realistic cases. Run from the repository folder
with .venv activated:

    python benchmarks/check_speed.py            # best of 3 runs per check
    python benchmarks/check_speed.py --repeats 5
"""

import argparse
import time

import numpy as np

import cnnlib
from cnnlib import check


def relu_forward_loops(x):
    out = np.empty_like(x)
    for i, v in enumerate(x.flat):
        out.flat[i] = v if v > 0 else 0.0
    return out, x


def relu_backward_loops(dout, x):
    dx = np.empty_like(dout)
    for i, v in enumerate(x.flat):
        dx.flat[i] = dout.flat[i] if v > 0 else 0.0
    return dx


def dense_forward_loops(x, w, b):
    out = np.zeros((x.shape[0], w.shape[1]))
    for n in range(x.shape[0]):
        for m in range(w.shape[1]):
            out[n, m] = sum(x[n, d] * w[d, m] for d in range(x.shape[1])) + b[m]
    return out, (x, w, b)


def dense_backward_loops(dout, cache):
    x, w, b = cache
    dx, dw, db = np.zeros_like(x), np.zeros_like(w), np.zeros_like(b)
    for n in range(x.shape[0]):
        for m in range(w.shape[1]):
            db[m] += dout[n, m]
            for d in range(x.shape[1]):
                dx[n, d] += dout[n, m] * w[d, m]
                dw[d, m] += dout[n, m] * x[n, d]
    return dx, dw, db


def flatten_forward_loops(x):
    N = x.shape[0]
    out = np.empty((N, x[0].size))
    for n in range(N):
        for k, cell in enumerate(np.ndindex(x.shape[1:])):
            out[n, k] = x[n][cell]
    return out, x.shape


def flatten_backward_loops(dout, shape):
    dx = np.empty(shape)
    for n in range(shape[0]):
        for k, cell in enumerate(np.ndindex(shape[1:])):
            dx[n][cell] = dout[n, k]
    return dx


def conv_backward_assigning(dout, cache):
    """Lesson 5's loops with dx assigned (=) where it must be added: the catalogue has to find it."""
    x, w, b, (sh, sw), (ph, pw) = cache[:5]
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dw[f] += dout[n, f, i, j] * xp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW]
                    dxp[n, :, i * sh:i * sh + KH, j * sw:j * sw + KW] = dout[n, f, i, j] * w[f]
    return dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))


def maxpool_backward_every_tie(dout, cache):
    """Every tied maximum gets the gradient: the catalogue runs its loop-based pooling variants."""
    x, argmax, (KH, KW), (sh, sw), (ph, pw) = cache
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    dxp = np.zeros_like(xp)
    for n, c, i, j in np.ndindex(dout.shape):
        window = xp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW]
        dxp[n, c, i * sh:i * sh + KH, j * sw:j * sw + KW] += dout[n, c, i, j] * (window == window.max())
    return dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


def adam_efficient(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    for name, p in params.items():
        m = state.setdefault(("m", name), np.zeros_like(p))
        v = state.setdefault(("v", name), np.zeros_like(p))
        m[...] = beta1 * m + (1 - beta1) * grads[name]
        v[...] = beta2 * v + (1 - beta2) * grads[name] ** 2
        p -= lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m / (np.sqrt(v) + eps)


def epoch_unshuffled(model, x, y, step, batch_size, rng):
    total = 0.0
    for start in range(0, len(x), batch_size):
        loss, dlogits = cnnlib.softmax_cross_entropy(model.forward(x[start:start + batch_size]),
                                                     y[start:start + batch_size])
        model.backward(dlogits)
        step(model.params(), model.grads())
        total += loss * len(x[start:start + batch_size])
    return total / len(x)


def dropout_forward_loops(x, *, p, training=True, rng=None):
    if not training or p == 0:
        return x, (None, 1.0, x.shape)
    keep, out = np.zeros(x.shape, dtype=bool), np.zeros_like(x)
    for i, v in enumerate(x.flat):
        keep.flat[i] = rng.random() >= p
        out.flat[i] = v / (1 - p) if keep.flat[i] else 0.0
    return out, (keep, 1 / (1 - p), x.shape)


def dropout_backward_loops(dout, cache):
    keep, scale, shape = cache
    if keep is None:
        return dout
    dx = np.zeros_like(dout)
    for i, g in enumerate(dout.flat):
        dx.flat[i] = g * scale if keep.flat[i] else 0.0
    return dx


def dropout_backward_redrawn(dout, cache):
    """A mask drawn again in the backward: the catalogue has to find it."""
    keep, scale, shape = cache
    return dout if keep is None else dout * (np.random.random(shape) >= 1 - 1 / scale) * scale


def batchnorm_backward_constants(dout, cache):
    """The mean and the variance taken as constants: every batch-norm entry of the catalogue runs."""
    x, x_hat, mean, var, gamma, beta, eps, training = cache
    scale = (gamma / np.sqrt(var + eps)).reshape(1, -1, 1, 1)
    return dout * scale, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))


def adamw_l2(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    """Adam's L2 in place of AdamW's decay."""
    ref.adam_step(params, grads, state, lr, beta1, beta2, eps, weight_decay)


ref = check.reference


def softmax_cross_entropy_loops(logits, y):
    N, K = logits.shape
    loss, dlogits = 0.0, np.zeros_like(logits)
    for n in range(N):
        top = max(logits[n])
        exps = [np.exp(v - top) for v in logits[n]]
        total = sum(exps)
        loss -= (logits[n, y[n]] - top) - np.log(total)
        for k in range(K):
            dlogits[n, k] = (exps[k] / total - (k == y[n])) / N
    return loss / N, dlogits


CHECKS = {
    "dense": lambda: check.dense(forward=dense_forward_loops, backward=dense_backward_loops),
    "relu": lambda: check.relu(forward=relu_forward_loops, backward=relu_backward_loops),
    "conv2d": lambda: check.conv2d(forward=cnnlib.conv2d_forward_naive, backward=cnnlib.conv2d_backward_naive),
    "maxpool2d": lambda: check.maxpool2d(forward=cnnlib.maxpool2d_forward_naive,
                                         backward=cnnlib.maxpool2d_backward_naive),
    "avgpool2d": lambda: check.avgpool2d(forward=cnnlib.avgpool2d_forward_naive,
                                         backward=cnnlib.avgpool2d_backward_naive),
    "flatten": lambda: check.flatten(forward=flatten_forward_loops, backward=flatten_backward_loops),
    "softmax_cross_entropy": lambda: check.softmax_cross_entropy(softmax_cross_entropy_loops),
    "numerical_gradient": lambda: check.numerical_gradient(cnnlib.numerical_gradient),
    "conv2d_one_channel": lambda: check.conv2d_one_channel(
        lambda x, k, b=0.0, stride=1, pad=0: cnnlib.conv2d_forward_naive(x[None, None], k[None, None], np.array([b]),
                                                                         stride=stride, pad=pad)[0][0, 0]),
    "scatter_one": lambda: check.scatter_one(ref.scatter_one),
    "layer": lambda: check.layer(ref.dense_with, "dense"),
    "sequential": lambda: check.sequential(forward=ref.run_forward, backward=ref.run_backward),
    "network": lambda: check.network(cnnlib.Sequential(cnnlib.Conv2D(1, 2, 3, pad=1, rng=0), cnnlib.ReLU(),
                                                       cnnlib.Flatten(), cnnlib.Dense(32, 3, rng=1)), (1, 4, 4)),
    "adam": lambda: check.adam(ref.adam_step),
    "train_epoch": lambda: check.train_epoch(ref.train_one_epoch),
    "batchnorm2d": lambda: check.batchnorm2d(forward=cnnlib.batchnorm2d_forward_naive,
                                             backward=cnnlib.batchnorm2d_backward_naive),
    "dropout": lambda: check.dropout(forward=dropout_forward_loops, backward=dropout_backward_loops),
    "sgd_weight_decay": lambda: check.sgd_weight_decay(ref.sgd_momentum_step),
    "adamw": lambda: check.adamw(ref.adamw_step),
    # Wrong ones: every catalogue entry for the check runs on their cases.
    "conv2d, dx assigned": lambda: check.conv2d(forward=cnnlib.conv2d_forward_naive, backward=conv_backward_assigning),
    "maxpool2d, every tie": lambda: check.maxpool2d(backward=maxpool_backward_every_tie),
    "adam, efficient form": lambda: check.adam(adam_efficient),
    "train_epoch, no shuffle": lambda: check.train_epoch(epoch_unshuffled),
    "batchnorm2d, constants": lambda: check.batchnorm2d(forward=cnnlib.batchnorm2d_forward_naive,
                                                        backward=batchnorm_backward_constants),
    "dropout, mask redrawn": lambda: check.dropout(forward=dropout_forward_loops, backward=dropout_backward_redrawn),
    "adamw, Adam's L2": lambda: check.adamw(adamw_l2),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'check':<26}{'best of ' + str(args.repeats):>12}  verdict   goal < 2 s")
    worst = 0.0
    for name, run in CHECKS.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = run()
            times.append(time.perf_counter() - start)
        worst = max(worst, min(times))
        met = "met" if min(times) < 2 else "NOT MET"
        print(f"{name:<26}{min(times):>10.3f} s  {'PASSED' if report.passed else 'FAILED':<9} {met}")
    print(f"slowest check: {worst:.3f} s")


if __name__ == "__main__":
    main()
