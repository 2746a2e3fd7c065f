"""Concurrent requests against a real server, on SQLite and PostgreSQL.

- The same segment pushed by several clients at once is stored once: one ``stored``, the
  rest ``duplicate`` with the same receipt (the station row is locked per transaction).
- A county-level station pulling while others push never skips an event: positions become
  visible in order (the log lock), so a cursor never jumps over a position that commits later.
"""

from __future__ import annotations

import threading

from schema import events as K
from tests.helpers import COUNTY, TOWN, VILLAGE, VILLAGE2, VILLAGE_T2
from tests.sync.county_kit import Client


def test_same_segment_pushed_at_once_is_stored_once(server, stations):
    v = stations(VILLAGE, "village")
    for _ in range(300):
        v.register()
    seg = v.segment(county=COUNTY)
    answers: list = []
    barrier = threading.Barrier(6)

    def push():
        client = Client(server.url, server.county)
        barrier.wait()
        answers.append(client.push(v, [seg]))

    threads = [threading.Thread(target=push) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(body["results"][0]["status"] for _, body in answers)
    assert [code for code, _ in answers] == [200] * 6
    assert statuses == ["duplicate"] * 5 + ["stored"]
    assert len({str(body["results"][0]["receipt"]) for _, body in answers}) == 1
    E = server.cdb.m.Event
    assert E.select().where(E.station == v.id).count() == len(v.events)


def test_pulling_during_pushes_never_skips_an_event(server, stations):
    pushers = [stations(org, "village") for org in (VILLAGE, VILLAGE2, VILLAGE_T2)]
    pushers.append(stations(TOWN, "township"))
    office = stations(COUNTY, "county")
    for st in pushers[:3]:
        for _ in range(120):
            st.register()
    done = threading.Event()

    def push_all(st):
        client = Client(server.url, server.county)
        for first in range(1, len(st.events) + 1, 7):  # many small transactions
            code, body = client.push(st, [st.segment(first, min(first + 6, len(st.events)), county=COUNTY)])
            assert code == 200, body

    def township_acts():
        client = Client(server.url, server.county)
        t = pushers[3]
        for ev in [e for e in pushers[0].events if e.kind == K.CASE_REGISTERED][:60]:
            t.record(K.CASE_ACCEPTED, ev.subject, {})
        for first in range(1, len(t.events) + 1, 5):
            while True:  # the village's registration may not have arrived yet
                code, body = client.push(t, [t.segment(first, min(first + 4, len(t.events)), county=COUNTY)])
                if code == 200:
                    break
                assert body["error"] == "scope" and body["results"][0].get("retry"), body

    threads = [threading.Thread(target=push_all, args=(st,)) for st in pushers[:3]]
    threads.append(threading.Thread(target=township_acts))
    for t in threads:
        t.start()
    seen: list[str] = []
    cursor = 0

    def watcher():
        nonlocal cursor
        client = Client(server.url, server.county)
        while True:
            finished = done.is_set()
            page = client.pull(office, cursor, 50)
            seen.extend(e["id"] for e in page["events"])
            cursor = page["to"]
            if finished and not page["more"]:
                return

    w = threading.Thread(target=watcher)
    w.start()
    for t in threads:
        t.join()
    done.set()
    w.join()
    E = server.cdb.m.Event
    expected = [r.id for r in E.select(E.id).where(E.station != office.id).order_by(E.pos)]
    assert len(seen) == len(set(seen))  # nothing twice
    assert seen == expected  # nothing skipped, in county order
    assert len(expected) > 3 * 120 + 60
