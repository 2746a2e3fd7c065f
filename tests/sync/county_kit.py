"""Test kit for the county center: simulated stations that seal, sign, push and pull like real ones.

Used by tests/sync (fixtures in conftest.py) and by bench/sync_ingest.py. A
:class:`SimStation` has a real key pair and a real hash chain (events sealed by
:class:`tests.helpers.Chains`), and speaks the wire protocol of :mod:`sync.api`
through ``requests``; it does not touch a station data directory. Like a real station,
its chain starts with ``station.initialised`` and the ``user.added`` of its first user
(seq 1 and 2, :data:`BOOT`), who then acts with the role of the station's level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests

from schema import canonical
from schema import events as K
from schema.events import Event
from schema.ids import new_id
from schema.org import OrgCode
from sync import api, bounded, enrollment, envelope
from sync.crypto import KeyPair
from sync.messages import doc_header, make_segment, open_doc, open_receipt, sign_doc
from sync.server import registry
from sync.server.db import CountyDB
from sync.server.keystore import County
from tests.helpers import Chains, Who, registration_body

ROLE_OF_LEVEL = {"village": "agent", "township": "clerk", "county": "reviewer"}
BOOT = 2  # events every chain starts with: station.initialised, user.added of the first user


@dataclass
class SimStation:
    org: str
    level: str
    chains: Chains
    id: str = field(default_factory=new_id)
    key: KeyPair = field(default_factory=KeyPair.generate)
    name: str = ""
    boot: bool = True  # False: an empty chain (a test that seals its first events itself)
    role: str = ""  # the first user's role (default: the level's working role)

    def __post_init__(self) -> None:
        self.role = self.role or ROLE_OF_LEVEL[self.level]
        if self.boot:
            self.record(K.STATION_INITIALISED, self.id, {"org": self.org, "name": self.name, "station_no": 1})
            self.add_user(self.who.actor, self.role, login=f"u{self.id[-6:]}")

    @property
    def who(self) -> Who:
        return Who(self.role, self.org, f"user-{self.id[-6:]}")

    def add_user(self, user_id: str, role: str, *, login: str = "", **claims: Any) -> Event:
        """``user.added`` of a user of this station (by its first user unless ``claims`` say otherwise)."""
        body = {"user_id": user_id, "login": login or user_id, "name": "测试用户", "role": role, "org": self.org}
        return self.record(K.USER_ADDED, user_id, body, **claims)

    @property
    def events(self) -> list[Event]:
        return self.chains.by_station.setdefault(self.id, [])

    # -- writing its own chain ---------------------------------------------------------------

    def record(
        self,
        kind: str,
        subject: str,
        body: dict[str, Any] | None = None,
        *,
        at: str | None = None,
        org: str | None = None,
        role: str | None = None,
        actor: str | None = None,
    ) -> Event:
        """Seal the next event of this chain; ``org``/``role``/``actor`` override what it claims."""
        me = self.who
        who = Who(role or me.role, org or me.org, actor or me.actor)
        ev = self.chains.build(kind, subject, body or {}, who, station=self.id, at=at)
        self.events.append(ev)
        return ev

    def register(
        self, case_id: str | None = None, code: str = "11000000210000000X4002021001001", **claims: Any
    ) -> Event:
        return self.record(K.CASE_REGISTERED, case_id or new_id(), registration_body(code), **claims)

    def segment(self, first: int = 1, last: int | None = None, *, county: str) -> dict[str, Any]:
        last = len(self.events) if last is None else last
        return make_segment(self.events[first - 1 : last], self.key, county)

    # -- the wire ---------------------------------------------------------------------------------

    def enroll_request(self, code: str, *, at: str = "2026-03-02T09:00:00+08:00") -> dict[str, str]:
        """A request as the station sends it: signed, with the MAC keyed from ``code``."""
        secret = enrollment.derive(code, OrgCode(self.org).county)
        return enrollment.make_request(
            self.key, secret, station=self.id, org=self.org, name=self.name or self.org, at=at
        )

    def push_blob(
        self, county: County, segments: list[dict[str, Any]], *, sender: str | None = None
    ) -> bytes:
        payload = canonical.encode(api.push_payload(sender or self.id, segments))
        return envelope.seal(
            payload, kind="push", sender=sender or self.id, recipients=[county.public.enc], signer=self.key
        )

    def pull_blob(
        self,
        county: County,
        cursor: int = 0,
        limit: int = api.DEFAULT_PULL_LIMIT,
        *,
        behalf: str | None = None,
        county_code: str | None = None,
    ) -> bytes:
        if behalf is None:
            wire = api.pull_request(
                self.key, county=county_code or county.code, station=self.id, cursor=cursor, limit=limit
            )
        else:
            doc = json.loads(
                api.pull_request(
                    self.key, county=county_code or county.code, station=self.id, cursor=cursor, limit=limit
                )["h"]
            )
            wire = sign_doc({**doc, "for": behalf}, self.key)
        return envelope.seal(
            canonical.encode(wire),
            kind="pull",
            sender=self.id,
            recipients=[county.public.enc],
            signer=self.key,
        )

    def open_page(self, county: County, blob: bytes) -> dict[str, Any]:
        opened = envelope.open_sealed(
            blob, self.key.enc_key, county.public.sign, expect=("page",), max_payload=bounded.PAGE_PAYLOAD
        )
        return open_doc(json.loads(opened.payload), county.public.sign, "page")

    def open_return(self, county: County, blob: bytes) -> dict[str, Any]:
        opened = envelope.open_sealed(
            blob, self.key.enc_key, county.public.sign, expect=("return",), max_payload=bounded.FILE_PAYLOAD
        )
        payload = json.loads(opened.payload)
        payload["pages"] = [open_doc(p, county.public.sign, "page") for p in payload["pages"]]
        payload["receipts"] = [open_receipt(r, county.public.sign) for r in payload["receipts"]]
        return payload


class Chains2(Chains):
    """:class:`Chains` that also keeps every sealed event per station (for segments)."""

    def __init__(self, start: str = "2026-03-02T09:00:00+08:00") -> None:
        super().__init__(start)
        self.by_station: dict[str, list[Event]] = {}


def make_station(org: str, level: str, chains: Chains2 | None = None, **kw: Any) -> SimStation:
    return SimStation(org=org, level=level, chains=chains or Chains2(), **kw)


def enroll_direct(cdb: CountyDB, county: County, st: SimStation) -> dict[str, Any]:
    """Enroll ``st`` with a fresh code through the plain functions (no HTTP)."""
    code = registry.make_code(cdb, county, org=st.org, level=st.level, name=st.name)
    answer = registry.enroll(cdb, county, st.enroll_request(code))
    return doc_header(answer, "enrolled")


# -- HTTP ----------------------------------------------------------------------------------------------


class Client:
    """A station's HTTP calls against a running county center."""

    def __init__(self, url: str, county: County) -> None:
        self.url = url
        self.county = county
        self.http = requests.Session()

    def push(self, st: SimStation, segments: list[dict[str, Any]], *, sender: str | None = None):
        r = self.http.post(
            f"{self.url}/v1/push",
            data=st.push_blob(self.county, segments, sender=sender),
            headers={"Content-Type": api.OCTET},
            timeout=60,
        )
        return r.status_code, r.json()

    def pull(self, st: SimStation, cursor: int = 0, limit: int = api.DEFAULT_PULL_LIMIT) -> dict[str, Any]:
        r = self.http.post(
            f"{self.url}/v1/pull",
            data=st.pull_blob(self.county, cursor, limit),
            headers={"Content-Type": api.OCTET},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return st.open_page(self.county, r.content)

    def pull_all(self, st: SimStation, cursor: int = 0, limit: int = api.DEFAULT_PULL_LIMIT):
        """Every event in scope after ``cursor``: (events, final cursor, pages)."""
        events, pages = [], 0
        while True:
            page = self.pull(st, cursor, limit)
            pages += 1
            events += page["events"]
            cursor = page["to"]
            if not page["more"]:
                return events, cursor, pages
