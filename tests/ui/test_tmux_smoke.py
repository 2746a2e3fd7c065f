"""The real ``station`` program in a real terminal (tmux): type the PIN, see the home screen.

Needs tmux (``apt-get install tmux``); CI must have it, so a missing tmux fails the test rather
than skipping it. The tmux server runs on a private socket in the test's directory and is killed at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from station.services import queries
from station.session import unlock

NOW = "2026-06-15T23:00:00+08:00"
DEMO_PIN = "246810"
TIMEOUT = 60.0  # generous: a loaded CI machine; each wait returns as soon as the text is there


def station_command() -> list[str]:
    exe = Path(sys.executable).with_name("station")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "station.cli.main"]


class Tmux:
    def __init__(self, env: dict[str, str], width: int, height: int, socket: Path) -> None:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is not installed: the terminal smoke test needs it (apt-get install tmux)"
        # A private server whose socket lives in the test's temporary directory.
        self.base = [tmux, "-u", "-S", str(socket), "-f", os.devnull]
        self.env, self.size = env, (width, height)

    def run(self, *args: str) -> str:
        return subprocess.run(
            [*self.base, *args], env=self.env, capture_output=True, text=True, check=True, timeout=30
        ).stdout

    def start(self, command: list[str]) -> None:
        w, h = self.size
        self.run("new-session", "-d", "-s", "t", "-x", str(w), "-y", str(h), subprocess.list2cmdline(command))

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "t", *keys)

    def wait_for(self, *texts: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while True:
            shown = self.screen()
            if all(t in shown for t in texts):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"not on screen after {TIMEOUT:.0f} s: {texts}\n{shown}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return (
            subprocess.run(
                [*self.base, "has-session", "-t", "t"], env=self.env, capture_output=True, timeout=30
            ).returncode
            == 0
        )

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True, timeout=30)


def test_station_in_tmux_unlocks_to_the_home_screen(tmp_path, monkeypatch):
    monkeypatch.setenv("STATION_NOW", NOW)
    env = dict(
        os.environ,
        STATION_KDF_COST="low",
        STATION_NOW=NOW,
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TERM="xterm-256color",
    )
    env.pop("STATION_PIN", None)
    data = tmp_path / "demo"
    subprocess.run(
        [*station_command(), "--data-dir", str(data), "demo-data", "--cases", "30"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with unlock(data, "admin", DEMO_PIN) as s:
        station_name = s.config.name
        newest = queries.list_cases(s, limit=1)[0].case_no

    term = Tmux(env, 80, 24, tmp_path / "tmux.sock")
    try:
        term.start([*station_command(), "--data-dir", str(data)])
        term.wait_for(station_name, "解锁工作站", "管理员")
        term.keys(*DEMO_PIN)
        term.keys("Enter")
        shown = term.wait_for(newest, "今日收件", "最近办件")
        assert station_name in shown
        assert "离线" in shown and "待上传" in shown
        term.keys("C-l")  # lock: back to the unlock screen
        term.wait_for("解锁工作站")
        term.keys("C-q")  # quit: the program ends, and with it the tmux session
        deadline = time.monotonic() + TIMEOUT
        while term.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.alive()
    finally:
        term.kill()
