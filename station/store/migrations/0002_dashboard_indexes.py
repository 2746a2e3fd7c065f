"""Indexes for the home screen's counts (station/services/dashboard.py).

* ``case_holder_due``: "held by this org, clock running, due before/after a date" (两个工作日内到期,
  已超期) becomes one index range per state, and a covering one for ``count(*)``; it also serves
  everything ``case_holder`` (holder_org, state) served.
* ``event_unsynced``: the station's events not yet accepted by the county (待上传). Partial, so it
  holds only the unsynced tail of the log and stays tiny after each sync.
"""

STATEMENTS = [
    "CREATE INDEX case_holder_due ON case_view (holder_org, state, due_date)",
    "CREATE INDEX event_unsynced ON event (station) WHERE synced = 0",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
