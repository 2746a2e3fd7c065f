"""station.services.case_detail: the due date as people read it, and what the case page offers."""

from __future__ import annotations

from datetime import date

import pytest

from schema import events as K
from schema import rules
from schema.case import State
from station import clock
from station.services import case_detail, cases
from tests.helpers import DIBAO, PENSION, id_number, make_station, material_names, rongque_names

TODAY = date(2026, 3, 10)


@pytest.mark.parametrize(
    ("state", "due", "estimated", "accepted", "text", "overdue", "days"),
    [
        (State.RECEIVED, None, False, False, "未受理", False, 0),
        (State.REFUSED, None, False, False, "—", False, 0),
        (State.AWAITING_SUPPLEMENT, None, False, True, "暂停计时", False, 0),
        (State.SUSPENDED, None, False, True, "暂停计时", False, 0),
        (State.IN_PROGRESS, "2026-03-12", False, True, "2026-03-12", False, 0),
        (State.IN_PROGRESS, "2026-03-05", False, True, "2026-03-05", True, 5),
        (State.RETURNED, "2026-03-09", True, True, "2026-03-09（预计）", True, 1),
        (State.DONE, "2026-03-05", False, True, "2026-03-05", False, 0),  # finished: never overdue
        (State.IN_PROGRESS, "2026-03-10", False, True, "2026-03-10", False, 0),  # due today: not yet late
    ],
)
def test_due_info(state, due, estimated, accepted, text, overdue, days):
    info = case_detail.due_info(state, due, estimated, accepted=accepted, today=TODAY)
    assert (info.text, info.overdue, info.days_over) == (text, overdue, days)
    assert info.label == text + (f"  已超期{days}天" if overdue else "")


@pytest.fixture
def station(tmp_path, now):
    s = make_station(tmp_path / "village")
    yield s
    s.close()


def test_detail_bundles_the_view_due_date_timeline_and_allowed_actions(station):
    view = cases.register(
        station,
        item_code=PENSION,
        name="王秀英",
        id_number=id_number(),
        phone="",
        received=material_names(PENSION),
    )
    cases.act(station, view.case_id, "accept")
    d = case_detail.detail(station, view.case_no)  # by 办件编号 as well as by id
    assert d.view.case_id == view.case_id
    assert (d.due.text, d.due.overdue) == ("2026-03-05", False)
    assert [e.action for e in d.timeline] == ["收件登记", "受理"]
    assert [a.kind for a in d.actions] == [
        a.kind for a in rules.allowed_actions(d.view, station.author, clock.iso(clock.now()))
    ]
    assert K.CASE_FORWARDED in {r.kind for r in d.actions}
    assert d.holder_label == "村级（330522101001）"


def test_dialog_choices_follow_catalog_order_and_rules(station):
    bank = rongque_names(DIBAO)
    names = material_names(DIBAO)
    view = cases.register(
        station, item_code=DIBAO, name="王秀英", id_number=id_number(), phone="", received=names[2:]
    )
    accept, supplement = rules.BY_NAME["accept"], rules.BY_NAME["supplement"]
    assert [v for v, _ in supplement.fields[0].options(view)] == names[:2]
    assert view.missing_required == names[:2]
    assert accept.fields[0].options(view) == []  # the bank account was received
    view = cases.register(
        station,
        item_code=DIBAO,
        name="李四",
        id_number=id_number(seq="002"),
        phone="",
        received=[m for m in names if m not in bank],
    )
    assert [v for v, _ in accept.fields[0].options(view)] == bank
    assert view.missing_required == bank


def test_previews_of_accept_and_notify(station, now):
    view = cases.register(
        station, item_code=PENSION, name="王秀英", id_number=id_number(), phone="", received=[]
    )
    now("2026-03-04T10:00:00+08:00")
    promised = case_detail.promised_if_accepted_today(station, view)
    assert (promised.date, promised.estimated) == (date(2026, 3, 9), False)
    assert case_detail.preview_body(station, view, rules.BY_NAME["notify-missing"])["deadline"] == "2026-04-03"
