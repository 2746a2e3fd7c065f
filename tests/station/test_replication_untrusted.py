"""Sync against a county that answers badly: forged or misaddressed pages, forged receipts,
scope refusals that pass later, and a link too slow for big segments or pages.

The answers come from :class:`tests.station.sync_kit.ScriptedServer`, a real HTTP server whose
replies each test writes with a county key, next to the real county center where one is needed.
"""

from __future__ import annotations

import json

from schema import canonical
from schema import events as K
from station import clock
from station.replication import identity as I
from station.replication.context import OK, REFUSED
from station.replication.push import pending_own
from station.replication.runner import sync_now
from station.replication.status import sync_status
from sync import api, envelope
from sync.client import Client
from sync.crypto import KeyPair
from sync.messages import make_receipt, segment_header
from tests.helpers import COUNTY, VILLAGE
from tests.station.sync_kit import (
    Reply,
    ScriptedServer,
    enrolled_station,
    ok,
    register_case,
)

MiB = 1024 * 1024


def village(tmp_path, county, name="v", org=VILLAGE):
    return enrolled_station(tmp_path / name, county, org=org)


# -- forged or misaddressed pages -------------------------------------------------------------------------------


def _scripted_county(v, pages, envelope_key):
    """A real HTTP server answering pulls with the given page wires (sealed to ``v``, the envelope
    signed with ``envelope_key``)."""
    enc = I.keypair(v).public.enc
    c = I.county(v)
    todo = list(pages)

    def handler(method, path, body):
        if path.endswith("/pull"):
            page = todo.pop(0) if len(todo) > 1 else todo[0]
            blob = envelope.seal(
                canonical.encode(page), kind="page", sender=c.station, recipients=[enc], signer=envelope_key
            )
            return Reply(200, blob, "application/octet-stream")
        return Reply.json({"results": []})

    return ScriptedServer(handler)


def _page(key, v, *, frm=0, to=1, events=(), station=None, county=COUNTY, more=False):
    return api.page_doc(
        key,
        county=county,
        station=station or v.config.station_id,
        cursor_from=frm,
        cursor_to=to,
        more=more,
        now="2026-03-02T09:00:00+08:00",
        events=list(events),
    )


def _county_event(kind, station, seq=1000):
    from schema.events import seal

    return seal(
        id=f"ev-{kind}-{seq}",
        station=station,
        seq=seq,
        prev="",
        at="2026-03-02T09:00:00+08:00",
        hlc=1 << 20,
        actor="county-center",
        role="admin",
        org=COUNTY,
        kind=kind,
        subject="2026-03-09",
        body={"day": "2026-03-09", "workday": False},
    ).to_dict()


def test_forged_pages_are_refused_whole(tmp_path, county):
    v = village(tmp_path, county)
    ok(sync_now(v))
    cursor, events_before = I.cursor(v), v.store.event_count()
    real = county.county.unlocked
    c = I.county(v)
    liar = KeyPair.generate()
    good_event = _county_event(K.CALENDAR_SET, c.station)
    tampered = _page(real, v, frm=cursor, to=cursor + 1, events=[good_event])
    tampered["h"] = tampered["h"].replace('"workday":false', '"workday":true')
    bad_hash = dict(good_event, body={"day": "2026-03-09", "workday": True})
    cases_ = {
        "signed by another key": _page(liar, v, frm=cursor, to=cursor + 1, events=[good_event]),
        "tampered": tampered,
        "for another station": _page(
            real, v, frm=cursor, to=cursor + 1, station="someone-else", events=[good_event]
        ),
        "another county": _page(
            real, v, frm=cursor, to=cursor + 1, county="330523000000", events=[good_event]
        ),
        "not from our cursor (replay)": _page(real, v, frm=cursor + 5, to=cursor + 6, events=[good_event]),
        "calendar from a village chain": _page(
            real, v, frm=cursor, to=cursor + 1, events=[_county_event(K.CALENDAR_SET, "village-x")]
        ),
        "event hash does not match": _page(real, v, frm=cursor, to=cursor + 1, events=[bad_hash]),
        "event field of the wrong type": _page(
            real, v, frm=cursor, to=cursor + 1, events=[dict(good_event, seq="1")]
        ),
    }
    genuine = _page(real, v, frm=cursor, to=cursor + 1, events=[good_event])
    for name, page, sealer in [
        *((name, page, real) for name, page in cases_.items()),
        ("a genuine page in an envelope signed by another key", genuine, liar),
    ]:
        with _scripted_county(v, [page], sealer) as srv:
            r = sync_now(v, Client(srv.url))
        assert r.outcome != OK, name
        assert r.messages and "未保存" in r.messages[-1], (name, r.messages)
        assert I.cursor(v) == cursor and v.store.event_count() == events_before, name
    # the genuine page from the same scripted server is taken
    with _scripted_county(v, [genuine], real) as srv:
        r = ok(sync_now(v, Client(srv.url)))
    assert r.pulled == 1 and I.cursor(v) == cursor + 1
    v.close()


def test_forged_receipts_mark_nothing(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v, 1)
    liar = KeyPair.generate()
    head = v.store.head()

    def receipt_reply(key, seq, hsh):
        def handler(method, path, body):
            if path.endswith("/push"):
                return Reply.json(
                    {
                        "results": [
                            {
                                "station": v.config.station_id,
                                "status": "stored",
                                "receipt": make_receipt(key, COUNTY, v.config.station_id, seq, hsh),
                            }
                        ]
                    }
                )
            return Reply(503, b"")

        return handler

    for key, seq, hsh in [(liar, head[0], head[1]), (county.county.unlocked, head[0], "00" * 32)]:
        with ScriptedServer(receipt_reply(key, seq, hsh)) as srv:
            r = sync_now(v, Client(srv.url, retries=0))
        assert r.outcome != OK
        assert pending_own(v) == head[0] and I.acked(v) == 0
        with v.store.writing():
            I.delete(v, I.BLOCKED)
    v.close()


# -- scope refusals that will pass later, and a slow link ---------------------------------------------------------


def _mini_county(v, *, refuse_first: int = 0, slow_over: int | None = None, delay: float = 0.0):
    """A hand-written county: receipts signed with the real county key; optionally refuses the first
    pushes with a ``scope`` retry, or answers slowly when a segment has more than ``slow_over`` events."""
    state = {"pushes": 0, "sizes": []}  # the test puts the county key in state["key"]
    station_enc = I.keypair(v).public.enc  # read here: the handler runs on the server's threads
    station_sign = I.keypair(v).public.sign

    def handler(method, path, body):
        if path.endswith("/pull"):  # nothing to send down: an empty page from the cursor asked
            opened = envelope.open_sealed(
                body, state["key"].enc_key, station_sign, expect=("pull",), max_payload=MiB
            )
            req = json.loads(json.loads(opened.payload)["h"])
            page = api.page_doc(
                state["key"],
                county=COUNTY,
                station=req["station"],
                cursor_from=req["cursor"],
                cursor_to=req["cursor"],
                more=False,
                now=clock.iso(clock.now()),
                events=[],
            )
            blob = envelope.seal(
                canonical.encode(page),
                kind="page",
                sender="county",
                recipients=[station_enc],
                signer=state["key"],
            )
            return Reply(200, blob, "application/octet-stream")
        opened = envelope.open_sealed(
            body, state["key"].enc_key, station_sign, expect=("push",), max_payload=MiB
        )
        payload = json.loads(opened.payload)
        results = []
        for seg in payload["segments"]:
            h = segment_header(seg)
            state["sizes"].append(h.count)
            state["pushes"] += 1
            if state["pushes"] <= refuse_first:
                results.append(
                    {
                        "station": h.station,
                        "status": "refused",
                        "receipt": None,
                        "error": "scope",
                        "reason": "办件尚未到达县中心，本段稍后会自动重新上传",
                        "retry": True,
                    }
                )
                continue
            if slow_over is not None and h.count > slow_over:
                return Reply.json({"results": []}, delay=delay)
            results.append(
                {
                    "station": h.station,
                    "status": "stored",
                    "receipt": make_receipt(state["key"], COUNTY, h.station, h.last, h.head),
                }
            )
        status = 200 if all(r["status"] != "refused" for r in results) else 403
        return Reply.json({"results": results}, status)

    return state, handler


def test_scope_refusal_with_retry_is_tried_again_next_sync(tmp_path, county):
    v = village(tmp_path, county)
    register_case(v, 1)
    state, handler = _mini_county(v, refuse_first=1)
    state["key"] = county.county.unlocked
    with ScriptedServer(handler) as srv:
        r = sync_now(v, Client(srv.url))
        assert r.outcome == REFUSED and "下次同步会自动重传" in r.messages[0]
        assert not sync_status(v).blocked and pending_own(v) > 0
        r = sync_now(v, Client(srv.url))
    assert pending_own(v) == 0 and I.acked(v) == v.store.head()[0]
    v.close()


def test_timeouts_shrink_the_batch_until_the_link_copes(tmp_path, county):
    v = village(tmp_path, county)
    for n in range(40):
        register_case(v, n)  # 82 events
    state, handler = _mini_county(v, slow_over=25, delay=1.0)
    state["key"] = county.county.unlocked
    with ScriptedServer(handler) as srv:
        r = sync_now(v, Client(srv.url, read_timeout=0.3, retries=0))
    assert pending_own(v) == 0, r.messages
    assert max(state["sizes"][-3:]) <= 25 and state["sizes"][0] == 82
    assert int(v.store.meta(I.BATCH)) <= 50
    v.close()


def test_pull_pages_shrink_after_timeouts(tmp_path, county):
    """A slow link: big pages time out, the limit is halved (and remembered) until a page gets through."""
    v = village(tmp_path, county)
    ok(sync_now(v))
    key, enc, cursor = county.county.unlocked, I.keypair(v).public.enc, I.cursor(v)
    sign = I.keypair(v).public.sign
    asked = []

    def handler(method, path, body):
        opened = envelope.open_sealed(body, key.enc_key, sign, expect=("pull",), max_payload=MiB)
        req = json.loads(json.loads(opened.payload)["h"])
        asked.append(req["limit"])
        page = api.page_doc(
            key,
            county=COUNTY,
            station=req["station"],
            cursor_from=req["cursor"],
            cursor_to=req["cursor"],
            more=False,
            now=clock.iso(clock.now()),
            events=[],
        )
        blob = envelope.seal(
            canonical.encode(page), kind="page", sender="county", recipients=[enc], signer=key
        )
        return Reply(200, blob, "application/octet-stream", delay=1.0 if req["limit"] > 100 else 0)

    with ScriptedServer(handler) as srv:
        r = ok(sync_now(v, Client(srv.url, read_timeout=0.3, retries=0)))
    assert asked == [500, 250, 125, 62] and r.pulled == 0 and I.cursor(v) == cursor
    assert int(v.store.meta(I.PULL_LIMIT)) == 62  # the next sync starts small
    v.close()
