"""benchmarks/bench.py still runs. It checks structure only: speed goals live in benchmarks/."""

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def run_bench(*args):
    proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bench_runs_and_prints_every_workload():
    out = run_bench("--no-naive", "--no-torch", "--no-training", "--repeats", "1", "--dtype", "float32")
    table = out.split("targets")[0]
    rows = [line for line in table.splitlines() if "float32" in line and "ms" not in line]
    assert [r.split("  ")[0] for r in rows] == [
        "LeNet step 64x1x28x28", "conv 16->32 3x3 32x16x32x32", "maxpool 2 64x8x28x28"]
    for row in rows:
        assert float(row.split()[-5]) > 0  # the fast column holds a time


def test_bench_prints_every_target_with_a_verdict():
    # A short epoch (scaled up to 60,000 in the report) keeps this quick; no timing is asserted.
    out = run_bench("--no-naive", "--no-torch", "--repeats", "1", "--epoch-images", "640")
    targets = out.split("\ntargets")[1].splitlines()
    ratio_rows = [r for r in targets if ", fast/torch" in r]
    assert len(ratio_rows) == 6 and all(r.rstrip().endswith("-") for r in ratio_rows)  # no torch: no verdict
    epoch = next(r for r in targets if r.startswith("epoch of 640"))
    assert "scaled to 60,000" in epoch and epoch.split()[-1] in ("met", "MET")
    memory = next(r for r in targets if r.startswith("peak memory"))
    assert int(re.search(r"(\d+) MB\s+< 300 MB", memory).group(1)) > 0
    digits = next(r for r in targets if r.startswith("digits to 97%"))
    assert float(digits.split("(")[1].split()[0]) >= 1  # epochs needed
