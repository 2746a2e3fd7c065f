"""Sync between real stations and the real county center (uvicorn on 127.0.0.1).

A case goes village → township → county and the decision comes back; receipts, cursors, gaps
after a county restored from backup, forks, revocation, county-published data, clock offsets,
and a second Session syncing on its own thread. Counties that answer badly (forged pages and
receipts, slow links): test_replication_untrusted.py.
"""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from schema import events as K
from schema.catalog import default_catalog
from schema.errors import UserError
from schema.org import Role
from station.replication import enroll as enrolling
from station.replication import identity as I
from station.replication.catalog import current_catalog
from station.replication.context import OFFLINE, OK, REFUSED, REVOKED
from station.replication.push import pending_own
from station.replication.runner import history, sync_now
from station.replication.status import sync_status
from station.services import cases
from station.services.verify import verify_station
from sync.client import Client
from tests.helpers import COUNTY, PENSION, TOWN, VILLAGE, VILLAGE2, id_number, make_station, material_names
from tests.station.sync_kit import (
    CountyServer,
    check_marks,
    enrolled_station,
    ok,
    register_case,
    reopen,
)


def village(tmp_path, county, name="v", org=VILLAGE):
    return enrolled_station(tmp_path / name, county, org=org)


def township(tmp_path, county):
    return enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )


def county_office(tmp_path, county):
    return enrolled_station(
        tmp_path / "c", county, org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县政务服务中心"
    )




def state(s, case_id):
    return cases.get(s, case_id).state.value


# -- the whole path -----------------------------------------------------------------------------------


def test_a_case_goes_up_to_the_county_and_its_decision_comes_back_down(tmp_path, county_both):
    county = county_both
    v, t, c = village(tmp_path, county), township(tmp_path, county), county_office(tmp_path, county)
    view = register_case(v)
    cases.act(v, view.case_no, "forward", {"opinion": "请乡镇审核"})
    stages = []
    r = ok(sync_now(v, progress=lambda stage, done, total: stages.append((stage, done, total))))
    assert r.pushed == v.store.head()[0] and pending_own(v) == 0
    assert ("上传本站记录", r.pushed, r.pushed) in stages and stages[-1] == ("完成", 1, 1)
    check_marks(v, county)

    ok(sync_now(t))
    assert state(t, view.case_id) == "transferred" and cases.get(t, view.case_id).holder_org == TOWN
    cases.act(t, view.case_no, "receive")
    cases.act(t, view.case_no, "forward", {"opinion": "同意上报"})
    ok(sync_now(t))

    ok(sync_now(c))
    assert cases.get(c, view.case_id).holder_level == "county"
    cases.act(c, view.case_no, "receive")
    cases.act(c, view.case_no, "decide", {"outcome": "approved", "opinion": "准予"})
    ok(sync_now(c))

    ok(sync_now(t))
    r = ok(sync_now(v))
    assert r.pulled >= 3
    assert state(v, view.case_id) == "done"
    for s in (v, t, c):
        check_marks(s, county)
        report = verify_station(s)
        assert report.ok, report.problems
        assert sync_status(s).pending == 0
    # every replica folds the case the same way
    rows = [
        s.db.execute_sql("SELECT view FROM case_view WHERE case_id = ?", (view.case_id,)).fetchone()[0]
        for s in (v, t, c)
    ]
    assert json.loads(rows[0]) == json.loads(rows[1]) == json.loads(rows[2])
    # a sibling village sees nothing of it
    v2 = village(tmp_path, county, "v2", VILLAGE2)
    ok(sync_now(v2))
    assert v2.db.execute_sql("SELECT count(*) FROM case_view").fetchone()[0] == 0
    for s in (v, t, c, v2):
        s.close()


def test_a_sync_with_nothing_new_is_one_small_round_trip(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v)
    ok(sync_now(v))
    ok(sync_now(v))  # the registry event of our own enrollment came down the first time
    client = Client(county.url)
    r = ok(sync_now(v, client))
    assert (r.pushed, r.pulled) == (0, 0)
    assert client.requests == 1
    assert r.bytes_sent + r.bytes_received < 2048, (r.bytes_sent, r.bytes_received)
    assert r.offset_ms is not None and sync_status(v).offset_ms == r.offset_ms
    log = history(v)
    assert [h["outcome"] for h in log[:3]] == ["ok", "ok", "ok"] and log[0]["bytes_sent"] == r.bytes_sent
    v.close()


def test_push_in_small_batches_resumes_from_the_last_receipt(tmp_path, county):
    v = village(tmp_path, county)
    for n in range(30):
        register_case(v, n)
    with v.store.writing():
        v.store.set_meta(I.BATCH, "10")  # what a slow link would have shrunk it to
    seen = []
    r = ok(
        sync_now(v, progress=lambda st, d, tot: seen.append((st, d, tot)) if st == "上传本站记录" else None)
    )
    total = 2 + 60  # station.initialised, user.added, then register + accept per case
    assert r.pushed == total
    assert [d for _, d, _ in seen] == sorted({d for _, d, _ in seen})  # progress only moves forward
    assert seen[-1] == ("上传本站记录", total, total)
    assert check_marks(v, county) == total
    # the batch grows back after successes
    assert int(v.store.meta(I.BATCH)) > 10
    v.close()


# -- the county lost data: resend from where it says ------------------------------------------------------


def test_county_restored_from_backup_gets_our_events_again(tmp_path):
    root = tmp_path / "county"
    c1 = CountyServer(root)
    v = village(tmp_path, c1)
    register_case(v, 1)
    ok(sync_now(v))
    c1.stop()
    backup = tmp_path / "backup"
    shutil.copytree(root, backup)
    c1 = CountyServer.reopen(root)
    register_case(v, 2)
    register_case(v, 3)
    ok(sync_now(v, url=c1.url))  # restarted on another port: --server, remembered from now on
    assert v.config.county_url == c1.url
    acked = check_marks(v, c1)
    c1.stop()
    # the county's disk dies; the admin restores yesterday's backup
    shutil.rmtree(root)
    shutil.copytree(backup, root)
    c2 = CountyServer.reopen(root)
    assert len(c2.events_of(v.config.station_id)) < acked
    register_case(v, 4)
    r = ok(sync_now(v, url=c2.url))
    assert r.pushed > 0
    assert check_marks(v, c2) == acked + 2  # case 4: register + accept
    assert [s for s, _ in c2.events_of(v.config.station_id)] == list(range(1, acked + 3))
    c2.stop()
    v.close()


# -- fork: the same station identity on two PCs ------------------------------------------------------------


def test_a_fork_stops_our_push_with_its_reason_but_not_the_pull(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v, 1)
    ok(sync_now(v))
    v.close()
    shutil.copytree(tmp_path / "v", tmp_path / "clone")  # someone copied the data directory to a 2nd PC
    a, b = reopen(tmp_path / "v"), reopen(tmp_path / "clone")
    register_case(a, 2)
    register_case(b, 3)
    ok(sync_now(a))
    county.publish_catalog("2026.2")
    r = sync_now(b)
    assert r.outcome == REFUSED and r.exit_code == 2
    assert any("拒收" in m for m in r.messages), r.messages
    assert r.pulled > 0 and current_catalog(b).version == "2026.2"  # the pull still ran
    st = sync_status(b)
    assert st.blocked and st.pending_own == 2 and "上传已暂停" in st.message
    # the next sync does not hammer the county with the same fork, and keeps everything
    r2 = sync_now(b)
    assert r2.outcome == REFUSED and "暂停上传" in r2.messages[0]
    assert pending_own(b) == 2 and verify_station(b).ok
    alarms = county.cdb.m.Alarm.select().where(county.cdb.m.Alarm.kind == "fork").count()
    assert alarms == 1
    a.close()
    b.close()


# -- revocation ----------------------------------------------------------------------------------------------


def test_a_revoked_station_stops_syncing_and_says_why_keeping_its_data(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v, 1)
    ok(sync_now(v))
    county.revoke(v.config.station_id, "电脑被盗")
    register_case(v, 2)
    r = sync_now(v)
    assert r.outcome == REVOKED and r.exit_code == 2
    assert "注销" in r.messages[0] and "电脑被盗" in r.messages[0]
    st = sync_status(v)
    assert st.revoked and "电脑被盗" in st.revoked_reason and st.pending_own == 2
    assert "注销" in st.message
    # no network at all any more (a closed port would be "offline" if it were tried)
    r = sync_now(v, Client("http://127.0.0.1:9"))
    assert r.outcome == REVOKED
    assert verify_station(v).ok and pending_own(v) == 2
    # a re-enrollment with a fresh code brings it back
    enrolling.enroll_online(v, county.url, county.code(VILLAGE, "village"))
    ok(sync_now(v))
    assert pending_own(v) == 0 and not sync_status(v).revoked
    v.close()


def test_revocation_learned_from_the_registry(tmp_path, county):
    """A township learns that a village was revoked; a village learns it about itself by a return file."""
    from sync.server import bundles as county_bundles

    v, t = village(tmp_path, county), township(tmp_path, county)
    ok(sync_now(v))
    ok(sync_now(t))
    county.revoke(v.config.station_id, "撤并村")
    ok(sync_now(t))
    entry = t.db.execute_sql(
        "SELECT revoked, reason FROM registry WHERE station = ?", (v.config.station_id,)
    ).fetchone()
    assert entry == (1, "撤并村")
    assert I.revoked(t) is None
    # the county exports a return file for the revoked village by hand? It refuses: revoked stations
    # get nothing. So the village learns it at its next sync instead.
    with pytest.raises(UserError, match="吊销"):
        county_bundles.export(county.cdb, county.county, v.config.station_id, tmp_path)
    assert sync_now(v).outcome == REVOKED and I.revoked(v)
    v.close()
    t.close()


# -- county-published data ----------------------------------------------------------------------------------


def test_catalog_calendar_and_users_come_down(tmp_path, county, now):
    v, t = village(tmp_path, county), township(tmp_path, county)
    view = register_case(v, 1)
    assert current_catalog(v) is default_catalog()
    county.publish_catalog("2026.3", drop=1)
    dropped = default_catalog().items[0].impl_code
    county.publish(
        K.CALENDAR_SET, "2026-03-03", {"day": "2026-03-03", "workday": False, "source": "县政府通知"}
    )
    due_before = v.db.execute_sql(
        "SELECT due_date FROM case_view WHERE case_id = ?", (view.case_id,)
    ).fetchone()
    ok(sync_now(t))  # the township's user.added goes up
    ok(sync_now(v))
    cat = current_catalog(v)
    assert cat.version == "2026.3" and cat.find(dropped) is None
    assert v.db.execute_sql("SELECT workday FROM calendar_override WHERE day = '2026-03-03'").fetchone() == (
        0,
    )
    due_after = v.db.execute_sql(
        "SELECT due_date FROM case_view WHERE case_id = ?", (view.case_id,)
    ).fetchone()
    assert due_after != due_before  # one more rest day pushes the due date out
    logins = {r[0] for r in v.db.execute_sql("SELECT login FROM user")}
    assert {"agent1", "clerk1"} <= logins
    # the registry knows the township (its keys are what a USB bundle is sealed to)
    reg = {r[0] for r in v.db.execute_sql("SELECT station FROM registry")}
    assert t.config.station_id in reg
    assert verify_station(v).ok
    v.close()
    t.close()


def test_a_bad_catalog_body_does_not_block_anything(tmp_path, county):
    v = village(tmp_path, county)
    county.publish(K.CATALOG_PUBLISHED, "bad", {"version": "", "items": "nope"})
    county.publish(K.USER_ADDED, "u-bad", {"login": 5})  # malformed, and only a station may send these
    ok(sync_now(v))
    assert current_catalog(v) is default_catalog()
    register_case(v, 1)  # the station still works
    ok(sync_now(v))
    v.close()


def test_offline_keeps_everything_and_says_so(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v, 1)
    r = sync_now(v, Client("http://127.0.0.1:9", retries=0))
    assert r.outcome == OFFLINE and r.exit_code == 3 and "无法连接县中心" in r.messages[0]
    st = sync_status(v)
    assert st.online is False and st.pending_own == 4 and st.last_success is None
    assert "离线" in st.message and "无法连接" in st.last_error
    ok(sync_now(v))
    st = sync_status(v)
    assert st.online and st.last_error == "" and st.pending == 0
    v.close()


# -- the clock -------------------------------------------------------------------------------------------------------


def test_a_wrong_clock_is_measured_and_flagged(tmp_path, county, now):
    now("2026-03-02T09:00:00+08:00")  # far from the county's real time
    v = village(tmp_path, county)
    register_case(v, 1)
    r = ok(sync_now(v))
    assert abs(r.offset_ms) > 5 * 60 * 1000
    st = sync_status(v)
    assert st.clock_warning and st.clock_suspect == 4 and "时钟" in st.clock_warning
    register_case(v, 2)  # recorded while the clock is known to be wrong
    assert sync_status(v).clock_suspect == 6
    v.close()


# -- a second Session syncing on its own thread --------------------------------------------------------------------


def test_fork_syncs_on_another_thread_while_the_first_session_works(tmp_path, county):
    v, t = village(tmp_path, county), township(tmp_path, county)
    view = register_case(v, 1)
    cases.act(v, view.case_no, "forward")
    ok(sync_now(v))
    ok(sync_now(t))
    cases.act(t, view.case_no, "receive")
    cases.act(t, view.case_no, "forward", {"opinion": "同意"})
    ok(sync_now(t))
    assert cases.get(v, view.case_id).holder_org == TOWN  # cached in v's Store
    done = {}

    def work():
        with v.fork() as s:
            done["report"] = sync_now(s)
            done["thread"] = threading.current_thread().name

    th = threading.Thread(target=work, name="sync-worker")
    th.start()
    for n in range(2, 6):
        register_case(v, n)  # the first session keeps writing meanwhile
    th.join(60)
    assert done["report"].outcome == OK and done["thread"] == "sync-worker"
    # the first session sees what the other connection pulled (its cache was refreshed)
    assert cases.get(v, view.case_id).holder_level == "county"
    ok(sync_now(v))
    check_marks(v, county)
    assert verify_station(v).ok
    v.close()
    t.close()


def test_not_enrolled_is_a_clear_error(tmp_path):
    s = make_station(tmp_path / "v")
    from station.replication.identity import NotEnrolled

    with pytest.raises(NotEnrolled) as e:
        sync_now(s)
    assert "登记" in e.value.message
    st = sync_status(s)
    assert not st.enrolled and st.message == "未登记到县中心"
    view = cases.register(
        s,
        item_code=PENSION,
        name="王秀英",
        id_number=id_number(),
        phone="13800001234",
        received=material_names(PENSION),
    )
    assert view and st.pending == 2 and sync_status(s).pending == 3  # waiting for an enrollment
    s.close()


def test_a_revocation_of_our_current_key_in_the_registry_revokes_us(tmp_path, county):
    """The registry projection: only the county's chain counts, and only for our current key."""
    from schema.events import seal

    v = village(tmp_path, county)
    ok(sync_now(v))
    c = I.county(v)
    own = v.config.station_id
    mine = I.keypair(v).public.to_dict()["sign_pub"]
    head = v.db.execute_sql("SELECT max(seq), max(hlc) FROM event WHERE station = ?", (c.station,)).fetchone()

    def county_event(kind, body, *, station=c.station, n=1):
        return seal(
            id=f"rv-{kind}-{station}-{n}",
            station=station,
            seq=head[0] + 100 + n,
            prev="x",
            at="2026-03-02T09:00:00+08:00",
            hlc=head[1] + n,
            actor="county-center",
            role="admin",
            org=COUNTY,
            kind=kind,
            subject=own,
            body=body,
        )

    # written on another chain: ignored
    v.store.ingest([county_event(K.STATION_REVOKED, {"station": own, "reason": "伪造"}, station="evil")])
    assert I.revoked(v) is None
    # revoking an older key of ours: ignored
    v.store.ingest(
        [county_event(K.STATION_REVOKED, {"station": own, "reason": "旧密钥", "sign_pub": "b2xk"}, n=2)]
    )
    assert I.revoked(v) is None
    # revoking us: the station stops syncing and says why
    v.store.ingest([county_event(K.STATION_REVOKED, {"station": own, "reason": "撤销"}, n=3)])
    assert I.revoked(v)["reason"] == "撤销"
    assert v.db.execute_sql(
        "SELECT revoked, sign_pub FROM registry WHERE station = ?", (own,)
    ).fetchone() == (1, mine)
    r = sync_now(v)
    assert r.outcome == REVOKED and "撤销" in r.messages[0]
    v.close()
