"""How long each cnnlib.check takes on loop-based learner functions (the goal: under 2 s each).

A learner's first version of a layer is loops, and a check runs it on every case, plus the
finite differences of its forward; this times that worst realistic case. Run from the
repository folder with .venv activated:

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
        for k, (c, h, w) in enumerate(np.ndindex(x.shape[1:])):
            out[n, k] = x[n, c, h, w]
    return out, x.shape


def flatten_backward_loops(dout, shape):
    dx = np.empty(shape)
    for n in range(shape[0]):
        for k, (c, h, w) in enumerate(np.ndindex(shape[1:])):
            dx[n, c, h, w] = dout[n, k]
    return dx


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
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'check':<24}{'best of ' + str(args.repeats):>14}  verdict   goal < 2 s")
    worst = 0.0
    for name, run in CHECKS.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            report = run()
            times.append(time.perf_counter() - start)
        worst = max(worst, min(times))
        met = "met" if min(times) < 2 else "NOT MET"
        print(f"{name:<24}{min(times):>12.3f} s  {'PASSED' if report.passed else 'FAILED':<9} {met}")
    print(f"slowest check: {worst:.3f} s")


if __name__ == "__main__":
    main()
