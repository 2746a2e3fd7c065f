"""Rebuilding every projection from the log, when a new version folds events differently.

A migration that changes what the fold computes sets ``meta projections.rebuild``; the first
session that opens the database refolds every case, complaint and consultation from the log
(in one transaction, case by case, so memory stays bounded at a county office's 100,000
cases) and clears the flag. Nothing in the log changes.
"""

from __future__ import annotations

import logging

from schema import events as K
from schema import rules
from station.projections import registers

log = logging.getLogger(__name__)
FLAG = "projections.rebuild"
CHUNK = 500


def needed(store) -> bool:
    return store.meta(FLAG) == "1"


def rebuild(store) -> int:
    """Refold everything; returns the number of cases."""
    db = store.db
    n = 0
    with store.writing():
        for table in ("case_view", "case_term", "consult", "complaint"):
            db.execute_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        store.cases.forget_cache()
        store.authors.forget()
        cases = [r[0] for r in db.execute_sql("SELECT subject FROM event WHERE kind = ?", (K.CASE_REGISTERED,))]
        for i in range(0, len(cases), CHUNK):
            logs = store.case_events_many(cases[i : i + CHUNK])
            for evs in logs.values():
                view = rules.fold(evs, store.authors)
                if view is not None:
                    store.cases._save(view, new=True)
                    n += 1
            store.cases.forget_cache()
        marks = ",".join("?" * len(registers.KINDS))
        rows = db.execute_sql(
            f"SELECT DISTINCT subject FROM event WHERE kind IN ({marks})", tuple(registers.KINDS)
        ).fetchall()
        for (subject,) in rows:
            evs = store.subject_events(subject)
            for ev in evs[:1]:  # a complaint refolds from all its events; a consultation is one event
                store.registers.apply(ev, strict=False, events_of=lambda s, evs=evs: evs[1:])
        store.set_meta(FLAG, "0")
    log.info("projections rebuilt from the log: %d cases", n)
    return n


def if_needed(store) -> None:
    if needed(store):
        rebuild(store)
