"""Issue 8, findings 1, 2, 5 and 6, attacked as they were found: real stations, a real county
center on 127.0.0.1, and an attacker who signs what it likes with a station's REAL enrolled key
(``tests.station_attacker``). Each test failed on the code before authority and clocks were bounded.
"""

from __future__ import annotations

import pytest

from schema import events as K
from schema import hlc as HLC
from schema.org import Role
from station import clock
from station.replication import bundles
from station.replication import identity as I
from station.replication.push import pending_own
from station.replication.runner import sync_now
from station.replication.status import sync_status
from station.services import cases
from station.services.verify import verify_station
from station.session import unlock
from station.store.keyslots import UserDisabled
from sync.server import audit
from tests.helpers import (
    COUNTY,
    DIBAO,
    PIN,
    TOWN,
    VILLAGE,
    VILLAGE2,
    id_number,
    material_names,
    rongque_names,
)
from tests.station.sync_kit import enrolled_station, ok, register_case
from tests.station_attacker import Attacker


def village(tmp_path, county, name="v", org=VILLAGE, **kw):
    return enrolled_station(tmp_path / name, county, org=org, **kw)


def township(tmp_path, county):
    return enrolled_station(tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇")


def county_office(tmp_path, county):
    return enrolled_station(tmp_path / "c", county, org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县中心窗口")


def audit_reasons(county, code):
    return [r["reason"] for r in audit.audit_rows(county.cdb) if r["code"] == code]


def alarm_kinds(county, station):
    return [a["kind"] for a in audit.alarms(county.cdb, station=station)]


# -- finding 1: a clock at 2^63 stopped the county --------------------------------------------------------------


def test_finding1_an_hlc_at_2_63_is_refused_and_no_clock_moves(tmp_path, county):
    v = village(tmp_path, county)
    office = county_office(tmp_path, county)
    ok(sync_now(v))
    a = Attacker(v)
    evil = a.seal(
        K.USER_ADDED,
        "u-evil",
        {"user_id": "u-evil", "login": "evil", "name": "某人", "role": "agent", "org": VILLAGE},
        hlc=2**63 - 1,
    )
    status, body = a.push(county.url, [evil])
    assert (status, body["error"]) == (403, "clock"), body
    assert "第3条记录：逻辑时钟（遥远的将来）比县中心时间" in body["reason"]
    assert county.events_of(v.config.station_id)[-1][0] == 2  # nothing of it stored
    assert "clock" in alarm_kinds(county, v.config.station_id)
    assert any("第3条" in r for r in audit_reasons(county, "clock"))
    # the county's own chain and every station's clock stay sane: revoke, enroll, record all work
    assert county.station_row(v.config.station_id).head_hlc < HLC.pack(clock.ms(clock.now()) + HLC.DRIFT_MS, 0)
    ok(sync_now(office))
    register_case(office, 3)  # what overflowed before: the next write after such a pull
    assert int(office.store.meta("hlc")) < HLC.ceiling(clock.ms(clock.now()))
    register_case(v, 2)  # the village itself goes on: its seq 3 is its own
    ok(sync_now(v))
    other = village(tmp_path, county, name="v2", org=VILLAGE2)  # a new enrollment still works
    ok(sync_now(other))
    county.revoke(other.config.station_id, "测试")
    assert verify_station(office).ok and verify_station(v).ok


def test_finding1_a_station_whose_clock_runs_ahead_keeps_its_events_and_is_told_why(tmp_path, county, now):
    v = village(tmp_path, county)
    ok(sync_now(v))
    real = clock.now()
    now(clock.iso(real.replace(year=real.year + 1)))  # the PC's date is a year off
    register_case(v)
    report = sync_now(v)
    assert report.outcome == "refused"
    text = "；".join(report.messages)
    assert "时钟可能不准" in text and "自动上传" in text and "比县中心时间" in text, text
    assert I.blocked(v) is None  # not blocked: it is tried again at every sync
    assert pending_own(v) == 2 and "时钟" in sync_status(v).text()
    now(clock.iso(real))
    report = sync_now(v)  # still ahead of the county: still kept, still explained
    assert pending_own(v) == 2 and I.blocked(v) is None


# -- finding 2: a village acting as the township and the county -----------------------------------------------------


def test_finding2_a_village_cannot_forward_as_the_township_or_decide_as_the_county(tmp_path, county):
    v, t, c = village(tmp_path, county), township(tmp_path, county), county_office(tmp_path, county)
    for s in (v, t, c):
        ok(sync_now(s))
    bank = rongque_names(DIBAO)
    view = cases.register(v, item_code=DIBAO, name="王秀英", id_number=id_number(seq="002"),
                          received=[m for m in material_names(DIBAO) if m not in bank])
    cases.act(v, view.case_no, "notify-missing")
    cases.act(v, view.case_no, "supplement", {"materials": bank})  # supplement → accept → forward, honestly
    cases.act(v, view.case_no, "accept")
    cases.act(v, view.case_no, "forward", {"opinion": "请乡镇审核"})
    ok(sync_now(v))
    reviewer = c.user.user_id  # a real reviewer's id, learned from the county's users
    a = Attacker(v)
    as_town = a.seal(K.CASE_FORWARDED, view.case_id, {"opinion": "同意上报"}, org=TOWN, role="clerk")
    status, body = a.push(county.url, [as_town])
    assert (status, body["error"]) == (403, "authority") and "以单位 330522101000 的名义办理" in body["reason"]
    a.forget()
    as_county = a.seal(K.CASE_DECIDED, view.case_id, {"outcome": "approved", "opinion": "准予", "certificate": ""},
                       org=COUNTY, role="reviewer", actor=reviewer)
    status, body = a.push(county.url, [as_county])
    assert (status, body["error"]) == (403, "authority") and "以单位 330522000000 的名义办理" in body["reason"]
    a.forget()
    as_reviewer = a.seal(K.CASE_DECIDED, view.case_id, {"outcome": "approved", "opinion": "准予", "certificate": ""},
                         role="reviewer", actor=reviewer)  # its own org, a county role, another station's user
    status, body = a.push(county.url, [as_reviewer])
    assert (status, body["error"]) == (403, "authority") and "不是村级工作站可以有的角色" in body["reason"]
    assert alarm_kinds(county, v.config.station_id).count("authority") == 3
    for s in (t, c):
        ok(sync_now(s))
        got = cases.get(s, view.case_id)
        assert got.state.value == "transferred" and got.holder_org == TOWN and got.outcome is None
        assert verify_station(s).ok
    assert cases.get(c, view.case_id).state.value != "done"


def test_finding2_a_claim_that_slipped_in_is_a_conflict_in_every_fold(tmp_path, county):
    """Stored before the county checked authority (an old database): the fold judges the claim by
    the station registry, so the case shows a conflict instead of the forged decision."""
    v, c = village(tmp_path, county), county_office(tmp_path, county)
    view = register_case(v)
    ok(sync_now(v))
    ok(sync_now(c))
    a = Attacker(v)
    forged = a.seal(K.CASE_DECIDED, view.case_id, {"outcome": "approved", "opinion": "准予", "certificate": ""},
                    org=COUNTY, role="reviewer", actor=c.user.user_id)
    c.store.ingest([forged])  # straight into the log, as an old county would have served it
    got = cases.get(c, view.case_id)
    assert got.state.value == "in_progress" and got.outcome is None
    assert "以单位 330522000000 的名义办理，但该工作站登记的单位是 330522101001" in got.conflicts[-1].reason
    assert verify_station(c).ok


def test_finding2_station_init_refuses_a_role_its_level_cannot_hold(tmp_path):
    from schema.errors import ValidationError
    from tests.helpers import make_station

    with pytest.raises(ValidationError) as e:
        make_station(tmp_path / "x", org=VILLAGE, role=Role.REVIEWER, login="r")
    assert "村级工作站只能设置这些角色：代办员、管理员" in e.value.message
    assert not (tmp_path / "x").exists()


# -- finding 5: a township kept what the county refused ---------------------------------------------------------


def test_finding5_a_township_refuses_a_forged_sibling_case_before_storing_it(tmp_path, county):
    v, v2, t = village(tmp_path, county), village(tmp_path, county, "v2", VILLAGE2), township(tmp_path, county)
    for s in (v, v2, t):
        ok(sync_now(s))
    ok(sync_now(v))  # v learns its township's key, so its bundles are readable there
    sibling = register_case(v2)
    ok(sync_now(v2))
    ok(sync_now(t))
    a = Attacker(v)
    usb = tmp_path / "usb"
    forged = a.seal(K.CASE_VOIDED, sibling.case_id, {"reason": "重复登记"})  # v's key, v2's case
    a.bundle(usb, [forged])
    result = bundles.import_path(t, usb)
    assert not result.ok and any("不属于本工作站的管辖范围" in p for p in result.problems), result.problems
    assert not t.store.has_event(forged.id)
    assert t.db.execute_sql("SELECT reason FROM quarantine WHERE id = ?", (forged.id,)).fetchone()
    ok(sync_now(t))  # nothing of it goes up
    assert not any(h == forged.hash for _, h in county.events_of(v.config.station_id))
    assert cases.get(t, sibling.case_id).state.value == "in_progress" and verify_station(t).ok


def test_finding5_the_countys_copy_wins_at_the_township_and_the_difference_shows(tmp_path, county):
    v, t = village(tmp_path, county), township(tmp_path, county)
    for s in (v, t):
        ok(sync_now(s))
    ok(sync_now(v))
    a = Attacker(v)  # a copy of the village's data directory on a second PC
    view = register_case(v)
    ok(sync_now(v))  # the real events reach the county online
    usb = tmp_path / "usb"
    fake = a.seal(K.CASE_REGISTERED, "forged-case", {"case_no": "X", "item": {"code": "x"}})  # same seq, other event
    a.bundle(usb, [fake])
    bundles.import_path(t, usb)  # plausible: the township takes it in for review
    assert t.store.has_event(fake.id)
    report = sync_now(t)
    text = "；".join(report.messages)
    assert "被县中心拒收" in text and "链分叉" in text, text
    assert not t.store.has_event(fake.id)  # the county's copy of that seq replaced it
    real = v.db.execute_sql("SELECT id FROM event WHERE station = ? AND seq = ?", (v.config.station_id, fake.seq))
    assert t.store.has_event(real.fetchone()[0])
    status = sync_status(t)
    assert status.relay_refused and status.set_aside >= 1
    assert any(r["seq"] == fake.seq for r in status.set_aside_recent)
    assert "按县中心的记录为准" in status.text() or "县中心" in status.set_aside_recent[0]["reason"]
    assert cases.get(t, view.case_id).state.value == "in_progress" and verify_station(t).ok


# -- finding 6: any station could rewrite or disable any user ----------------------------------------------------


def test_finding6_a_station_cannot_rewrite_or_disable_another_stations_user(tmp_path, county):
    v, v2 = village(tmp_path, county), village(tmp_path, county, "v2", VILLAGE2)
    for s in (v, v2):
        ok(sync_now(s))
    victim = v.user.user_id
    a = Attacker(v2)
    rewrite = {"user_id": victim, "login": "agent1", "name": "冒名", "role": "admin", "org": VILLAGE2}
    for kind, body in ((K.USER_ADDED, rewrite), (K.USER_DISABLED, {"user_id": victim}),
                       (K.USER_PIN_RESET, {"user_id": victim})):
        status, answer = a.push(county.url, [a.seal(kind, victim, body)])
        assert (status, answer["error"]) == (403, "authority"), answer
        a.forget()
    St = county.cdb.m.Staff
    row = St.get_by_id(victim)
    assert (row.station, row.disabled, row.role) == (v.config.station_id, False, "agent")
    ok(sync_now(v2))
    ok(sync_now(v))
    unlock(v.data.root, "agent1", PIN).close()  # the victim still works
    user = v2.db.execute_sql("SELECT station, role, disabled FROM user WHERE user_id = ?", (victim,)).fetchone()
    assert user == (v.config.station_id, "agent", 0)


def test_finding6_the_county_admin_disables_a_village_user_who_then_cannot_unlock(tmp_path, county):
    v = village(tmp_path, county)
    office = enrolled_station(tmp_path / "c", county, org=COUNTY, role=Role.ADMIN, login="admin", name="县中心")
    ok(sync_now(v))
    ok(sync_now(office))
    victim = v.user.user_id
    register_case(v)  # made before the village learns of the disable: accepted all the same
    office.store.record(office.actor, K.USER_DISABLED, victim, {"user_id": victim})
    ok(sync_now(office))
    ok(sync_now(v))
    assert v.store.head()[0] == I.acked(v)  # its earlier events went up
    assert v.slots.find("agent1").disabled
    with pytest.raises(UserDisabled):
        unlock(v.data.root, "agent1", PIN)
    St = county.cdb.m.Staff
    assert (St.get_by_id(victim).disabled, St.get_by_id(victim).disabled_seq) == (True, None)
