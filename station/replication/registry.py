"""The station registry: every station of the county, from the county's own events.

``station.enrolled`` (body: station, org, level, name, sign_pub, enc_pub) and
``station.revoked`` (body: station, reason, optionally the revoked sign_pub)
arrive by pull, published on the county's chain. A station's row is rebuilt
from all its registry events in folding order each time one arrives, so the
result does not depend on the order pages or return files came in.

Only events written by the county station learned at enrollment count. A
revocation of *this* station's current key puts the station in the revoked
state (meta ``sync.revoked``): it stops syncing and says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from schema import events as K
from schema.events import Event
from schema.org import OrgCode

KINDS = frozenset({K.STATION_ENROLLED, K.STATION_REVOKED})

COLUMNS = "station, org, level, name, sign_pub, enc_pub, enrolled_at, revoked, reason, revoked_at"


@dataclass(frozen=True)
class Entry:
    station: str
    org: str
    level: str
    name: str
    sign_pub: str
    enc_pub: str
    enrolled_at: str
    revoked: bool
    reason: str
    revoked_at: str | None


def _meta(db, key: str) -> str | None:
    row = db.execute_sql("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _county(db) -> dict:
    raw = _meta(db, "sync.county")
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def county_station(db) -> str | None:
    return _county(db).get("station")


def orgs(db) -> dict[str, str]:
    """station → its enrolled org: every registered station, and the county's own chain."""
    out = dict(db.execute_sql("SELECT station, org FROM registry").fetchall())
    county = _county(db)
    if county.get("station") and county.get("code"):
        out[county["station"]] = county["code"]
    return out


def rebuild(db, station: str, own_station: str) -> Entry | None:
    """Recompute ``station``'s registry row from the log (the events are already inserted)."""
    county = county_station(db)
    if not county:
        return None  # not enrolled: nobody's registry events can be trusted yet
    rows = db.execute_sql(
        "SELECT kind, body, at FROM event WHERE subject = ? AND station = ? AND kind IN (?, ?) "
        "ORDER BY hlc, seq",
        (station, county, K.STATION_ENROLLED, K.STATION_REVOKED),
    ).fetchall()
    entry: dict | None = None
    for kind, raw, at in rows:
        body = json.loads(raw)
        if kind == K.STATION_ENROLLED:
            try:
                OrgCode(str(body.get("org", "")))
            except Exception:  # noqa: BLE001 - a bad body never blocks the rest
                continue
            entry = {
                "station": station,
                "org": str(body.get("org", "")),
                "level": str(body.get("level", "")),
                "name": str(body.get("name", "")),
                "sign_pub": str(body.get("sign_pub", "")),
                "enc_pub": str(body.get("enc_pub", "")),
                "enrolled_at": at,
                "revoked": 0,
                "reason": "",
                "revoked_at": None,
            }
        elif entry is not None:
            key = body.get("sign_pub")
            if key and key != entry["sign_pub"]:
                continue  # revokes an older key that a re-enrollment already replaced
            entry.update(revoked=1, reason=str(body.get("reason", "") or ""), revoked_at=at)
    if entry is None:
        return None
    db.execute_sql(
        f"INSERT OR REPLACE INTO registry ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
        tuple(entry[c.strip()] for c in COLUMNS.split(",")),
    )
    if station == own_station:
        _own_state(db, entry)
    return _entry(tuple(entry[c.strip()] for c in COLUMNS.split(",")))


def remember(db, station: str, org: str, name: str = "") -> None:
    """A station known without the county's events: the demo county's simulated stations (and
    tests). A later ``station.enrolled`` from the county replaces the row."""
    level = OrgCode(org).level.value
    db.execute_sql(
        f"INSERT OR REPLACE INTO registry ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (station, org, level, name, "", "", "", 0, "", None),
    )


def _own_state(db, entry: dict) -> None:
    raw = _meta(db, "sync.keypair_pub")
    mine = json.loads(raw).get("sign_pub") if raw else None
    if entry["revoked"] and (mine is None or mine == entry["sign_pub"]):
        reason = entry["reason"] or "县中心已注销本工作站"
        doc = {"reason": reason, "at": entry["revoked_at"], "source": "registry"}
        db.execute_sql(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('sync.revoked', ?)",
            (json.dumps(doc, ensure_ascii=False),),
        )


def _entry(row: tuple) -> Entry:
    st, org, level, name, sign, enc, at, revoked, reason, rat = row
    return Entry(st, org, level, name, sign, enc, at, bool(revoked), reason, rat)


def lookup(db, station: str) -> Entry | None:
    row = db.execute_sql(f"SELECT {COLUMNS} FROM registry WHERE station = ?", (station,)).fetchone()
    return _entry(row) if row else None


def stations(db) -> list[Entry]:
    return [_entry(r) for r in db.execute_sql(f"SELECT {COLUMNS} FROM registry ORDER BY org, station")]


def townships_over(db, org: str) -> list[Entry]:
    """Enrolled, unrevoked township stations whose org covers ``org`` (bundle recipients)."""
    code = OrgCode(org)
    if code.township is None:
        return []
    rows = db.execute_sql(
        f"SELECT {COLUMNS} FROM registry WHERE org = ? AND revoked = 0",
        (code.township,),
    ).fetchall()
    return [_entry(r) for r in rows]


def apply_event(db, ev: Event, own_station: str) -> None:
    """Projection hook for one registry event already in the log."""
    if ev.kind in KINDS:
        rebuild(db, ev.subject, own_station)
