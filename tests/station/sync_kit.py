"""Test kit for the station side of sync: a real county center and real stations.

:class:`CountyServer` is the county center of ``sync/server`` (SQLite, a fresh database in a
temporary directory) served by a real uvicorn on 127.0.0.1, port 0, in a thread. Stations are
real encrypted data directories (``tests.helpers.make_station``) enrolled with one-time codes
through the station's own code. :class:`ScriptedServer` is a tiny real HTTP server whose
answers a test writes by hand (for forged pages, wrong answers, 5xx, 429 …) — it speaks the
protocol with a county :class:`~sync.crypto.KeyPair` held by the test.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from schema import events as K
from schema.catalog import default_catalog
from schema.org import OrgCode, Role
from station.replication import enroll as enrolling
from station.session import unlock
from tests.helpers import COUNTY, PIN, make_station

os.environ.setdefault("COUNTY_KDF_COST", "low")
PASSPHRASE = "县中心管理口令-2026"


class CountyServer:
    """The real county center (SQLite unless ``db_url`` says otherwise) served by uvicorn on 127.0.0.1, port 0."""

    def __init__(self, root: Path, *, existing: bool = False, db_url: str | None = None, **settings: Any) -> None:
        from sync.server.app import BackgroundServer, create_app
        from sync.server.config import Settings
        from sync.server.db import connect
        from sync.server.keystore import init_county, unlock

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.db_url = db_url or f"sqlite:///{root / 'county.db'}"
        self.cdb = connect(self.db_url)
        if existing:
            self.county = unlock(self.cdb, PASSPHRASE)
        else:
            self.county = init_county(self.cdb, code=COUNTY, name="测试县", passphrase=PASSPHRASE)
        limits = {
            "rate_burst": 100_000,
            "rate_per_second": 100_000,
            "anon_rate_burst": 100_000,
            "anon_rate_per_second": 100_000,
            **settings,
        }
        self.settings = Settings(db_url=self.db_url, **limits)
        self.app = create_app(self.settings, cdb=self.cdb, county=self.county)
        self.server = BackgroundServer(self.app).start()
        self.url = self.server.url

    @classmethod
    def reopen(cls, root: Path, **settings: Any) -> CountyServer:
        """The county center restarted on an existing database (on another port)."""
        return cls(root, existing=True, **settings)

    def stop(self) -> None:
        self.server.stop()
        self.cdb.close()

    # -- the admin's commands, as plain functions ------------------------------------------------

    def code(self, org: str, level: str) -> str:
        from sync.server import registry

        return registry.make_code(self.cdb, self.county, org=org, level=level)

    def publish(self, kind: str, subject: str, body: dict[str, Any]):
        from sync.server import county_chain

        with self.cdb.write():
            return county_chain.append(self.cdb, self.county, kind, subject, body)

    def publish_catalog(self, version: str = "2026.2", drop: int = 1):
        cat = default_catalog().to_dict()
        cat = {**cat, "version": version, "county": COUNTY, "items": cat["items"][drop:]}
        return self.publish(K.CATALOG_PUBLISHED, f"catalog-{version}", cat)

    def revoke(self, station: str, reason: str = "电脑丢失") -> None:
        from sync.server import registry

        registry.revoke(self.cdb, self.county, station, reason)

    def station_row(self, station: str):
        S = self.cdb.m.Station
        return S.get_or_none(S.id == station)

    def events_of(self, station: str) -> list[tuple[int, str]]:
        """(seq, hash) of every event the county holds from ``station``, in seq order."""
        E = self.cdb.m.Event
        rows = E.select(E.data).where(E.station == station).tuples()
        out = [(d["seq"], d["hash"]) for d in (json.loads(r[0]) for r in rows)]
        return sorted(out)

    def __enter__(self) -> CountyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def enrolled_station(
    root: Path,
    county: CountyServer,
    *,
    org: str,
    role: Role = Role.AGENT,
    login: str = "agent1",
    name: str = "东村便民服务室",
):
    """A real station in ``root``, enrolled online with a fresh code. Returns the open Session."""
    s = make_station(root, org=org, role=role, login=login, name=name)
    enrolling.enroll_online(s, county.url, county.code(org, OrgCode(org).level.value))
    return s


def ok(report):
    """The sync report, asserted successful (its Chinese messages shown otherwise)."""
    assert report.outcome == "ok", report.messages
    return report


def reopen(root: Path, login: str = "agent1"):
    return unlock(root, login, PIN)


# -- a hand-scripted HTTP server ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, doc: Any, status: int = 200, **kw: Any) -> Reply:
        return cls(status, json.dumps(doc, ensure_ascii=False).encode(), **kw)


class ScriptedServer:
    """Answers each request with ``handler(method, path, body) -> Reply``; records the requests."""

    def __init__(self, handler: Callable[[str, str, bytes], Reply]) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((method, self.path, body))
                reply = outer.handler(method, self.path, body)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- station helpers -----------------------------------------------------------------------------------


def register_case(s, n: int = 1, *, code: str | None = None):
    """Register (and accept) a pension case at station ``s``; ``n`` varies the applicant."""
    from station.services import cases
    from tests.helpers import PENSION, id_number, material_names

    code = code or PENSION
    view = cases.register(
        s,
        item_code=code,
        name="王秀英",
        id_number=id_number(seq=f"{n % 1000:03d}"),
        phone="13800001234",
        received=material_names(code),
    )
    return cases.act(s, view.case_no, "accept")


def check_marks(s, county: CountyServer | None = None) -> int:
    """The synced marks match the stored receipt exactly; returns the acknowledged seq.

    Every own event up to ``sync.acked`` is marked, none after it; the stored receipt verifies
    with the county key and names our event's hash at that seq. With ``county``: the county
    holds our chain exactly once, hashes equal, at least up to ``acked``.
    """
    from station.replication import identity as I
    from sync.messages import open_receipt

    own = s.config.station_id
    acked = I.acked(s)
    rows = s.db.execute_sql(
        "SELECT seq, synced, hash FROM event WHERE station = ? ORDER BY seq", (own,)
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert all(bool(synced) == (seq <= acked) for seq, synced, _ in rows), (acked, [r[:2] for r in rows])
    if acked:
        c = I.county(s)
        receipt = open_receipt(json.loads(s.store.meta(I.RECEIPT)), c.sign_pub)
        assert receipt.station == own and receipt.seq == acked and receipt.head == rows[acked - 1][2]
    if county is not None:
        held = county.events_of(own)
        assert [seq for seq, _ in held] == list(range(1, len(held) + 1)), "a gap or a duplicate at the county"
        assert len(held) >= acked
        assert all(h == rows[seq - 1][2] for seq, h in held), "the county holds other events than ours"
    return acked
