"""Authority and bounded clocks (docs/security.md, "Authority and clocks").

* ``user`` gains ``station`` (the station whose chain added the user), ``added_seq`` (the seq
  of that ``user.added``) and ``disabled_seq`` (the seq of that station's own
  ``user.disabled``): what ``schema.authority`` checks a received event's actor against. They
  are filled from the log: a user belongs to the first station that added it (by folding
  order), as the new projection keeps it.
* ``quarantine``: events received from other stations that this station set aside — kept
  exactly as received with the reason, never folded: refused on receipt (authority, clock),
  displaced by the county's copy of the same (station, seq), or beyond the clock bound when
  this migration ran.
* ``meta repair.authority``: the Store finishes the upgrade the first time it opens with its
  own station id and org (``Store.finish_upgrade``): it moves foreign events beyond the
  clock bound into ``quarantine``, refolds the cases they touched and every case an event
  claims another org for than its station's, and recomputes the ``hlc`` meta.
"""

STATEMENTS = [
    "ALTER TABLE user ADD COLUMN station TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE user ADD COLUMN added_seq INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE user ADD COLUMN disabled_seq INTEGER",
    """UPDATE user SET
        station = coalesce((SELECT e.station FROM event e WHERE e.kind = 'user.added' AND e.subject = user.user_id
                            ORDER BY e.hlc, e.station, e.seq LIMIT 1), ''),
        added_seq = coalesce((SELECT e.seq FROM event e WHERE e.kind = 'user.added' AND e.subject = user.user_id
                              ORDER BY e.hlc, e.station, e.seq LIMIT 1), 0)""",
    """UPDATE user SET disabled_seq = (
        SELECT min(e.seq) FROM event e
        WHERE e.kind = 'user.disabled' AND e.subject = user.user_id AND e.station = user.station)""",
    """CREATE TABLE quarantine (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        station TEXT NOT NULL,
        seq INTEGER NOT NULL,
        prev TEXT NOT NULL,
        at TEXT NOT NULL,
        hlc INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        org TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        hash TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        set_aside_at TEXT NOT NULL
    )""",
    "CREATE INDEX quarantine_station ON quarantine (station, seq)",
    "INSERT OR REPLACE INTO meta (key, value) VALUES ('repair.authority', '1')",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
