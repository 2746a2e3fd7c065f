#!/usr/bin/env python3
"""One-command set-up for a fresh machine with only Python 3.11+.

    python3 dev.py demo [--township]  # the demo county: its county center and the county office's station
                                      # (--township: a township station beside it, in a second window)
    python3 dev.py test               # create .venv, install, run the whole test suite
    python3 dev.py build              # PyInstaller: dist/station/ holding station and county-center,
                                      # then `station self-test` inside it
    python3 dev.py wheelhouse [--platform win_amd64]
                                      # dist/wheelhouse/: every dependency as a wheel, for
                                      # pip install --no-index --find-links dist/wheelhouse station

Installation is repeated only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
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
DEMO_PIN = "246810"
DEMO_PASSPHRASE = "demo-county-2026"  # station/services/demo_county.py


def ensure_env(extras: str = "dev") -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        sys.exit("需要 Python 3.11 或更高版本 / Python 3.11+ is required")
    if not PY.exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + ":" + extras
    if STAMP.exists() and STAMP.read_text() in (want, want.replace(":" + extras, ":dev,build")):
        return
    print("installing dependencies …", flush=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([PY, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extras}]"], check=True)
    STAMP.write_text(want)


def demo(extra: list[str]) -> int:
    """The county office's station on the demo county, syncing with its own county center.

    First run: ``station demo-data --county`` builds ``demo-data/county.db`` (the county
    center) and ``demo-data/station`` (enrolled, synced). Each run serves the county center
    on a free local port for as long as the station's UI is open.
    """
    station_dir = DEMO_DIR / "station"
    env = dict(os.environ, STATION_PIN=DEMO_PIN, COUNTY_PASSPHRASE=DEMO_PASSPHRASE)
    if not (station_dir / "station.json").exists():
        if DEMO_DIR.exists():  # an older or half-built demo: start over
            shutil.rmtree(DEMO_DIR)
        subprocess.run([str(BIN / "station"), "--data-dir", str(DEMO_DIR), "demo-data", "--county",
                        "--cases", str(DEMO_CASES)], check=True, env=env)
    db = "sqlite:///" + str((DEMO_DIR / "county.db").resolve())
    server = subprocess.Popen([str(BIN / "county-center"), "--db", db, "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=open(DEMO_DIR / "county-center.log", "ab"), env=env)
    try:
        line = server.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            print("县中心未能启动，见 demo-data/county-center.log", file=sys.stderr)
            return 1
        config = station_dir / "station.json"
        doc = json.loads(config.read_text(encoding="utf-8"))
        doc["county_url"] = m.group(0)  # this run's port
        config.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
        print(f"\n演示县中心：{m.group(0)}（按 F9 同步）", flush=True)
        print(f"演示县工作站：登录名 admin（管理员）或 shenpi（审批人员），PIN {DEMO_PIN}\n", flush=True)
        # The terminal UI; the PIN is typed on its unlock screen, not taken from the environment.
        ui_env = {k: v for k, v in os.environ.items() if k != "STATION_PIN"}
        return subprocess.run([str(BIN / "station"), "--data-dir", str(station_dir), *extra], env=ui_env).returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


def test(extra: list[str]) -> int:
    return subprocess.run([PY, "-m", "pytest", *extra], cwd=ROOT).returncode


DIST = ROOT / "dist"
BUILT = DIST / "station"


def build(extra: list[str]) -> int:
    """The one-folder build (packaging/station.spec), then its self-test run from inside the folder."""
    spec = ROOT / "packaging" / "station.spec"
    rc = subprocess.run([PY, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                         "--distpath", str(DIST), "--workpath", str(ROOT / "build" / "pyinstaller"), str(spec)],
                        cwd=ROOT).returncode
    if rc:
        return rc
    exe = BUILT / ("station.exe" if os.name == "nt" else "station")
    print(f"\nbuilt {BUILT}; running its self-test …", flush=True)
    # From a neutral folder and without the venv on PATH: only what the folder holds may be used.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run([str(exe), "self-test", *extra], cwd=DIST, env=env).returncode


def wheelhouse(extra: list[str]) -> int:
    """Every runtime dependency as a wheel, at the versions this .venv runs (the pins and what they pulled in).

    ``--platform win_amd64`` (or another pip platform tag) fetches the wheels of that platform for
    CPython 3.11 instead of this machine's. The county's IT staff then install offline with
    ``pip install --no-index --find-links wheelhouse station``.
    """
    out = DIST / "wheelhouse"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    frozen = subprocess.run([PY, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout
    constraints = out / "constraints.txt"
    constraints.write_text(frozen, encoding="utf-8")
    subprocess.run([PY, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True)
    [own] = out.glob("station-*.whl")
    target = []
    if "--platform" in extra:
        tag = extra[extra.index("--platform") + 1]
        target = ["--platform", tag, "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"]
    rc = subprocess.run([PY, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(out),
                         "-c", str(constraints), *target, str(own)]).returncode
    if rc == 0:
        print(f"wheelhouse: {out} ({len(list(out.glob('*.whl')))} wheels)\n"
              f"install offline: pip install --no-index --find-links {out} station")
    return rc


COMMANDS = {"demo": demo, "test": test, "build": build, "wheelhouse": wheelhouse}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    cmd, extra = sys.argv[1], sys.argv[2:]
    ensure_env("dev,build" if cmd == "build" else "dev")
    return COMMANDS[cmd](extra)


if __name__ == "__main__":
    sys.exit(main())
