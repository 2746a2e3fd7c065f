"""USB bundles: a village that never reaches the network, through its township or straight to the county.

Real stations, the real county center; only files travel between the village and the others.
Bad files (damaged, truncated, foreign, someone else's) are skipped with a Chinese message and
change nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from schema.errors import NotFoundError, UserError
from schema.org import Role
from station.replication import enroll as enrolling
from station.replication import identity as I
from station.replication.bundles import export_bundle, import_path
from station.replication.push import pending_own
from station.replication.runner import sync_now
from station.replication.status import sync_status
from station.services import cases
from station.services.verify import verify_station
from sync import envelope
from sync.crypto import KeyPair
from tests.helpers import COUNTY, TOWN, VILLAGE, VILLAGE_T2, make_station
from tests.station.sync_kit import CountyServer, check_marks, enrolled_station, ok, register_case


def offline_village(tmp_path: Path, county: CountyServer, org: str = VILLAGE, name: str = "v"):
    """A village enrolled with request/response files only: it never talks to the county."""
    from sync.server import registry

    s = make_station(tmp_path / name, org=org)
    req = enrolling.write_request(s, tmp_path / f"{name}-request.json", county.code(org, "village"))
    answer = registry.enroll(county.cdb, county.county, json.loads(req.read_text()), url=county.url)
    resp = tmp_path / f"{name}-answer.json"
    resp.write_text(json.dumps(answer))
    enrolling.apply_response_file(s, resp)
    return s


def stick(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    return d


def cvs(d: Path) -> list[Path]:
    return sorted(d.glob("*.cvs"))


def test_a_village_on_usb_only_through_its_township(tmp_path, county_both):
    county = county_both
    t = enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )
    c = enrolled_station(
        tmp_path / "c", county, org=COUNTY, role=Role.REVIEWER, login="shenpi", name="县中心"
    )
    v = offline_village(tmp_path, county)
    county.publish_catalog("2026.4")
    view = register_case(v, 1)
    cases.act(v, view.case_no, "forward", {"opinion": "请乡镇审核"})

    # 1st trip: the village does not know its township's key yet — only the county can read its file
    usb = stick(tmp_path, "usb1")
    out = export_bundle(v, usb)
    assert not out.township_can_read and "只能由县中心导入" in out.text()
    assert len(cvs(usb)) == 1 and out.events == 5
    ok(sync_now(t))  # the township learns about the village from the registry
    res = import_path(t, usb)
    assert res.ok and "还不知道本站的密钥" in res.text()
    ok(sync_now(t))  # fetches a return for the village (registry, catalog, its township's keys)
    back = stick(tmp_path, "back1")
    out = export_bundle(t, back)
    assert out.returns == 1
    res = import_path(v, back)
    assert res.returns == 1 and res.ok, res.problems
    assert "这是本站自己导出的文件" not in res.text()
    assert (
        I.county(v)
        and v.db.execute_sql(
            "SELECT count(*) FROM registry WHERE station = ?", (t.config.station_id,)
        ).fetchone()[0]
        == 1
    )
    from station.replication.catalog import current_catalog

    assert current_catalog(v).version == "2026.4"

    # 2nd trip: now the township can read, review and relay it
    usb2 = stick(tmp_path, "usb2")
    out = export_bundle(v, usb2)
    assert out.township_can_read
    res = import_path(t, usb2)
    assert res.ok and res.segments == 1 and res.events == 5, res.text()
    assert cases.get(t, view.case_id).holder_org == TOWN  # the township reviews it before any sync
    assert sync_status(t).pending_relay == 5
    r = ok(sync_now(t))
    assert r.relayed == 5 and r.returns == 1
    assert [s for s, _ in county.events_of(v.config.station_id)] == [1, 2, 3, 4, 5]
    cases.act(t, view.case_no, "receive")
    cases.act(t, view.case_no, "forward", {"opinion": "同意上报"})
    ok(sync_now(t))
    ok(sync_now(c))
    cases.act(c, view.case_no, "receive")
    cases.act(c, view.case_no, "decide", {"outcome": "approved"})
    ok(sync_now(c))
    ok(sync_now(t))  # relays nothing new, fetches the village's return with the decision
    back2 = stick(tmp_path, "back2")
    export_bundle(t, back2)
    res = import_path(v, back2)
    assert res.ok and res.receipts == 1, res.problems
    assert pending_own(v) == 0 and check_marks(v, county) == 5
    assert cases.get(v, view.case_id).state.value == "done"
    # re-importing the same files changes nothing
    events = v.store.event_count()
    import_path(v, back2)
    import_path(t, usb2)
    assert v.store.event_count() == events
    for s in (v, t, c):
        assert verify_station(s).ok, verify_station(s).problems
        s.close()


def test_a_village_bundle_straight_to_the_county(tmp_path, county):
    from sync.server import bundles as county_bundles

    v = offline_village(tmp_path, county)
    register_case(v, 1)
    usb = stick(tmp_path, "usb")
    export_bundle(v, usb)
    [result] = county_bundles.import_path(county.cdb, county.county, usb)
    assert result.status == "imported", result.message
    back = stick(tmp_path, "back")
    county_bundles.export(county.cdb, county.county, v.config.station_id, back)
    res = import_path(v, back)
    assert res.ok and res.receipts == 1
    assert check_marks(v, county) == 4 and pending_own(v) == 0
    v.close()


def test_a_township_relays_segments_it_could_not_verify_yet(tmp_path, county):
    t = enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)  # enrolled after the township last synced
    ok(sync_now(v))  # the village knows the township; the township does not know the village yet
    view = register_case(v, 1)
    usb = stick(tmp_path, "usb")
    export_bundle(v, usb)
    res = import_path(t, usb)
    assert res.ok and "待下次同步后核验" in res.text()
    assert t.db.execute_sql("SELECT verified FROM relay_segment").fetchall() == [(0,)]
    with pytest.raises(NotFoundError):
        cases.get(t, view.case_id)  # not ingested before it is verified
    r = ok(sync_now(t))
    assert r.relayed == 2 and sync_status(t).pending_relay == 0
    assert cases.get(t, view.case_id).case_no == view.case_no
    assert check_marks(v) == 2  # the village itself has no receipt for seq 3, 4 yet …
    r = ok(sync_now(v))  # … until its own next sync: the county answers duplicate for what was relayed
    assert check_marks(v, county) == 4
    v.close()
    t.close()


def test_a_township_skips_what_is_not_below_it(tmp_path, county):
    t = enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )
    other = enrolled_station(
        tmp_path / "o", county, org=VILLAGE_T2, name="西村便民服务室"
    )  # another township's
    ok(sync_now(t))
    register_case(other, 1)
    usb = stick(tmp_path, "usb")
    export_bundle(other, usb)  # sealed to the county (and its own township, unknown here)
    res = import_path(t, usb)
    assert res.ok and "不是发给本站的" in res.text()
    assert t.db.execute_sql("SELECT count(*) FROM relay_segment").fetchone() == (0,)
    t.close()
    other.close()


# -- bad files ---------------------------------------------------------------------------------------------------


def _damage(blob: bytes, how: str) -> bytes:
    if how == "truncated":
        return blob[: len(blob) // 2]
    if how == "flipped":
        b = bytearray(blob)
        b[-20] ^= 0x40
        return bytes(b)
    if how == "header":
        b = bytearray(blob)
        b[15] ^= 0x01
        return bytes(b)
    if how == "empty":
        return b""
    if how == "junk":
        return os.urandom(3000)
    if how == "text":
        return "这不是同步文件".encode()
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated", "flipped", "header", "empty", "junk", "text"])
def test_damaged_files_change_nothing(tmp_path, county, how):
    t = enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    ok(sync_now(t))
    ok(sync_now(v))
    register_case(v, 1)
    usb = stick(tmp_path, "usb")
    [f] = export_bundle(v, usb).files
    f.write_bytes(_damage(f.read_bytes(), how))
    before = (t.store.event_count(), t.db.execute_sql("SELECT count(*) FROM relay_segment").fetchone())
    res = import_path(t, usb)
    assert not res.ok and len(res.problems) == 1
    assert "此文件已跳过，本机数据未受影响" in res.problems[0], res.problems
    assert (
        t.store.event_count(),
        t.db.execute_sql("SELECT count(*) FROM relay_segment").fetchone(),
    ) == before
    # the village still has everything and can export again
    assert pending_own(v) == 2 and export_bundle(v, stick(tmp_path, "again")).events == 2
    t.close()
    v.close()


def test_return_files_for_others_and_forged_returns(tmp_path, county):
    from schema import canonical
    from sync import api

    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    w = enrolled_station(tmp_path / "w", county, org="330522101002", name="南村便民服务室")
    ok(sync_now(v))
    ok(sync_now(w))
    usb = stick(tmp_path, "usb")
    from sync.server import bundles as county_bundles

    county_bundles.export(county.cdb, county.county, w.config.station_id, usb)  # W's return file
    res = import_path(v, usb)
    assert res.ok and "给其他工作站的回执文件" in res.text() and res.returns == 0
    # a return sealed to V but signed by someone who is not the county
    liar = KeyPair.generate()
    page = api.page_doc(
        liar,
        county=COUNTY,
        station=v.config.station_id,
        cursor_from=0,
        cursor_to=999,
        more=False,
        now="2026-03-02T09:00:00+08:00",
        events=[],
    )
    payload = {"t": "return", "v": 1, "station": v.config.station_id, "pages": [page], "receipts": []}
    blob = envelope.seal(
        canonical.encode(payload),
        kind="return",
        sender="county",
        recipients=[I.keypair(v).public.enc],
        signer=liar,
    )
    bad = stick(tmp_path, "bad")
    (bad / "x.cvs").write_bytes(blob)
    cursor = I.cursor(v)
    res = import_path(v, bad)
    assert not res.ok and "签名" in res.problems[0]
    assert I.cursor(v) == cursor
    # its own export is recognised
    own = stick(tmp_path, "own")
    export_bundle(v, own)
    res = import_path(v, own)
    assert res.ok and "本站自己导出的文件" in res.text()
    # nothing there at all
    res = import_path(v, stick(tmp_path, "empty"))
    assert res.ok and "没有同步数据文件" in res.text()
    with pytest.raises(UserError, match="找不到"):
        import_path(v, tmp_path / "nowhere")
    v.close()
    w.close()


def test_export_needs_an_enrolled_unrevoked_station(tmp_path, county):
    s = make_station(tmp_path / "s")
    with pytest.raises(I.NotEnrolled):
        export_bundle(s, tmp_path)
    s.close()
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    county.revoke(v.config.station_id, "停用")
    assert sync_now(v).outcome == "revoked"
    with pytest.raises(I.Revoked, match="停用"):
        export_bundle(v, tmp_path)
    v.close()


def test_export_to_an_unwritable_place_is_a_clear_error(tmp_path, county):
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    register_case(v, 1)
    not_a_dir = tmp_path / "usb-file"
    not_a_dir.write_text("a file where a folder should be")
    with pytest.raises(UserError, match="无法写入"):
        export_bundle(v, not_a_dir / "sub" / "x.cvs")
    assert pending_own(v) == 4  # never synced: all four events still waiting
    v.close()


def test_bundle_files_are_opaque_and_named_by_station_and_time(tmp_path, county, now):
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    register_case(v, 1)
    usb = stick(tmp_path, "usb")
    [f] = export_bundle(v, usb).files
    data = f.read_bytes()
    assert "王秀英".encode() not in data and b"13800001234" not in data
    # which station and when, for the person at the window; nothing personal, no station id
    assert re.fullmatch(rf"{VILLAGE}-01_20260302-0900_上报_[0-9a-f]{{4}}\.cvs", f.name), f.name
    assert v.config.station_id not in f.name
    assert envelope.peek(data)["type"] == "bundle"
    v.close()


def test_one_refused_village_segment_does_not_block_the_others(tmp_path, county):
    from schema import canonical
    from schema import events as K
    from schema.events import GENESIS, seal
    from sync.messages import make_segment

    t = enrolled_station(
        tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    )
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE)
    ok(sync_now(v))
    ok(sync_now(t))
    register_case(v, 1)
    usb = stick(tmp_path, "usb")
    export_bundle(v, usb)
    # a bundle from a PC the county never enrolled (copied software, no code): sealed to the township
    ghost_key, ghost = KeyPair.generate(), "0190a0a0-0000-7000-8000-00000000dead"
    ev = seal(
        id="ghost-1",
        station=ghost,
        seq=1,
        prev=GENESIS,
        at="2026-03-02T09:00:00+08:00",
        hlc=1 << 20,
        actor="x",
        role="agent",
        org="330522101003",
        kind=K.STATION_INITIALISED,
        subject=ghost,
        body={"org": "330522101003", "name": "假站", "station_no": 1},
    )
    payload = {
        "t": "bundle",
        "v": 1,
        "from": ghost,
        "made_at": "2026-03-02T09:00:00+08:00",
        "segments": [make_segment([ev], ghost_key, COUNTY)],
        "cursor": 0,
        "acked": 0,
    }
    blob = envelope.seal(
        canonical.encode(payload),
        kind="bundle",
        sender=ghost,
        recipients=[county.county.public.enc, I.keypair(t).public.enc],
        signer=ghost_key,
    )
    (usb / "ghost.cvs").write_bytes(blob)
    res = import_path(t, usb)
    assert res.ok and res.segments == 2, res.text()
    r = sync_now(t)
    assert r.relayed == 2 and r.outcome == "refused"  # the village's 2 events went; the ghost did not
    assert any("拒收" in m for m in r.messages)
    st = sync_status(t)
    assert st.pending_relay == 0 and len(st.relay_refused) == 1
    assert st.relay_refused[0]["station"] == ghost and st.relay_refused[0]["error"] == "unknown_station"
    assert check_marks(v) == 2 and sync_now(v).ok and check_marks(v, county) == 4
    # the refused segment is kept (never deleted) and does not come back at every sync
    r = sync_now(t)
    assert r.ok, r.messages
    assert t.db.execute_sql("SELECT state FROM relay_segment").fetchall() == [("refused",)]
    v.close()
    t.close()
