"""kill -9 of a real ``county-center serve`` process while stations push; restart; push on.

Nothing acknowledged is ever lost (no push after a receipt is ever answered with a gap),
nothing is stored twice, every chain at the county is whole. A few trials per backend by
default, 50 with STATION_LONG_TESTS=1.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from schema.events import Event, verify_chain
from sync import api
from sync.messages import open_receipt
from tests.helpers import COUNTY, LONG_TESTS, TOWN, VILLAGE, VILLAGE2
from tests.sync.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 50 if LONG_TESTS else 3
EVENTS = 300


class ServerProcess:
    def __init__(self, db_url: str, log: Path) -> None:
        env = dict(os.environ, COUNTY_PASSPHRASE=PASSPHRASE, COUNTY_KDF_COST="low", PYTHONPATH=str(ROOT))
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.server.cli", "serve", "--port", "0", "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=log.parent,
        )
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r}; see {log}")
        self.url = m.group(0)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.log.close()


def push_until_done_or_dead(url, county, st, state, errors):
    """Push the station's chain in random-sized segments; stop when done or the server is gone."""
    http = requests.Session()
    rnd = random.Random()
    while state["acked"] < len(st.events):
        first = state["acked"] + 1
        last = min(len(st.events), first + rnd.randint(1, 40) - 1)
        if rnd.random() < 0.2 and state["acked"] > 5:  # sometimes re-send an overlap, like a retry would
            first = rnd.randint(max(1, state["acked"] - 100), state["acked"])
        blob = st.push_blob(county, [st.segment(first, last, county=COUNTY)])
        try:
            r = http.post(url + "/v1/push", data=blob, headers={"Content-Type": api.OCTET}, timeout=30)
        except requests.RequestException:
            return
        body = r.json()
        if r.status_code != 200:
            errors.append(
                (st.id, r.status_code, body)
            )  # a gap here would mean an acknowledged event was lost
            return
        receipt = open_receipt(body["results"][0]["receipt"], county.public.sign)
        assert receipt.station == st.id and receipt.head == st.events[receipt.seq - 1].hash
        state["acked"] = max(state["acked"], receipt.seq)


def check_county(cdb, sims):
    E, S = cdb.m.Event, cdb.m.Station
    for st in sims:
        rows = list(E.select().where(E.station == st.id).order_by(E.seq))
        assert [r.seq for r in rows] == list(range(1, len(st.events) + 1))
        events = [Event.from_dict(json.loads(r.data)) for r in rows]
        assert verify_chain(events) == st.events[-1].hash
        assert events == st.events
        head = S.get_by_id(st.id)
        assert (head.head_seq, head.head_hash) == (len(st.events), st.events[-1].hash)
    ids = [r[0] for r in E.select(E.id).tuples()]
    assert len(ids) == len(set(ids))


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_kill_9_during_pushes_loses_and_duplicates_nothing(county, stations, tmp_path):
    rnd = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    sims = [stations(VILLAGE, "village"), stations(VILLAGE2, "village"), stations(TOWN, "township")]
    county.cdb.close()  # the server process owns the database during the trials
    interrupted = 0
    states = {st.id: {"acked": 0} for st in sims}  # each trial goes on from the last one's end
    for _trial in range(TRIALS):
        for st in sims:
            for _ in range(EVENTS):
                st.register()
        errors: list = []
        killed = False
        while any(states[st.id]["acked"] < len(st.events) for st in sims):
            server = ServerProcess(county.url, tmp_path / "server.log")
            threads = [
                threading.Thread(
                    target=push_until_done_or_dead,
                    args=(server.url, county.county, st, states[st.id], errors),
                )
                for st in sims
            ]
            for t in threads:
                t.start()
            if not killed:
                # Kill while pushes are in flight: after the first receipt of this round, at a
                # random instant (a fixed sleep could land after a fast machine had finished).
                start = {st.id: states[st.id]["acked"] for st in sims}
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and all(states[k]["acked"] == v for k, v in start.items()):
                    time.sleep(0.002)
                time.sleep(rnd.uniform(0.0, 0.05))
                server.kill()
                killed = True
                interrupted += any(states[st.id]["acked"] < len(st.events) for st in sims)
            for t in threads:
                t.join(timeout=120)
            server.kill()
            assert not errors, errors
        check_county(county.cdb, sims)
        county.cdb.close()
    assert interrupted >= 1, "no kill landed during a push: the test proved nothing"
