"""The case rules as objects (docs/case-rules.md): what the projections need for them.

* ``case_view`` gets the dates supervision watches (法定办结日, 环节时限, a running 特别程序/公示's
  end, a 容缺 promise's date, an open 差评整改's date and owner) so lists of late cases are index
  reads, not a scan of every view.
* The inbox index also holds 待接件 (``transferred``): the first thing a township or county user
  takes in.
* ``user.department``: the county or township department a user works in (联办意见 come from it).
* ``consult``: the 咨询 register. ``complaint``: the 投诉 register, one row per complaint (its fold).
* ``meta projections.rebuild``: the fold changed, so every projection is rebuilt from the log the
  first time the station is opened (``station.projections.rebuild``).
"""

STATEMENTS = [
    "ALTER TABLE case_view ADD COLUMN legal_due TEXT",
    "ALTER TABLE case_view ADD COLUMN stage_due TEXT",
    "ALTER TABLE case_view ADD COLUMN watch_until TEXT",
    "ALTER TABLE case_view ADD COLUMN rongque_due TEXT",
    "ALTER TABLE case_view ADD COLUMN rectify_due TEXT",
    "ALTER TABLE case_view ADD COLUMN rectify_org TEXT",
    "CREATE INDEX case_stage ON case_view (holder_org, stage_due) WHERE stage_due IS NOT NULL",
    "CREATE INDEX case_watch ON case_view (holder_org, watch_until) WHERE watch_until IS NOT NULL",
    "CREATE INDEX case_rongque ON case_view (holder_org, rongque_due) WHERE rongque_due IS NOT NULL",
    "CREATE INDEX case_rectify ON case_view (rectify_org, rectify_due) WHERE rectify_due IS NOT NULL",
    "DROP INDEX case_inbox",
    "CREATE INDEX case_inbox ON case_view (holder_org, due_date, registered_at, case_no) "
    "WHERE state IN ('in_progress', 'returned', 'transferred')",
    "ALTER TABLE user ADD COLUMN department TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE consult (
        consult_id TEXT PRIMARY KEY,
        org TEXT NOT NULL,
        at TEXT NOT NULL,
        item_code TEXT NOT NULL,
        topic TEXT NOT NULL,
        channel TEXT NOT NULL,
        answer TEXT NOT NULL,
        person TEXT NOT NULL,
        actor TEXT NOT NULL,
        view TEXT NOT NULL
    )""",
    "CREATE INDEX consult_org ON consult (org, at)",
    """CREATE TABLE complaint (
        complaint_id TEXT PRIMARY KEY,
        complaint_no TEXT NOT NULL,
        state TEXT NOT NULL,
        about TEXT NOT NULL,
        case_no TEXT NOT NULL,
        filed_org TEXT NOT NULL,
        owner_org TEXT NOT NULL,
        filed_at TEXT NOT NULL,
        due TEXT NOT NULL,
        closed_at TEXT,
        conflicts INTEGER NOT NULL DEFAULT 0,
        view TEXT NOT NULL
    )""",
    "CREATE INDEX complaint_owner ON complaint (owner_org, state, due)",
    "INSERT OR REPLACE INTO meta (key, value) VALUES ('projections.rebuild', '1')",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
