"""A throwaway PostgreSQL cluster for tests and benchmarks (Debian's packages, no network).

``PgCluster.start()`` runs ``initdb`` into a fresh directory under /tmp, starts the
server on a unix socket in that directory (no TCP port), and ``stop()`` removes it
all. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (created by Debian's package) through ``runuser``.

    with PgCluster() as pg:
        url = pg.create_database("county_test")   # postgresql://postgres@/county_test?host=…
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def find_bindir() -> Path | None:
    """The directory with initdb and pg_ctl (Debian: /usr/lib/postgresql/<major>/bin)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    return None


class PgCluster:
    def __init__(self, *, durable: bool = False, port: int = 5432) -> None:
        self.durable = durable  # False: fsync off (tests); True: production durability (benchmarks)
        self.port = port
        self.bindir = find_bindir()
        self.root: Path | None = None
        self._as: list[str] = []

    @property
    def available(self) -> bool:
        return self.bindir is not None

    @property
    def sockdir(self) -> Path:
        assert self.root is not None
        return self.root / "sock"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PgCluster:
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="ccpg-", dir="/tmp"))
        data, sock = self.root / "data", self.root / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for p in (self.root, sock):
                os.chown(p, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        opts = [f"-k {sock}", f"-p {self.port}", "-c listen_addresses=''", "-c max_connections=200"]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        proc = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            " ".join(opts),
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if proc.returncode != 0:
            log = (
                (self.root / "server.log").read_text(errors="replace")
                if (self.root / "server.log").exists()
                else ""
            )
            self.stop()
            raise RuntimeError(f"pg_ctl start failed: {proc.stderr}\n{log[-2000:]}")
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.sockdir}&port={self.port}"

    def _admin(self):
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", user="postgres", host=str(self.sockdir), port=self.port)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.root / "data" / "postmaster.pid").exists():
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
