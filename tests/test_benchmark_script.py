"""benchmarks/bench.py still runs. It checks structure only: speed goals live in benchmarks/."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def test_bench_runs_and_prints_every_workload():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--no-naive", "--no-torch", "--repeats", "1", "--dtype", "float32"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "float32" in line and "ms" not in line]
    assert [r.split("  ")[0] for r in rows] == [
        "LeNet step 64x1x28x28", "conv 16->32 3x3 32x16x32x32", "maxpool 2 64x8x28x28"]
    for row in rows:
        assert float(row.split()[-5]) > 0  # the fast column holds a time
