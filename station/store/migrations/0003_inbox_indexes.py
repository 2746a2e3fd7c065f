"""Index for the township/county inbox (station/services/inbox.py).

The inbox lists the cases this org holds that are waiting for it (办理中 / 已退回), most urgent
first. A partial index keeps only those rows, in the inbox's order, so the first page is an
index range read even at a county office holding every closed case of the county.
"""

STATEMENTS = [
    "CREATE INDEX case_inbox ON case_view (holder_org, due_date, registered_at, case_no) "
    "WHERE state IN ('in_progress', 'returned')",
]


def up(migrator, db):
    for sql in STATEMENTS:
        db.execute_sql(sql)
