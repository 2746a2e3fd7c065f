#!/usr/bin/env python3
"""One-command set-up for a fresh machine with only Python 3.11+.

    python3 dev.py demo   # create .venv, install, build the demo county, run the station on it
    python3 dev.py test   # create .venv, install, run the whole test suite

Installation is repeated only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"
DEMO_DIR = ROOT / "demo-data"
DEMO_CASES = 600


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("需要 Python 3.11 或更高版本 / Python 3.11+ is required")
    if not PY.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    print("installing dependencies …", flush=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(want)


def demo(extra: list[str]) -> int:
    from_env = dict(os.environ, STATION_PIN=os.environ.get("STATION_PIN", "246810"))
    station = [str(BIN / "station"), "--data-dir", str(DEMO_DIR)]
    if not (DEMO_DIR / "station.json").exists():
        subprocess.run([*station, "demo-data", "--cases", str(DEMO_CASES)], check=True, env=from_env)
    print("\n演示县工作站（登录名 admin 或 shenpi，PIN 246810）最近的办件：\n", flush=True)
    return subprocess.run([*station, "--user", "admin", "case", "list", "--limit", "15", *extra],
                          env=from_env).returncode


def test(extra: list[str]) -> int:
    return subprocess.run([PY, "-m", "pytest", *extra], cwd=ROOT).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_env()
    cmd, extra = sys.argv[1], sys.argv[2:]
    return demo(extra) if cmd == "demo" else test(extra)


if __name__ == "__main__":
    sys.exit(main())
