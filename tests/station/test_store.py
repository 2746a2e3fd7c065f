"""The encrypted event store with real stations: transactions, chains, ingest, search, due dates, migrations."""

from __future__ import annotations

import gc
import hashlib
import random
import re

import pytest

from schema import events as K
from schema.errors import TransitionError
from schema.org import Role
from station.services import cases, queries
from station.services.verify import verify_station
from station.session import unlock
from station.store import db as dbmod
from station.store.db import DatabaseProblem
from station.store.migrate import known_migrations, migrate
from station.store.store import Store
from tests.helpers import (
    DIBAO,
    LAND,
    OLD_AGE_CARD,
    PENSION,
    PIN,
    TOWN,
    VILLAGE,
    case_count,
    case_rows,
    id_number,
    know,
    make_station,
    material_names,
)

RESIDENCE_PERMIT = "11000000040000000X4000704002001"  # 居住证: 15 自然日
BANK = "本人银行账户（存折或银行卡）复印件"


@pytest.fixture
def station(tmp_path, now):
    s = make_station(tmp_path / "village")
    yield s
    s.close()


def register(s, code=PENSION, name="王秀英", ident=None, phone="13800001234", received=None, **kw):
    received = material_names(code) if received is None else received
    return cases.register(s, item_code=code, name=name, id_number=ident or id_number(), phone=phone,
                          received=received, **kw)


def row(s, case_id):
    r = s.db.execute_sql("SELECT state, due_date, due_estimated, accepted_at FROM case_view WHERE case_id = ?",
                         (case_id,)).fetchone()
    return {"state": r[0], "due": r[1], "estimated": bool(r[2]), "accepted_at": r[3]}


# -- one transaction, one chain ------------------------------------------------------------------------------


def test_record_writes_event_and_projection_together(station):
    before = station.store.event_count()
    view = register(station)
    assert station.store.event_count() == before + 1
    assert row(station, view.case_id)["state"] == "received"
    with pytest.raises(RuntimeError), station.store.writing():
        cases.act(station, view.case_no, "accept")
        assert row(station, view.case_id)["state"] == "in_progress"  # visible inside the transaction
        raise RuntimeError("power cut")
    assert station.store.event_count() == before + 1
    assert row(station, view.case_id)["state"] == "received"
    assert cases.get(station, view.case_no).state.value == "received"  # the cached view was dropped too
    assert verify_station(station).ok


def test_a_failing_insert_leaves_no_projection_behind(station, monkeypatch):
    view = register(station)
    head = station.store.head()

    def broken(self, evs):
        raise DatabaseProblem("磁盘空间不足")

    monkeypatch.setattr(Store, "_insert", broken)
    with pytest.raises(DatabaseProblem):
        cases.act(station, view.case_no, "accept")
    monkeypatch.undo()
    assert station.store.head() == head
    assert row(station, view.case_id)["state"] == "received"
    assert cases.act(station, view.case_no, "accept").state.value == "in_progress"
    assert verify_station(station).ok


def test_hash_chain_verifies_and_tampering_is_found(station):
    view = register(station)
    cases.act(station, view.case_no, "accept")
    report = verify_station(station)
    assert report.ok, report.problems
    assert (report.events, report.stations, report.cases) == (4, 1, 1)
    evs = list(station.store.events())
    assert [e.seq for e in evs] == [1, 2, 3, 4]
    assert all(b.prev == a.hash for a, b in zip(evs, evs[1:], strict=False))
    station.db.execute_sql("UPDATE event SET body = replace(body, '王秀英', '王秀兰') WHERE kind = ?",
                           (K.CASE_REGISTERED,))
    problems = verify_station(station).problems
    assert any(p.startswith("哈希链断裂") for p in problems), problems
    assert any("投影与日志重建结果不一致" in p for p in problems), problems


def test_a_refused_action_appends_nothing(station):
    view = register(station, received=material_names(PENSION)[:1])
    head, count = station.store.head(), station.store.event_count()
    rows = case_rows(station)
    with pytest.raises(TransitionError, match="材料不齐"):
        cases.act(station, view.case_no, "accept")
    with pytest.raises(TransitionError, match="不能送达"):
        cases.act(station, view.case_no, "deliver", {"method": "窗口领取"})
    assert station.store.head() == head and station.store.event_count() == count
    assert case_rows(station) == rows
    cases.act(station, view.case_no, "notify-missing")  # the station still works afterwards
    assert station.store.head()[0] == head[0] + 1
    assert verify_station(station).ok


# -- ingest from other stations -------------------------------------------------------------------------------


def _village_history(s, now):
    """Cases at a village in several states, with the clock moving."""
    a = register(s, name="王秀英", ident=id_number(seq="011"))
    b = register(s, DIBAO, name="李建国", ident=id_number(seq="021"),
                 received=[m for m in material_names(DIBAO) if m != BANK])
    c = register(s, name="张三", ident=id_number(seq="031"), received=material_names(PENSION)[:1])
    d = register(s, LAND, name="赵六", ident=id_number(seq="041"))
    cases.act(s, a.case_no, "void", {"reason": "申请人撤回"})  # before 受理: voided at once
    cases.act(s, b.case_no, "accept", {"rongque": [BANK], "promise": "十日内补交"})
    cases.act(s, b.case_no, "forward", {"opinion": "请审核"})
    cases.act(s, c.case_no, "notify-missing")
    now("2026-03-03T10:00:00+08:00")
    cases.act(s, b.case_no, "supplement", {"materials": [BANK]})
    cases.act(s, c.case_no, "supplement", {"materials": material_names(PENSION)[1:2]})
    cases.act(s, d.case_no, "accept")
    cases.act(s, d.case_no, "forward")
    return [a, b, c, d]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ingest_in_any_order_gives_the_same_projection(tmp_path, now, seed):
    village = make_station(tmp_path / "v")
    made = _village_history(village, now)
    events = list(village.store.events())
    village.close()

    in_order = make_station(tmp_path / "t1", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")
    shuffled = make_station(tmp_path / "t2", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")
    try:
        know(in_order, (events[0].station, VILLAGE))
        know(shuffled, (events[0].station, VILLAGE))
        assert in_order.store.ingest(events) == len(events)
        mixed = list(events)
        random.Random(seed).shuffle(mixed)
        for ev in mixed:  # one sync per event, in the worst order
            assert shuffled.store.ingest([ev]) == 1
        assert case_count(in_order) == len(made)
        assert case_rows(shuffled) == case_rows(in_order)
        # re-ingesting is a no-op
        rows = case_rows(shuffled)
        assert shuffled.store.ingest(mixed) == 0 and in_order.store.ingest(events) == 0
        assert case_rows(shuffled) == rows
        for s in (in_order, shuffled):
            report = verify_station(s)
            assert report.ok, report.problems
            assert report.stations == 2
        # the township can work on what the village forwarded, after the ingested events
        b = made[1]
        cases.act(shuffled, b.case_no, "receive")
        view = cases.act(shuffled, b.case_no, "forward", {"opinion": "同意上报"})
        assert view.holder_level == "county" and view.conflicts == []
        assert verify_station(shuffled).ok
    finally:
        in_order.close()
        shuffled.close()


def test_ingest_skips_own_events_and_keeps_conflicts(tmp_path, now):
    village = make_station(tmp_path / "v")
    v = register(village)
    cases.act(village, v.case_no, "accept")
    events = list(village.store.events())
    village.close()
    town = make_station(tmp_path / "t", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心")
    try:
        know(town, (events[0].station, VILLAGE), ("village-pc-2", VILLAGE))
        own = list(town.store.events())
        assert town.store.ingest(own) == 0
        assert town.store.ingest(events) == len(events)
        from schema.events import seal

        # a second village PC that had not seen the acceptance accepts too: a conflict, not an error
        acc = next(e for e in events if e.kind == K.CASE_ACCEPTED)
        twin = seal(**{**acc.unsigned(), "id": acc.id + "-2", "station": "village-pc-2", "seq": 1, "prev": "",
                       "hlc": acc.hlc + 1})
        assert town.store.ingest([twin]) == 1
        view = cases.get(town, v.case_no)
        assert [c.event_id for c in view.conflicts] == [twin.id]
        assert "不能受理" in view.conflicts[0].reason
        assert verify_station(town).ok
    finally:
        town.close()


# -- case numbers and search -----------------------------------------------------------------------------------


def test_case_numbers_are_unique_and_readable(station, now):
    nos = [register(station, ident=id_number(seq=f"{i:03d}")).case_no for i in range(1, 4)]
    assert nos == [f"{VILLAGE}-20260302-01-000{i}" for i in (1, 2, 3)]
    now("2026-03-03T08:30:00+08:00")
    assert register(station).case_no == f"{VILLAGE}-20260303-01-0001"
    backfilled = register(station, received_at="2026-03-02T16:00:00+08:00")
    assert backfilled.case_no == f"{VILLAGE}-20260302-01-0004"  # numbered on the paper date
    all_nos = [r[0] for r in station.db.execute_sql("SELECT case_no FROM case_view").fetchall()]
    assert len(all_nos) == len(set(all_nos)) == 5
    assert all(re.fullmatch(r"\d{12}-\d{8}-\d{2}-\d{4}", n) for n in all_nos)


@pytest.fixture
def people(station):
    wang = register(station, name="王秀英", ident=id_number(birth="19520314", seq="128"), phone="13912345678")
    li = register(station, name="李秀兰", ident=id_number(birth="19600101", seq="246"), phone="13700002222")
    ouyang = register(station, name="欧阳娜娜", ident=id_number(birth="19900505", seq="357"), phone="15800003333")
    return {"wang": wang, "li": li, "ouyang": ouyang}


def found(s, text):
    return {r.applicant_name for r in queries.search_cases(s, text)}


@pytest.mark.parametrize(("query", "expected"), [
    ("王", {"王秀英"}),
    ("秀", {"王秀英", "李秀兰"}),
    ("秀英", {"王秀英"}),
    ("王秀英", {"王秀英"}),
    ("欧阳娜", {"欧阳娜娜"}),
    ("阳娜娜", {"欧阳娜娜"}),
    ("王秀兰", set()),
    ("wxy", {"王秀英"}),
    ("WXY", {"王秀英"}),
    ("lxl", {"李秀兰"}),
    ("oy", {"欧阳娜娜"}),
    ("13912345678", {"王秀英"}),
    ("5678", {"王秀英"}),
    ("2222", {"李秀兰"}),
    ("赵", set()),
])
def test_search_by_name_initials_and_phone(station, people, query, expected):
    assert found(station, query) == expected


def test_search_by_id_number_and_case_number(station, people):
    wang = people["wang"]
    ident = wang.applicant["id_number"]
    assert found(station, ident) == {"王秀英"}
    assert found(station, ident.lower()) == {"王秀英"}
    assert found(station, ident[-4:]) == {"王秀英"}
    assert found(station, ident[-6:]) == {"王秀英"}
    assert found(station, wang.case_no) == {"王秀英"}
    assert found(station, wang.case_no.rsplit("-", 1)[-1]) == {"王秀英"}  # the daily sequence on the receipt
    assert found(station, f"{VILLAGE}-20260302") == {"王秀英", "李秀兰", "欧阳娜娜"}
    hit = queries.search_cases(station, ident)[0]
    assert hit.id_masked == ident[:4] + "*" * 10 + ident[-4:]
    assert hit.phone_masked == "139****5678"


# -- lists and due dates ------------------------------------------------------------------------------------------


def test_list_filters_by_state_and_overdue(station, now):
    a = register(station, name="王秀英", ident=id_number(seq="011"))
    b = register(station, name="李四", ident=id_number(seq="021"))
    c = register(station, DIBAO, name="张三", ident=id_number(seq="031"))
    cases.act(station, a.case_no, "accept")  # due 2026-03-05
    cases.act(station, c.case_no, "accept")
    cases.act(station, c.case_no, "notify-missing", {"missing": [BANK]})  # paused: never overdue
    states = {r.case_no: r.state.value for r in queries.list_cases(station)}
    assert states == {a.case_no: "in_progress", b.case_no: "received", c.case_no: "awaiting_supplement"}
    assert [r.case_no for r in queries.list_cases(station, states=["received"])] == [b.case_no]
    assert {r.case_no for r in queries.list_cases(station, states=["received", "in_progress"])} == {
        a.case_no, b.case_no}
    assert queries.list_cases(station, overdue=True) == []
    now("2026-03-05T17:00:00+08:00")
    assert queries.list_cases(station, overdue=True) == []  # due today is not overdue yet
    now("2026-03-06T09:00:00+08:00")
    assert [r.case_no for r in queries.list_cases(station, overdue=True)] == [a.case_no]
    now("2026-06-01T09:00:00+08:00")
    assert [r.case_no for r in queries.list_cases(station, overdue=True)] == [a.case_no]
    cases.act(station, a.case_no, "notify-missing", {"missing": material_names(PENSION)[:1]})
    assert queries.list_cases(station, overdue=True) == []  # waiting for 补正: the clock stopped


def test_due_date_counts_workdays_from_the_day_after_acceptance(station):
    v = register(station)
    assert row(station, v.case_id)["due"] is None  # not accepted yet
    cases.act(station, v.case_no, "accept")  # Monday 2026-03-02, 3 工作日
    assert row(station, v.case_id) == {"state": "in_progress", "due": "2026-03-05", "estimated": False,
                                       "accepted_at": "2026-03-02T09:00:00+08:00"}


def test_due_date_over_a_weekend_and_for_natural_days(station, now):
    now("2026-03-05T09:00:00+08:00")  # Thursday
    v = register(station)
    cases.act(station, v.case_no, "accept")
    assert row(station, v.case_id)["due"] == "2026-03-10"  # Fri, Mon, Tue
    p = register(station, RESIDENCE_PERMIT, ident=id_number(seq="002"))
    cases.act(station, p.case_no, "accept")
    assert row(station, p.case_id)["due"] == "2026-03-20"  # 15 自然日, a Friday


def test_supplement_notice_after_acceptance_pauses_the_clock(station, now):
    v = register(station, DIBAO)
    now("2026-03-02T09:00:00+08:00")
    cases.act(station, v.case_no, "accept")  # 30 workdays from Mon 03-02
    unpaused = row(station, v.case_id)["due"]
    o = register(station, OLD_AGE_CARD, ident=id_number(seq="002"))
    cases.act(station, o.case_no, "accept")  # 5 workdays → Mon 03-09
    assert row(station, o.case_id)["due"] == "2026-03-09"
    now("2026-03-03T10:00:00+08:00")  # Tuesday: 一次性告知
    cases.act(station, o.case_no, "notify-missing", {"missing": ["近期1寸免冠彩色照片"]})
    assert row(station, o.case_id)["due"] is None  # 暂停计时
    now("2026-03-05T15:00:00+08:00")  # Thursday: supplied; Wed and Thu do not count
    cases.act(station, o.case_no, "supplement", {"materials": ["近期1寸免冠彩色照片"]})
    assert row(station, o.case_id)["due"] == "2026-03-11"  # Tue 1, Fri 2, Mon 3, Tue 4, Wed 5
    assert row(station, v.case_id)["due"] == unpaused


def test_special_procedure_pauses_the_clock(station, now):
    o = register(station, OLD_AGE_CARD)
    cases.act(station, o.case_no, "accept")  # Mon 03-02, 5 workdays
    now("2026-03-04T10:00:00+08:00")
    cases.act(station, o.case_no, "special", {"procedure": "实地核查", "reason": "入户核查", "days": 2})
    assert row(station, o.case_id)["due"] == "2026-03-11"  # counted as if it resumes on its own on 03-06
    assert row(station, o.case_id)["state"] == "suspended"
    now("2026-03-06T16:00:00+08:00")
    cases.act(station, o.case_no, "special-end", {"result": "核查属实"})
    assert row(station, o.case_id)["due"] == "2026-03-11"  # Tue 1, Wed 2, (Thu, Fri paused), Mon 3, Tue 4, Wed 5


def test_notice_before_acceptance_does_not_pause(station, now):
    names = material_names(PENSION)
    v = register(station, received=names[:2])
    cases.act(station, v.case_no, "notify-missing")
    now("2026-03-04T09:00:00+08:00")
    cases.act(station, v.case_no, "supplement", {"materials": names[2:]})
    cases.act(station, v.case_no, "accept")  # accepted on Wednesday
    assert row(station, v.case_id)["due"] == "2026-03-09"  # Thu, Fri, Mon


def test_due_dates_beyond_the_published_calendar_are_estimated(station, now):
    v = register(station)
    cases.act(station, v.case_no, "accept")
    assert row(station, v.case_id)["estimated"] is False
    now("2026-12-29T09:00:00+08:00")  # Tuesday; the period runs into 2027
    w = register(station, ident=id_number(seq="002"))
    cases.act(station, w.case_no, "accept")
    r = row(station, w.case_id)
    assert r["due"] == "2027-01-04" and r["estimated"] is True  # 12-30, 12-31, (1 Jan 元旦), Mon 1-04
    now("2027-03-01T09:00:00+08:00")
    x = register(station, ident=id_number(seq="003"))
    cases.act(station, x.case_no, "accept")
    r = row(station, x.case_id)
    assert (r["due"], r["estimated"]) == ("2027-03-04", True)
    shown = [r for r in queries.list_cases(station) if r.case_no == x.case_no][0]
    assert shown.due_estimated is True


# -- schema migrations ----------------------------------------------------------------------------------------------


def _migrations(s):
    return s.db.execute_sql("SELECT name FROM schema_migration ORDER BY name").fetchall()


def test_migrate_on_an_up_to_date_database_is_a_no_op(station):
    assert [n for (n,) in _migrations(station)] == known_migrations()
    schema = station.db.execute_sql("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(station.db) == []
    assert station.db.execute_sql("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_database_from_a_newer_program_is_refused_untouched(tmp_path, now, monkeypatch):
    s = make_station(tmp_path / "v")
    register(s)
    s.db.execute_sql("INSERT INTO schema_migration (name, applied) VALUES ('0099_future_tables', '2030-01-01')")
    rows = _migrations(s)
    with pytest.raises(DatabaseProblem) as info:
        migrate(s.db)
    assert "更新版本" in info.value.message and "0099_future_tables" in info.value.message
    assert _migrations(s) == rows
    s.close()

    db = s.data.db
    digest = _digest(db)
    opened = []

    def spy(*args, **kw):
        opened.append(dbmod.open_database(*args, **kw))
        return opened[-1]

    monkeypatch.setattr("station.session.open_database", spy)
    with pytest.raises(DatabaseProblem, match="请安装最新版本的程序后再打开，数据未被改动"):
        unlock(tmp_path / "v", "agent1", PIN)
    assert len(opened) == 1 and opened[0].is_closed()  # the refused database is not left open
    gc.collect()
    assert _digest(db) == digest
    assert not db.with_name(db.name + "-wal").exists() or db.with_name(db.name + "-wal").stat().st_size == 0


def test_a_full_disk_saves_nothing_and_the_session_goes_on(station):
    pages = station.db.execute_sql("PRAGMA page_count").fetchone()[0]
    station.db.execute_sql(f"PRAGMA max_page_count = {pages}")  # SQLite answers SQLITE_FULL past this
    saved = 0
    with pytest.raises(DatabaseProblem) as info:
        for i in range(50):
            register(station, ident=id_number(seq=f"{i:03d}"))
            saved += 1
    assert info.value.message.startswith("磁盘空间不足，本次操作未保存")
    assert case_count(station) == saved and station.store.event_count() == 2 + saved
    assert station.store.meta("case_no:20260302") == str(saved)  # the number was not used up
    station.db.execute_sql("PRAGMA max_page_count = 1073741823")
    view = register(station, ident=id_number(seq="999"))
    assert view.case_no.endswith(f"-{saved + 1:04d}")
    assert verify_station(station).ok


def test_an_account_whose_role_the_station_cannot_hold_can_read_but_not_write(tmp_path, now):
    """A village account with a township role (allowed before roles were bound to the station's
    level): it still unlocks, reads and exports, and every write is refused in plain Chinese
    rather than signed into the chain for the county to refuse."""
    from schema.errors import TransitionError
    from station.session import unlock

    root = tmp_path / "v"
    with make_station(root, role=Role.ADMIN, login="admin1") as s:
        s.slots.add_user(user_id="old-clerk", login="clerk1", name="李娟", role=Role.CLERK, pin=PIN,
                         data_key=s.data_key())
        head = s.store.head()
    with unlock(root, "clerk1", PIN) as old:
        with pytest.raises(TransitionError) as e:
            register(old)
        assert "角色窗口人员不是村级工作站可以有的角色" in e.value.message
        assert old.store.head() == head and case_count(old) == 0
