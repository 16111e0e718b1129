#!/usr/bin/env python3
"""Time cnnlib's fast and naive layers, and PyTorch on the CPU where installed, on the same work.

    python benchmarks/bench.py [--repeats 5] [--no-naive] [--no-torch] [--no-training]
                               [--dtype float32,float64] [--epoch-images 60000]
                               [--keep-freed-memory]

Every workload is one forward plus one backward pass:

    lenet    a LeNet-sized training step: batch 64 of 1x28x28 -> conv 8@3x3 pad 1 -> relu
             -> maxpool 2 -> conv 16@3x3 pad 1 -> relu -> maxpool 2 -> flatten -> dense 10
             -> softmax cross-entropy on random labels
    conv     one conv layer: batch 32 of 16x32x32, 32 filters 3x3, pad 1
    small    one conv layer of the digits' networks (lessons 12-14): batch 32 of 16x8x8,
             16 filters 3x3, pad 1 (maps under 100 pixels, which the engine treats apart)
    maxpool  one max-pool layer: batch 64 of 8x28x28, window 2

and two trainings with cnnlib.fit, each in a child process of its own so its memory is its own:

    epoch    one epoch of 60,000 random 1x28x28 images at batch 64 (MNIST's size, no download)
             through reference_cnn(image_size=28), float32, Adam: time and peak memory
    digits   reference_cnn on the 8x8 digits, float32, Adam lr 1e-2, batch 32, epoch after
             epoch until test accuracy reaches 97%: time (including each epoch's evaluation)

The layers are timed with malloc as the process found it: no allocator setting, as anyone
calling the layer functions gets them (the engine reuses its own memory, see
cnnlib/engine/arrays.py). --keep-freed-memory first applies cnnlib.engine.memory's setting,
to see what it would add.

Prints the median time of each in milliseconds, the ratios fast/torch and naive/fast, and
then every speed target of the course (issues 4 and 24) with its measured value and whether
it is met. See benchmarks/README.md.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Time the cnnlib of this checkout, whether or not (and wherever) the course is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cnnlib as L  # noqa: E402
from cnnlib.engine.memory import keep_freed_memory  # noqa: E402  (only with --keep-freed-memory)

WORKLOADS = {
    "lenet": "LeNet step 64x1x28x28",
    "conv": "conv 16->32 3x3 32x16x32x32",
    "small": "conv 16->16 3x3 32x16x8x8",
    "maxpool": "maxpool 2 64x8x28x28",
}
BATCH_KEYS = ("x", "y", "dout")  # the arrays whose first axis is the batch


def make_data(workload, dtype):
    """The arrays of one workload, from a fixed seed so every process draws the same ones."""
    rng = np.random.default_rng(0)

    def r(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    if workload == "lenet":
        return dict(x=r(64, 1, 28, 28), w1=r(8, 1, 3, 3, scale=0.3), b1=r(8, scale=0.1),
                    w2=r(16, 8, 3, 3, scale=0.1), b2=r(16, scale=0.1),
                    w3=r(16 * 7 * 7, 10, scale=0.05), b3=r(10, scale=0.1), y=rng.integers(0, 10, 64))
    if workload == "conv":
        return dict(x=r(32, 16, 32, 32), w=r(32, 16, 3, 3, scale=0.1), b=r(32), dout=r(32, 32, 32, 32))
    if workload == "small":
        return dict(x=r(32, 16, 8, 8), w=r(16, 16, 3, 3, scale=0.1), b=r(16), dout=r(32, 16, 8, 8))
    return dict(x=r(64, 8, 28, 28), dout=r(64, 8, 14, 14))


def numpy_step(workload, d, naive, lib=L):
    """A function that runs one forward + backward pass of `workload` with cnnlib (or `lib`,
    another version of it: benchmarks/alternate.py)."""
    sfx = "_naive" if naive else ""
    conv_f, conv_b = getattr(lib, "conv2d_forward" + sfx), getattr(lib, "conv2d_backward" + sfx)
    pool_f, pool_b = getattr(lib, "maxpool2d_forward" + sfx), getattr(lib, "maxpool2d_backward" + sfx)
    if workload in ("conv", "small"):
        def step():
            conv_b(d["dout"], conv_f(d["x"], d["w"], d["b"], pad=1)[1])
    elif workload == "maxpool":
        def step():
            pool_b(d["dout"], pool_f(d["x"], size=2)[1])
    else:
        def step():
            h, c1 = conv_f(d["x"], d["w1"], d["b1"], pad=1)
            h, r1 = lib.relu_forward(h)
            h, p1 = pool_f(h, size=2)
            h, c2 = conv_f(h, d["w2"], d["b2"], pad=1)
            h, r2 = lib.relu_forward(h)
            h, p2 = pool_f(h, size=2)
            h, f = lib.flatten_forward(h)
            logits, fc = lib.dense_forward(h, d["w3"], d["b3"])
            _, dh = lib.softmax_cross_entropy(logits, d["y"])
            dh, _, _ = lib.dense_backward(dh, fc)
            dh = lib.relu_backward(pool_b(lib.flatten_backward(dh, f), p2), r2)
            dh, _, _ = conv_b(dh, c2)
            dh = lib.relu_backward(pool_b(dh, p1), r1)
            conv_b(dh, c1)
    return step


def torch_step(workload, d):
    """The same work as numpy_step, in PyTorch; x requires grad too, as numpy_step computes dx."""
    import torch
    F = torch.nn.functional
    t = {k: torch.from_numpy(v) for k, v in d.items()}
    leaves = [k for k in t if k not in ("y", "dout")]
    for k in leaves:
        t[k].requires_grad_(True)

    def step():
        for k in leaves:
            t[k].grad = None  # autograd would otherwise add into last run's gradients
        if workload in ("conv", "small"):
            F.conv2d(t["x"], t["w"], t["b"], padding=1).backward(t["dout"])
        elif workload == "maxpool":
            F.max_pool2d(t["x"], 2).backward(t["dout"])
        else:
            h = F.max_pool2d(F.relu(F.conv2d(t["x"], t["w1"], t["b1"], padding=1)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, t["w2"], t["b2"], padding=1)), 2)
            logits = F.linear(h.flatten(1), t["w3"].T, t["b3"])  # cnnlib's w is (D, M)
            F.cross_entropy(logits, t["y"]).backward()
    return step


ROUNDS = 3  # fast and torch take turns this many times, so that both see the same load
# Seconds to wait at each change of turn: OpenBLAS's and OpenMP's threads keep spinning on
# the cores for up to a tenth of a second after their last call before they sleep.
SETTLE = 0.3


def run_ms(step, runs, warmup=0):
    """Wall times of `runs` calls of step() in ms, after `warmup` untimed calls."""
    time.sleep(SETTLE)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def torch_worker():
    """Entry point of the child process that times torch: one JSON request per stdin line,
    {"workload", "dtype", "runs", "warmup"}, answered by one JSON line of times in ms."""
    import torch
    print(json.dumps(dict(version=torch.__version__, threads=torch.get_num_threads())), flush=True)
    steps = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["workload"], req["dtype"])
        if key not in steps:
            steps[key] = torch_step(*key[:1], make_data(*key))
        print(json.dumps(run_ms(steps[key], req["runs"], req["warmup"])), flush=True)


class TorchTimer:
    """PyTorch timed in a child process, one run at a time on request, so that its runs and
    NumPy's alternate and see the same machine. In one process, PyTorch's thread pool and
    NumPy's BLAS threads would compete for the same cores."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--torch-worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("torch worker failed:\n" + self.proc.stderr.read().strip())
        return json.loads(line)

    def times(self, workload, dtype, runs, warmup=0):
        self.proc.stdin.write(json.dumps(dict(workload=workload, dtype=dtype, runs=runs, warmup=warmup)) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def start_torch():
    """A TorchTimer, or None with the reason there is none."""
    if importlib.util.find_spec("torch") is None:
        return None, "not installed"
    try:
        return TorchTimer(), None
    except RuntimeError as error:
        return None, str(error)


def blas_info():
    """The BLAS NumPy was built with and, if threadpoolctl is importable, what it runs with."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # the layout of show_config's dict is not a stable API
        text = "unknown"
    if importlib.util.find_spec("threadpoolctl"):
        from threadpoolctl import threadpool_info
        pools = [f"{p['internal_api']} {p['num_threads']} threads" for p in threadpool_info() if p["user_api"] == "blas"]
        text += f" ({', '.join(pools)})" if pools else ""
    return text


# (workload, dtype, most fast/torch allowed), with no allocator setting (issue 24); and the
# training targets (issue 4).
RATIO_TARGETS = [("lenet", "float32", 1.2), ("lenet", "float64", 1.5), ("conv", "float32", 1.2),
                 ("conv", "float64", 0.8), ("maxpool", "float32", 1.0), ("maxpool", "float64", 1.0)]
EPOCH_SECONDS, EPOCH_PEAK_MB, DIGITS_SECONDS, DIGITS_ACCURACY = 12.0, 300.0, 5.0, 0.97


def peak_rss_mb():
    """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def training_worker(spec):
    """Entry point of a child process: run one training workload, print one JSON line."""
    if spec["workload"] == "epoch":
        rng = np.random.default_rng(0)
        n = spec["images"]
        x = rng.random((n, 1, 28, 28), dtype=np.float32)  # drawn as float32: no float64 copy
        y = rng.integers(0, 10, n)
        model = L.reference_cnn(image_size=28, dtype=np.float32, seed=0)
        before = peak_rss_mb()
        start = time.perf_counter()
        L.fit(model, x, y, optimizer=L.Adam(lr=1e-3), epochs=1, batch_size=64, progress=False)
        seconds = time.perf_counter() - start
        print(json.dumps(dict(seconds=seconds, peak_mb=peak_rss_mb(), before_mb=before, data_mb=x.nbytes / 2**20)))
        return
    (x, y), (x_test, y_test) = L.datasets.load_digits(dtype=np.float32)
    model = L.reference_cnn(seed=0, dtype=np.float32)
    optimizer = L.Adam(lr=1e-2)
    start = time.perf_counter()
    for epoch in range(1, 31):
        L.fit(model, x, y, optimizer=optimizer, epochs=1, batch_size=32, seed=epoch, progress=False)
        accuracy = L.evaluate(model, x_test, y_test)[1]
        if accuracy >= DIGITS_ACCURACY:
            break
    seconds = time.perf_counter() - start
    print(json.dumps(dict(seconds=seconds, epochs=epoch, accuracy=accuracy)))


def run_training(workload, images):
    """Run training_worker in a child process; returns its result dict, or None with a reason."""
    spec = json.dumps(dict(workload=workload, images=images))
    proc = subprocess.run([sys.executable, __file__, "--training-worker", spec], capture_output=True, text=True)
    if proc.returncode != 0:
        return None, "worker failed:\n" + proc.stderr.strip()
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def target_rows(ratios, epoch, digits, images):
    """One (target, measured, goal, verdict) row per target of issue 4."""
    def verdict(ok):
        return "-" if ok is None else ("met" if ok else "NOT MET")

    rows = []
    for w, dt, most in RATIO_TARGETS:
        if dt in {d for (_, d) in ratios} or (w, dt) in ratios:
            r = ratios.get((w, dt))
            rows.append((f"{WORKLOADS[w]} {dt}, fast/torch", "-" if r is None else f"{r:.2f}x",
                         f"<= {most}x", verdict(None if r is None else r <= most)))
    if epoch is not None:
        label = f"epoch of {images:,} 1x28x28 at batch 64, float32"
        scaled = epoch["seconds"] * 60000 / images
        rows.append((label + ("" if images == 60000 else ", scaled to 60,000"), f"{scaled:.1f} s",
                     f"<= {EPOCH_SECONDS:g} s", verdict(scaled <= EPOCH_SECONDS)))
        rows.append((f"peak memory of that epoch's process (data {epoch['data_mb']:.0f} MB)",
                     f"{epoch['peak_mb']:.0f} MB", f"< {EPOCH_PEAK_MB:g} MB", verdict(epoch["peak_mb"] < EPOCH_PEAK_MB)))
    if digits is not None:
        reached = digits["accuracy"] >= DIGITS_ACCURACY
        rows.append((f"digits to {DIGITS_ACCURACY:.0%} test accuracy ({digits['epochs']} epochs, "
                     f"{digits['accuracy']:.1%})", f"{digits['seconds']:.1f} s", f"< {DIGITS_SECONDS:g} s",
                     verdict(reached and digits["seconds"] < DIGITS_SECONDS)))
    return rows


def print_table(head, rows, left=2):
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head, tuple("-" * n for n in widths)] + rows:
        print("  ".join(str(c).ljust(n) if i < left else str(c).rjust(n) for i, (c, n) in enumerate(zip(r, widths))))


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=9, help="timed runs of fast and torch (median)")
    ap.add_argument("--naive-repeats", type=int, default=1, help="timed runs of naive (median)")
    ap.add_argument("--naive-batch", type=int, default=16,
                    help="time naive on the first N samples and scale to the full batch; 0: full batch")
    ap.add_argument("--no-naive", action="store_true", help="skip the naive loops")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--dtype", default="float32,float64", help="comma-separated: float32,float64")
    ap.add_argument("--no-training", action="store_true", help="skip the epoch and digits trainings")
    ap.add_argument("--epoch-images", type=int, default=60000,
                    help="images in the timed epoch (default 60000; fewer is scaled up to 60,000)")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="apply cnnlib.engine.memory.keep_freed_memory() before timing the layers")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--training-worker", metavar="JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker()
    if args.training_worker:
        return training_worker(json.loads(args.training_worker))
    dtypes = [s.strip() for s in args.dtype.split(",") if s.strip()]
    if not dtypes or set(dtypes) - {"float32", "float64"}:
        ap.error(f"--dtype must list float32 and/or float64, got {args.dtype!r}")
    if args.repeats < 1 or args.naive_repeats < 1:
        ap.error("--repeats and --naive-repeats must be at least 1")
    if args.epoch_images < 64:
        ap.error("--epoch-images must be at least 64 (one batch)")
    started = time.perf_counter()
    # By default malloc stays as the process found it: the layers must be fast without a
    # process-wide setting, as anyone calling them gets them (issue 24).
    kept = keep_freed_memory() if args.keep_freed_memory else False

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores "
          f"({affinity} usable by this process)")
    if hasattr(os, "getloadavg"):
        # Other programs on the machine slow every column; a load above 0.5 means the numbers are noisy.
        print(f"load average before starting: {os.getloadavg()[0]:.2f}")
    print(f"numpy {np.__version__}, BLAS: {blas_info()}")
    print("allocator setting: " + ("keep_freed_memory() applied (--keep-freed-memory)" if kept else
                                   "none, malloc as the process found it" + (
                                       " (--keep-freed-memory did not apply here)" if args.keep_freed_memory else "")))
    timer, why = (None, "skipped (--no-torch)") if args.no_torch else start_torch()
    if timer:
        print(f"torch {timer.info['version']}, {timer.info['threads']} threads, timed in a child process")
    else:
        print(f"torch: {why}")
    print(f"median of {args.repeats} run(s) (fast and torch take {ROUNDS} turns, each after a warm-up run); ", end="")
    print("naive skipped" if args.no_naive else f"median of {args.naive_repeats} run(s), no warm-up (naive)")
    print(flush=True)  # the table takes a minute; show the header now even through a pipe

    rows, scaled, ratios = [], False, {}
    for w in WORKLOADS:
        for dt in dtypes:
            data = make_data(w, dt)
            step = numpy_step(w, data, naive=False)
            fast_times, torch_times = [], []
            for r in range(ROUNDS):
                # Each turn waits for the other side's threads to go idle, then warms up.
                runs = args.repeats // ROUNDS + (r < args.repeats % ROUNDS)
                fast_times += run_ms(step, runs, warmup=2 if r == 0 else 1)
                if timer:
                    torch_times += timer.times(w, dt, runs, warmup=2 if r == 0 else 1)
            fast = statistics.median(fast_times)
            tor = statistics.median(torch_times) if timer else None
            naive, note = None, ""
            if not args.no_naive:
                n_full = data["x"].shape[0]
                n = n_full if args.naive_batch <= 0 else min(args.naive_batch, n_full)
                part = {k: (v[:n] if k in BATCH_KEYS else v) for k, v in data.items()}
                # The loops do the same work for every sample, so time grows linearly with it.
                naive = statistics.median(run_ms(numpy_step(w, part, naive=True), args.naive_repeats)) * n_full / n
                if n < n_full:
                    note, scaled = f"*{n_full / n:g}", True
            ratios[(w, dt)] = fast / tor if tor else None
            rows.append((WORKLOADS[w], dt, fmt(fast), fmt(naive) + note, fmt(tor),
                         fmt(fast / tor, 2) if tor else "-", fmt(naive / fast, 0) if naive else "-"))

    if timer:
        timer.close()
    fast_head = "fast ms, " + ("malloc kept" if kept else "no malloc setting")
    print_table(("workload", "dtype", fast_head, "naive ms", "torch ms", "fast/torch", "naive/fast"), rows)
    if scaled:
        print(f"\n*k: naive timed on the first {args.naive_batch} samples of the batch, then multiplied by "
              f"k = batch size / {args.naive_batch}; --naive-batch 0 times the full batch.")

    epoch = digits = None
    if not args.no_training:
        print("\ntraining (each in a child process of its own) ...", flush=True)
        epoch, why = run_training("epoch", args.epoch_images)
        if epoch is None:
            print(f"epoch: {why}")
        digits, why = run_training("digits", 0)
        if digits is None:
            print(f"digits: {why}")
    print("\ntargets (-: not measured)")
    print_table(("target", "measured", "goal", "verdict"), target_rows(ratios, epoch, digits, args.epoch_images), left=1)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
