"""Projections of the 咨询 and 投诉 registers (schema.registers): one row each."""

from __future__ import annotations

import json
from collections.abc import Callable

from schema import events as K
from schema.events import Event
from schema.registers import ComplaintView, apply_complaint, check_consultation, fold_complaint
from schema.rules import Who

CONSULT_KINDS = frozenset({K.CONSULT_RECORDED})
COMPLAINT_KINDS = frozenset({K.COMPLAINT_FILED, K.COMPLAINT_FORWARDED, K.COMPLAINT_ANSWERED})
KINDS = CONSULT_KINDS | COMPLAINT_KINDS


class RegisterProjection:
    def __init__(self, db, who: Who) -> None:
        self.db = db
        self.who = who

    def apply(self, ev: Event, *, strict: bool, events_of: Callable[[str], list[Event]]) -> None:
        if ev.kind in CONSULT_KINDS:
            self._consult(ev, strict=strict)
        elif strict:
            self._save(apply_complaint(self.load_complaint(ev.subject), ev, self.who))
        else:  # foreign events may arrive in any order: refold from the log
            view = fold_complaint([*events_of(ev.subject), ev], self.who)
            if view is not None:
                self._save(view)

    def _consult(self, ev: Event, *, strict: bool) -> None:
        from schema.errors import ValidationError

        b = ev.body
        problems = check_consultation(b)
        if problems and strict:
            raise ValidationError(problems[0])
        actor = self.who(ev)
        person = b.get("person") if isinstance(b.get("person"), dict) else {}
        self.db.execute_sql(
            "INSERT OR REPLACE INTO consult (consult_id, org, at, item_code, topic, channel, answer, person, actor, "
            "view) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (ev.subject, actor.org, str(b.get("effective_at") or ev.at), str(b.get("item_code") or ""),
             str(b.get("topic") or b.get("item_name") or ""), str(b.get("channel") or ""), str(b.get("answer") or ""),
             str(person.get("name") or ""), ev.actor, json.dumps(b, ensure_ascii=False)),
        )

    def load_complaint(self, complaint_id: str) -> ComplaintView | None:
        row = self.db.execute_sql("SELECT view FROM complaint WHERE complaint_id = ?", (complaint_id,)).fetchone()
        return ComplaintView.from_dict(json.loads(row[0])) if row else None

    def _save(self, v: ComplaintView) -> None:
        self.db.execute_sql(
            "INSERT OR REPLACE INTO complaint (complaint_id, complaint_no, state, about, case_no, filed_org, owner_org, "
            "filed_at, due, closed_at, conflicts, view) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (v.complaint_id, v.complaint_no, v.state.value, v.about, v.case_no, v.filed_org, v.owner_org, v.filed_at,
             v.due, v.closed_at, len(v.conflicts), json.dumps(v.to_dict(), ensure_ascii=False)),
        )
