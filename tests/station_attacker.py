"""Someone who holds a station's data directory and signs whatever they like with its REAL key.

No mocks: the key is the station's enrolled key read from its encrypted database, the events are
sealed into its real hash chain (from its real head), and they travel the real ways — a signed
segment pushed to a running county center over HTTP, a USB bundle file a township imports and
relays, or a bundle the county imports. Whatever the receiver refuses, the attacker can forget
(:meth:`Attacker.forget`) and sign something else at the same place in the chain.

    a = Attacker(session)                       # a station's open Session (enrolled)
    ev = a.seal(K.CASE_DECIDED, case_id, {...}, org=COUNTY, role="reviewer", actor=reviewer_id)
    status, body = a.push(county_url, [ev])     # HTTP, as `station sync` would
    a.bundle(usb_dir, [ev])                     # a .cvs file for a township or the county
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from schema import canonical
from schema import hlc as HLC
from schema.events import Event, seal
from schema.ids import new_id
from station import clock
from station.replication import identity as I
from station.replication import registry
from sync import api, envelope
from sync.crypto import unb64
from sync.messages import VERSION, make_segment

SUFFIX = ".cvs"


class Attacker:
    def __init__(self, session) -> None:
        self.key, self.county = I.require(session)
        self.station = session.config.station_id
        self.org = session.config.org
        self.seq, self.prev = session.store.head()
        self.hlc = int(session.store.meta("hlc") or 0)
        self.actor = session.user.user_id  # the signed-in user: a real user of this station
        self.role = session.user.role.value
        self.townships = [unb64(t.enc_pub, "enc_pub") for t in registry.townships_over(session.db, self.org)]
        self._committed: list[tuple[int, str, int]] = []

    def seal(
        self,
        kind: str,
        subject: str,
        body: dict[str, Any] | None = None,
        *,
        org: str | None = None,
        role: str | None = None,
        actor: str | None = None,
        hlc: int | None = None,
        at: str | None = None,
    ) -> Event:
        """The next event of this station's chain, claiming whatever it is told to."""
        now = clock.now()
        self._committed.append((self.seq, self.prev, self.hlc))
        self.hlc = HLC.tick(self.hlc, clock.ms(now)) if hlc is None else hlc
        ev = seal(
            id=new_id(clock.ms(now)),
            station=self.station,
            seq=self.seq + 1,
            prev=self.prev,
            at=at or clock.iso(now),
            hlc=self.hlc,
            actor=self.actor if actor is None else actor,
            role=self.role if role is None else role,
            org=self.org if org is None else org,
            kind=kind,
            subject=subject,
            body=dict(body or {}),
        )
        self.seq, self.prev = ev.seq, ev.hash
        return ev

    def forget(self, n: int = 1) -> None:
        """Undo the last ``n`` seals (they were refused): the chain goes on from before them."""
        for _ in range(n):
            self.seq, self.prev, self.hlc = self._committed.pop()

    def segment(self, events: list[Event]) -> dict[str, str]:
        return make_segment(events, self.key, self.county.code)

    def push(self, url: str, events: list[Event]) -> tuple[int, dict[str, Any]]:
        """POST one signed segment to a county center; (HTTP status, JSON answer)."""
        payload = canonical.encode(api.push_payload(self.station, [self.segment(events)]))
        blob = envelope.seal(
            payload, kind="push", sender=self.station, recipients=[self.county.enc_pub], signer=self.key
        )
        r = requests.post(f"{url}/v1/push", data=blob, headers={"Content-Type": api.OCTET}, timeout=60)
        return r.status_code, r.json()

    def bundle(self, directory: Path, events: list[Event], *, cursor: int = 0) -> Path:
        """A USB bundle file carrying ``events``, sealed to the county and the townships above us."""
        payload = {
            "t": "bundle",
            "v": VERSION,
            "from": self.station,
            "made_at": clock.iso(clock.now()),
            "segments": [self.segment(events)],
            "cursor": cursor,
            "acked": 0,
        }
        blob = envelope.seal(
            canonical.encode(payload),
            kind="bundle",
            sender=self.station,
            recipients=[self.county.enc_pub, *self.townships],
            signer=self.key,
        )
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (new_id() + SUFFIX)
        path.write_bytes(blob)
        return path
