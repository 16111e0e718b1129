#!/usr/bin/env python3
"""Time this checkout's cnnlib against an older commit's, old and new taking turns in one process.

    python benchmarks/alternate.py REV [--rounds 6] [--runs 15] [--threads N]

REV is any git revision (a commit, a tag, HEAD~3). Its cnnlib/ is extracted with `git archive`
into a temporary folder and imported as a second package, so that both versions run in this
process, one after the other, round after round: whatever the machine does meanwhile (another
program, a core the host takes away) falls on both. A claim that a change is faster comes from
this, not from two runs minutes apart. The order swaps each round, so with an even number of
rounds each version goes first as often as the other.

Workloads: bench.py's layer workloads (the layer functions, as the lessons call them), and
`Sequential` without `fit` (forward, loss, backward of lesson 12's six-layer digits network,
batch 32) and one epoch of `fit` on it, in float32 and float64. Prints, for each, the median of
all its timed runs in milliseconds for REV (old) and this checkout (new), and new/old: below 1,
this checkout is faster. --threads sets CNNLIB_THREADS for both (default: as the machine has).
"""

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (puts this checkout's cnnlib first on the path)


def load_old(rev, folder):
    """cnnlib as of git revision `rev`, imported as the package cnnlib_old."""
    archive = Path(folder) / "old.tar"
    with open(archive, "wb") as f:
        subprocess.run(["git", "-C", str(HERE.parent), "archive", rev, "cnnlib"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        # The "data" filter (Python 3.11.4 and later) refuses links and paths out of the folder.
        tar.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    init = Path(folder) / "cnnlib" / "__init__.py"
    spec = importlib.util.spec_from_file_location("cnnlib_old", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["cnnlib_old"] = module  # its relative imports resolve inside it
    spec.loader.exec_module(module)
    return module


def digits_network(lib, dtype):
    """Lesson 12's plain network: 6 x (conv 16@3x3 pad 1, ReLU), max-pool 2, Flatten, Dense 10."""
    init = np.random.default_rng(0)
    layers, c_in = [], 1
    for _ in range(6):
        layers += [lib.Conv2D(c_in, 16, 3, pad=1, rng=init, dtype=dtype), lib.ReLU()]
        c_in = 16
    layers += [lib.MaxPool2D(2), lib.Flatten(), lib.Dense(16 * 4 * 4, 10, rng=init, dtype=dtype)]
    return lib.Sequential(layers)


def sequential_step(lib, dtype):
    (x, y), _ = lib.datasets.load_digits(dtype=dtype)
    model, xb, yb = digits_network(lib, dtype), x[:32], y[:32]

    def step():
        _, dlogits = lib.softmax_cross_entropy(model.forward(xb), yb)
        model.backward(dlogits)
    return step


def fit_epoch(lib, dtype):
    (x, y), _ = lib.datasets.load_digits(dtype=dtype)

    def step():
        lib.fit(digits_network(lib, dtype), x, y, optimizer=lib.SGD(lr=0.01, momentum=0.9), epochs=1,
                batch_size=32, seed=0, progress=False)
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rev", help="the older git revision to compare with, e.g. HEAD~1")
    ap.add_argument("--rounds", type=int, default=6, help="turns each version takes (default 6)")
    ap.add_argument("--runs", type=int, default=15,
                    help="timed runs per turn of a layer or Sequential step (default 15)")
    ap.add_argument("--threads", type=int, help="CNNLIB_THREADS for both versions")
    args = ap.parse_args()
    if args.threads:
        os.environ["CNNLIB_THREADS"] = str(args.threads)
    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", args.rev],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as folder:
        versions = {commit: load_old(args.rev, folder), "this checkout": bench.L}
        load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
        print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
              f"CNNLIB_THREADS={os.environ.get('CNNLIB_THREADS', '(unset)')}{load}")
        print(f"{args.rounds} round(s), the two taking turns, {commit} first in rounds 1, 3, ...; each turn "
              f"{args.runs} runs after a warm-up (fit: 1 epoch per turn); new/old below 1: this checkout "
              "is faster\n")
        cases = [(bench.WORKLOADS[w], lambda lib, dt, w=w: bench.numpy_step(w, bench.make_data(w, dt), False, lib),
                  args.runs) for w in bench.WORKLOADS]
        cases += [("Sequential, digits, 6 conv, batch 32", sequential_step, args.runs),
                  ("fit, 1 epoch of that on the digits", fit_epoch, 1)]
        for label, make, runs in cases:
            for dtype in ("float32", "float64"):
                steps = {name: make(lib, dtype) for name, lib in versions.items()}
                times = {name: [] for name in versions}
                for r in range(args.rounds):
                    order = list(steps) if r % 2 == 0 else list(steps)[::-1]  # neither always goes first
                    for name in order:
                        times[name] += bench.run_ms(steps[name], runs, warmup=1)
                old, new = (statistics.median(t) for t in times.values())
                print(f"{label:38s} {dtype}  {commit}: {old:8.2f} ms  this checkout: {new:8.2f} ms  "
                      f"new/old {new / old:.2f}", flush=True)
        if hasattr(os, "getloadavg"):
            print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
