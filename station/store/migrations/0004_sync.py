"""Sync with the county center (station/replication/).

* ``sync_log``: one row per sync attempt — what went up and down, bytes, the outcome and the
  Chinese reason of any refusal (the sync screen's history).
* ``registry``: the station registry projected from the county's ``station.enrolled`` /
  ``station.revoked`` events (keys of the township above us and of the villages below).
* ``relay_segment``: a township's outbox of village segments imported from USB bundles, kept
  exactly as signed until the county has them (``wire`` is the signed segment).
* ``relay_station``: villages whose bundles came through here, with their pull cursor, so the
  township can fetch their ``return`` envelopes at its sync.
* ``relay_return``: those envelopes (sealed to the village, unreadable here), waiting for the
  USB trip back.
* ``clock_flag``: runs of this station's own events recorded while its clock was more than five
  minutes off the county's.

Everything else sync keeps (keys, county info, cursor, acknowledged seq and its receipt) lives in
``meta`` under ``sync.*``.
"""

STATEMENTS = [
    """CREATE TABLE sync_log (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        outcome TEXT NOT NULL,
        pushed INTEGER NOT NULL DEFAULT 0,
        relayed INTEGER NOT NULL DEFAULT 0,
        pulled INTEGER NOT NULL DEFAULT 0,
        returns INTEGER NOT NULL DEFAULT 0,
        bytes_sent INTEGER NOT NULL DEFAULT 0,
        bytes_received INTEGER NOT NULL DEFAULT 0,
        offset_ms INTEGER,
        message TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE registry (
        station TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        level TEXT NOT NULL,
        name TEXT NOT NULL,
        sign_pub TEXT NOT NULL,
        enc_pub TEXT NOT NULL,
        enrolled_at TEXT NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        revoked_at TEXT
    )""",
    "CREATE INDEX registry_org ON registry (org)",
    """CREATE TABLE relay_segment (
        id INTEGER PRIMARY KEY,
        station TEXT NOT NULL,
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        head TEXT NOT NULL,
        wire TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending',
        error TEXT NOT NULL DEFAULT '',
        reason TEXT NOT NULL DEFAULT '',
        received_at TEXT NOT NULL,
        UNIQUE (station, first, last)
    )""",
    "CREATE INDEX relay_segment_state ON relay_segment (state, station, first)",
    """CREATE TABLE relay_station (
        station TEXT PRIMARY KEY,
        cursor INTEGER NOT NULL DEFAULT 0,
        acked INTEGER NOT NULL DEFAULT 0,
        seen_at TEXT NOT NULL
    )""",
    """CREATE TABLE relay_return (
        station TEXT PRIMARY KEY,
        blob BLOB NOT NULL,
        cursor INTEGER NOT NULL,
        fetched_at TEXT NOT NULL
    )""",
    """CREATE TABLE clock_flag (
        first INTEGER NOT NULL,
        last INTEGER NOT NULL,
        offset_ms INTEGER NOT NULL,
        measured_at TEXT NOT NULL,
        PRIMARY KEY (first, last)
    )""",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
