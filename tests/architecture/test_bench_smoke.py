"""The benchmark script keeps working (it is run for BENCHMARKS.md; no timings asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_benchmark_quick_mode_runs(tmp_path):
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    result = subprocess.run([sys.executable, "-m", "bench.store", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "PASS" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # only --write touches the results
