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
import shlex
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
    on a free local port for as long as the county office's UI is open.

    ``--township``: also a township station (城关镇, ``demo-data/township``, enrolled and synced
    the first time) in a second window: a new tmux window inside tmux, a new console window on
    Windows; elsewhere the command to paste into a second terminal is printed.
    """
    township = "--township" in extra
    extra = [a for a in extra if a != "--township"]
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
        url = m.group(0)
        _point_at(station_dir, url)
        print(f"\n演示县中心：{url}（关闭县工作站的界面时一并停止）", flush=True)
        print(f"县工作站：登录名 admin（管理员）或 shenpi（审批人员），PIN {DEMO_PIN}；F9 同步，Ctrl+Q 退出", flush=True)
        if township:
            _township(url, db, env)
        print(flush=True)
        # The terminal UI; the PIN is typed on its unlock screen, not taken from the environment.
        ui_env = {k: v for k, v in os.environ.items() if k != "STATION_PIN"}
        return subprocess.run([str(BIN / "station"), "--data-dir", str(station_dir), *extra], env=ui_env).returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


def _point_at(station_dir: Path, url: str) -> None:
    """This run's county address (a new port each run) into the station's settings."""
    config = station_dir / "station.json"
    doc = json.loads(config.read_text(encoding="utf-8"))
    doc["county_url"] = url
    config.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")


TOWNSHIP_ORG = "330522101000"  # 城关镇 of the demo county (station/services/demo.py)


def _township(url: str, db: str, env: dict[str, str]) -> None:
    """The township station beside the county office's: set up once, then opened in a second window."""
    folder = DEMO_DIR / "township"
    station = str(BIN / "station")
    if not (folder / "station.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        run = dict(check=True, env=env, stdout=subprocess.PIPE)
        code = json.loads(subprocess.run([str(BIN / "county-center"), "--db", db, "enroll", "--org", TOWNSHIP_ORG,
                                          "--role", "township", "--name", "城关镇便民服务中心（演示）", "--json"],
                                         **run).stdout)["code"]
        subprocess.run([station, "--data-dir", str(folder), "init", "--org", TOWNSHIP_ORG, "--station-no", "2",
                        "--name", "城关镇便民服务中心", "--user", "chuangkou", "--role", "clerk",
                        "--user-name", "窗口员"], **run)
        subprocess.run([station, "--data-dir", str(folder), "enroll", "--server", url, "--code", code], **run)
        subprocess.run([station, "--data-dir", str(folder), "sync"], **run)
    _point_at(folder, url)
    command = [station, "--data-dir", str(folder)]
    print(f"乡镇工作站（城关镇）：登录名 chuangkou（窗口人员），PIN {DEMO_PIN}", flush=True)
    if os.name == "nt":  # a new console window
        subprocess.Popen(["cmd", "/c", "start", "乡镇工作站", "cmd", "/k", *command])
        print("乡镇工作站已在另一个窗口打开；在其中按 Ctrl+Q 退出", flush=True)
    elif os.environ.get("TMUX") and shutil.which("tmux"):
        subprocess.run(["tmux", "new-window", "-d", "-n", "township", " ".join(map(shlex.quote, command))],
                       check=False)
        print("乡镇工作站已在 tmux 的 township 窗口打开：按 Ctrl+B 再按 N 切换窗口；在其中按 Ctrl+Q 退出", flush=True)
    else:
        print("请另开一个终端窗口，运行：\n  " + " ".join(map(shlex.quote, command)), flush=True)


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
