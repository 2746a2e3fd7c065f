"""station.services.admin: station info, users, settings and the ID-number audit."""

from __future__ import annotations

import pytest

from schema.errors import TransitionError, ValidationError
from schema.org import Role
from station.config import DataDir
from station.services import admin, cases
from station.session import unlock
from tests.helpers import PENSION, TOWN, VILLAGE, id_number, make_station, material_names, receive

NEW_PIN = "Cun-2026-xin"


@pytest.fixture
def village(tmp_path, now):
    """A village station set up with its local administrator (who manages its users)."""
    s = make_station(tmp_path / "v", org=VILLAGE, role=Role.ADMIN, login="admin1")
    yield s
    s.close()


def test_station_info_of_a_station_that_never_enrolled(village):
    info = admin.station_info(village)
    assert (info.org, info.level, info.name, info.station_no) == (VILLAGE, "村级", "东村便民服务室", 1)
    assert info.station_id == village.config.station_id
    assert not info.enrolled and not info.revoked and not info.request_pending
    assert info.key_fingerprint == "" and info.county_url == ""
    assert info.county_code == "330522000000"
    assert info.enrollment_text == "未登记到县中心"


def test_fingerprint_is_grouped_for_reading_aloud():
    assert admin.fingerprint("3f2a9c0d11e4b7a8") == "3F2A 9C0D 11E4 B7A8"


def test_offline_request_shows_as_pending(village, tmp_path):
    from station.replication import enroll

    enroll.write_request(village, tmp_path, "K7QX-M2PD-9TRW")
    info = admin.station_info(village)
    assert info.request_pending and not info.enrolled
    assert info.enrollment_text.startswith("已写出离线登记申请")


def test_the_local_admin_adds_an_agent_and_the_agent_can_unlock(village):
    assert admin.manageable_roles(village) == [Role.AGENT, Role.ADMIN]  # only what a village may hold
    admin.add_user(village, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN, name="王芳")
    rows = {r.login: r for r in admin.user_rows(village)}
    assert rows["agent2"].name == "王芳" and rows["agent2"].manageable and not rows["agent2"].is_self
    assert rows["admin1"].is_self and not rows["admin1"].manageable
    unlock(village.data.root, "agent2", NEW_PIN).close()


def test_add_user_checks_the_second_pin_and_the_role(village):
    with pytest.raises(ValidationError) as e:
        admin.add_user(village, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN + "x")
    assert e.value.field == "pin2"
    with pytest.raises(ValidationError) as e:
        admin.add_user(village, login="agent2", role="", pin=NEW_PIN, pin2=NEW_PIN)
    assert e.value.field == "role"
    with pytest.raises(ValidationError) as e:
        admin.add_user(village, login=" ", role="agent", pin=NEW_PIN, pin2=NEW_PIN)
    assert e.value.field == "login"
    with pytest.raises(ValidationError) as e:  # a village station holds no township role
        admin.add_user(village, login="clerk2", role="clerk", pin=NEW_PIN, pin2=NEW_PIN)
    assert e.value.field == "role" and "村级工作站只能设置这些角色：代办员、管理员" in e.value.message
    admin.add_user(village, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN)
    agent = unlock(village.data.root, "agent2", NEW_PIN)
    with pytest.raises(TransitionError):  # an agent may not create another agent
        admin.add_user(agent, login="agent3", role="agent", pin=NEW_PIN, pin2=NEW_PIN)
    agent.close()
    assert [r.login for r in admin.user_rows(village)] == ["admin1", "agent2"]


def test_disable_and_reset_pin(village):
    admin.add_user(village, login="agent2", role="agent", pin=NEW_PIN, pin2=NEW_PIN)
    admin.add_user(village, login="agent3", role="agent", pin=NEW_PIN, pin2=NEW_PIN)
    admin.reset_pin(village, "agent2", pin="Other-2026-pin", pin2="Other-2026-pin")
    unlock(village.data.root, "agent2", "Other-2026-pin").close()
    admin.disable_user(village, "agent3")
    rows = {r.login: r for r in admin.user_rows(village)}
    assert rows["agent3"].disabled and rows["agent3"].state_label == "已停用"
    assert [r.login for r in admin.user_rows(village)][-1] == "agent3"  # disabled accounts last


def test_an_agent_has_a_read_only_view(tmp_path, now):
    with make_station(tmp_path / "a") as s:
        assert admin.manageable_roles(s) == [] and not admin.can_manage_users(s)
        assert not admin.can_change_settings(s)
        with pytest.raises(TransitionError):
            admin.save_settings(s, county_url="", idle_lock_minutes=30)
        assert DataDir(s.data.root).load_config().idle_lock_minutes == 10


def test_settings_are_validated_saved_and_used_at_once(village):
    cfg = admin.save_settings(village, county_url=" http://10.0.0.5:8000/ ", idle_lock_minutes="15")
    assert cfg is village.config  # the app reads the open session's config
    assert (village.config.county_url, village.config.idle_lock_minutes) == ("http://10.0.0.5:8000", 15)
    disk = DataDir(village.data.root).load_config()
    assert (disk.county_url, disk.idle_lock_minutes) == ("http://10.0.0.5:8000", 15)
    for bad in ("0", "121", "ten", ""):
        with pytest.raises(ValidationError) as e:
            admin.save_settings(village, county_url="", idle_lock_minutes=bad)
        assert e.value.field == "idle_lock_minutes"
    with pytest.raises(ValidationError) as e:
        admin.save_settings(village, county_url="county.example.cn", idle_lock_minutes=10)
    assert e.value.field == "county_url" and "县中心地址" in e.value.message
    assert DataDir(village.data.root).load_config().idle_lock_minutes == 15
    admin.save_settings(village, county_url="", idle_lock_minutes=10)
    assert DataDir(village.data.root).load_config().county_url == ""


def test_reload_config_takes_what_another_connection_saved(village):
    other = DataDir(village.data.root).load_config()
    other.county_url = "https://county.example.cn"
    village.data.save_config(other)
    config = village.config
    assert admin.reload_config(village) is config
    assert config.county_url == "https://county.example.cn"


def test_id_view_audit_lists_who_viewed_which_case(tmp_path, now):
    with make_station(
        tmp_path / "t", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇便民服务中心"
    ) as s:
        first = cases.register(
            s,
            item_code=PENSION,
            name="王秀英",
            id_number=id_number(seq="001"),
            received=material_names(PENSION),
        )
        second = cases.register(
            s,
            item_code=PENSION,
            name="李建国",
            id_number=id_number(seq="003"),
            received=material_names(PENSION),
        )
        assert admin.id_views(s) == []
        now("2026-03-02T10:00:00+08:00")
        assert cases.reveal_id_number(s, first.case_id) == id_number(seq="001")
        now("2026-03-02T11:00:00+08:00")
        cases.reveal_id_number(s, second.case_id)
        views = admin.id_views(s)
    assert [(v.case_no, v.at[:16]) for v in views] == [
        (second.case_no, "2026-03-02T11:00"),
        (first.case_no, "2026-03-02T10:00"),
    ]
    v = views[0]
    assert (v.who, v.role, v.level, v.org, v.station, v.own_station) == (
        "clerk1",
        "窗口人员",
        "乡镇级",
        TOWN,
        "城关镇便民服务中心",
        True,
    )
    assert v.case_id == second.case_id
    # Personal data never appears in the audit rows.
    text = repr(views)
    assert "王秀英" not in text and id_number(seq="001") not in text


def test_audit_shows_viewings_made_at_other_stations(tmp_path, now):
    """A viewing recorded at another station (ingested from the county) names that station."""
    with make_station(tmp_path / "v2", org=VILLAGE, login="agent1") as v:
        case = cases.register(
            v,
            item_code=PENSION,
            name="王秀英",
            id_number=id_number(seq="001"),
            received=material_names(PENSION),
        )
        cases.reveal_id_number(v, case.case_id)
        events = list(v.store.events(v.config.station_id))
    with make_station(tmp_path / "t2", org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇") as t:
        receive(t, events)
        views = admin.id_views(t)
    assert len(views) == 1
    assert views[0].station.startswith("工作站 ") and not views[0].own_station
    assert views[0].role == "代办员" and views[0].level == "村级" and views[0].case_no == case.case_no


def test_home_sync_summary_reports_the_sync_status(village):
    from station.replication import identity as I
    from station.services import dashboard
    from sync.crypto import KeyPair

    summary = dashboard.sync_summary(village)
    assert summary.online is None and summary.last_sync is None
    assert summary.message == "未登记到县中心（按F9登记）"
    pending = summary.pending
    assert pending > 0

    # What an enrollment and a clean sync leave behind.
    county, own = KeyPair.generate(), KeyPair.generate()
    info = I.County(
        "330522000000",
        "测试县",
        county.public.sign,
        county.public.enc,
        county.public.enc,
        "county-station",
        "http://10.0.0.5:8000",
    )
    with village.store.writing():
        village.store.set_meta(I.KEYPAIR, own.to_bytes().hex())
        I.set_json(village, I.COUNTY, info.to_dict())
        village.store.set_meta(I.ONLINE, "1")
        village.store.set_meta(I.LAST_OK, "2026-03-02T08:45:00+08:00")
    summary = dashboard.sync_summary(village)
    assert (summary.online, summary.last_sync, summary.pending, summary.message) == (
        True,
        "2026-03-02T08:45:00+08:00",
        pending,
        "",
    )
    assert admin.station_info(village).enrolled

    with village.store.writing():
        village.store.set_meta(I.ONLINE, "0")
        village.store.set_meta(I.LAST_ERROR, "无法连接县中心")
    summary = dashboard.sync_summary(village)
    assert summary.online is False and summary.message == "上次同步有问题（按F9查看）"

    I.set_revoked(village, "电脑丢失", source="county", at="2026-03-02T09:00:00+08:00")
    assert dashboard.sync_summary(village).message == "本站已被县中心注销（按F9查看）"
    info = admin.station_info(village)
    assert info.revoked and info.enrollment_text == "已被县中心注销：电脑丢失"
