"""Initial station schema: the event log and its projections.

Written as SQL so that it stays frozen whatever the models later become.
"""

STATEMENTS = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The log. Events are never updated except the `synced` mark set by sync.
    """CREATE TABLE event (
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
        synced INTEGER NOT NULL DEFAULT 0,
        UNIQUE (station, seq)
    )""",
    "CREATE INDEX event_subject ON event (subject, hlc)",
    "CREATE INDEX event_kind ON event (kind)",
    # One row per case: the fold of its events plus columns to filter and sort on.
    """CREATE TABLE case_view (
        case_id TEXT PRIMARY KEY,
        case_no TEXT NOT NULL,
        item_code TEXT NOT NULL,
        item_name TEXT NOT NULL,
        state TEXT NOT NULL,
        applicant_name TEXT NOT NULL,
        id_number TEXT NOT NULL,
        phone TEXT NOT NULL,
        intake_org TEXT NOT NULL,
        holder_org TEXT NOT NULL,
        holder_level TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        accepted_at TEXT,
        due_date TEXT,
        due_estimated INTEGER NOT NULL DEFAULT 0,
        supplement_deadline TEXT,
        closed_at TEXT,
        conflicts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        view TEXT NOT NULL
    )""",
    # Not UNIQUE: two PCs misconfigured with the same station number could both issue a
    # number; an INSERT OR REPLACE must never silently drop the other case.
    "CREATE INDEX case_no ON case_view (case_no)",
    "CREATE INDEX case_state ON case_view (state, registered_at)",
    "CREATE INDEX case_holder ON case_view (holder_org, state)",
    "CREATE INDEX case_due ON case_view (due_date)",
    "CREATE INDEX case_registered ON case_view (registered_at)",
    "CREATE INDEX case_item ON case_view (item_code)",
    # Search terms: name n-grams, ID number and phone (whole and tails), case number, pinyin initials.
    "CREATE TABLE case_term (term TEXT NOT NULL, case_id TEXT NOT NULL, PRIMARY KEY (term, case_id)) WITHOUT ROWID",
    """CREATE TABLE user (
        user_id TEXT PRIMARY KEY,
        login TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        org TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        added_at TEXT NOT NULL,
        added_by TEXT NOT NULL
    )""",
    "CREATE INDEX user_login ON user (login)",  # unique per station, enforced by the key slots
    """CREATE TABLE calendar_override (
        day TEXT PRIMARY KEY,
        workday INTEGER NOT NULL,
        source TEXT NOT NULL
    )""",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
