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


def test_ui_benchmark_quick_mode_runs():
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    result = subprocess.run([sys.executable, "-m", "bench.ui", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "start → unlock screen first frame" in result.stdout
    assert "keypress in #search → list updated" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # only --write touches the results


def test_sync_ingest_benchmark_quick_mode_runs(tmp_path):
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    result = subprocess.run([sys.executable, "-m", "bench.sync_ingest", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "ingest ÷ raw, SQLite" in result.stdout and "township pull" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # only --write touches the results


def test_sync_link_benchmark_quick_mode_runs():
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    result = subprocess.run([sys.executable, "-m", "bench.sync", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "a sync with nothing new" in result.stdout and "speed-up over one record per request" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # only --write touches the results


def test_enroll_benchmark_quick_mode_runs():
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    result = subprocess.run([sys.executable, "-m", "bench.enroll", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "÷ SHA-256" in result.stdout and "whole online enrollment" in result.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before  # only --write touches the results
