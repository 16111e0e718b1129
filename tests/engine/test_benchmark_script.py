"""benchmarks/bench.py still runs. It checks structure only: speed goals live in benchmarks/.

One run with the smallest settings the script accepts (one timed run, no naive loops, no
PyTorch, an epoch of one batch) prints both tables; the test reads each.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench_output():
    proc = subprocess.run([sys.executable, str(BENCH), "--no-naive", "--no-torch", "--repeats", "1",
                           "--epoch-images", "64"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bench_runs_and_prints_every_workload(bench_output):
    table = bench_output.split("targets")[0]
    for dtype in ("float32", "float64"):
        rows = [line for line in table.splitlines() if dtype in line and "ms" not in line]
        assert [r.split("  ")[0] for r in rows] == [
            "LeNet step 64x1x28x28", "conv 16->32 3x3 32x16x32x32", "conv 16->16 3x3 32x16x8x8",
            "maxpool 2 64x8x28x28"]
        for row in rows:
            assert float(row.split()[-5]) > 0  # the fast column holds a time


def test_bench_prints_every_target_with_a_verdict(bench_output):
    # An epoch of one batch (scaled up to 60,000 in the report) keeps this quick; no timing is asserted.
    targets = bench_output.split("\ntargets")[1].splitlines()
    ratio_rows = [r for r in targets if ", fast/torch" in r]
    assert len(ratio_rows) == 6 and all(r.rstrip().endswith("-") for r in ratio_rows)  # no torch: no verdict
    epoch = next(r for r in targets if r.startswith("epoch of 64 "))
    assert "scaled to 60,000" in epoch and epoch.split()[-1] in ("met", "MET")
    memory = next(r for r in targets if r.startswith("peak memory"))
    assert int(re.search(r"(\d+) MB\s+< 300 MB", memory).group(1)) > 0
    digits = next(r for r in targets if r.startswith("digits to 97%"))
    assert float(digits.split("(")[1].split()[0]) >= 1  # epochs needed
