"""Issue #8, findings 4, 7 and 10, at a township's USB import: the real ``station bundle import``
command, in its own process, on a folder where hostile files (made by an attacker with real keys,
sealed to the township's real public key, which every station learns from the registry) lie beside
a village's genuine file.

On main an 8 KB file took the township to 1.2 GB and printed 2.8 million problem lines, and a 12 KB
file made the import exit 70 and skip the valid file beside it. Now each file costs one line naming
it, the genuine file is imported, the exit code is 2 as docs/sync.md states, and the process's peak
memory (``VmHWM``, a functional bound, not a timing) stays within 64 MB of the same command's
on an empty folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from schema import canonical
from schema.org import Role
from station.replication import identity as I
from station.replication import relay
from station.replication.bundles import export_bundle
from station.replication.runner import sync_now
from sync.crypto import KeyPair
from tests.attacker import bomb, deep, raw_envelope, run_module, seal
from tests.helpers import PIN, TOWN, TOWN2, VILLAGE, VILLAGE_T2
from tests.station.sync_kit import enrolled_station, ok, register_case, reopen

ROOT = Path(__file__).resolve().parents[2]
MEMORY_MARGIN_KB = 64 * 1024


def bundle_import(data: Path, usb: Path, login: str):
    env = dict(os.environ, STATION_PIN=PIN, STATION_KDF_COST="low", PYTHONPATH=str(ROOT))
    env.pop("STATION_NOW", None)
    args = ("--data-dir", str(data), "--user", login, "bundle", "import", str(usb))
    return run_module("station.cli.main", *args, env=env, cwd=data.parent)


def test_hostile_files_beside_a_genuine_one_cost_one_line_each(tmp_path, county):
    t = enrolled_station(tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇")
    v = enrolled_station(tmp_path / "v", county, org=VILLAGE, name="东村")
    far = enrolled_station(tmp_path / "far", county, org=VILLAGE_T2, name="远村")
    other_town = enrolled_station(
        tmp_path / "t2", county, org=TOWN2, role=Role.CLERK, login="clerk1", name="河口镇"
    )
    for s in (t, other_town, v, far, t):  # every station learns the others' keys from the registry
        ok(sync_now(s))
    register_case(v, 1)
    register_case(far, 2)
    usb = tmp_path / "usb"
    usb.mkdir()
    [genuine] = export_bundle(v, usb).files
    [foreign] = export_bundle(far, usb).files  # sealed to the county and 河口镇: not for us
    to = [county.county.public.enc, I.keypair(t).public.enc]
    attacker, v_id = KeyPair.generate(), v.config.station_id
    hostile = {
        # the 8 KB file: millions of junk segments, from a village the township does not know
        "a-bomb-unknown.cvs": seal(
            bomb(8, wrapper="bundle", sender="ghost-1"), kind="bundle", sender="ghost-1", to=to, key=attacker
        ),
        # the same claiming to be our village, signed by the attacker
        "b-bomb-forged.cvs": seal(
            bomb(8, wrapper="bundle", sender=v_id), kind="bundle", sender=v_id, to=to, key=attacker
        ),
        # junk segments within the size bounds of an unknown sender: refused whole
        "c-junk-segments.cvs": seal(
            canonical.encode({"t": "bundle", "v": 1, "from": "ghost-2", "segments": [{}] * 10}),
            kind="bundle",
            sender="ghost-2",
            to=to,
            key=attacker,
        ),
        # the 12 KB file: a header nested 6,000 deep
        "d-deep-header.cvs": raw_envelope(deep(6000).encode()),
        # a payload nested 6,000 deep, signed with our village's stolen key
        "e-deep-payload.cvs": seal(deep(6000).encode(), kind="bundle", sender=v_id, to=to, key=I.keypair(v)),
    }
    for name, blob in hostile.items():
        assert len(blob) < 16 * 1024, name
        (usb / name).write_bytes(blob)
    for s in (t, v, far, other_town):
        s.close()
    (tmp_path / "empty").mkdir()
    baseline = bundle_import(tmp_path / "t", tmp_path / "empty", "clerk1")

    run = bundle_import(tmp_path / "t", usb, "clerk1")

    assert run.rc == 2 and "Traceback" not in run.out + run.err, (run.rc, run.err[-2000:])
    lines = run.out.splitlines()
    for name in hostile:
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert (
        sum(genuine.name in line for line in lines) == 1 and sum(foreign.name in line for line in lines) == 1
    )
    assert len(lines) <= 2 + len(hostile) + 2, lines  # the summary, one line per file, no flood
    assert any(genuine.name in line and "收到下级站数据 1 段" in line for line in lines), lines
    assert any(foreign.name in line and "不是发给本站" in line for line in lines), lines
    assert run.peak_kb - baseline.peak_kb < MEMORY_MARGIN_KB, (run.peak_kb // 1024, baseline.peak_kb // 1024)
    t = reopen(tmp_path / "t", "clerk1")
    assert [r[1] for r in relay.pending_rows(t)] == [v_id]  # only the genuine village segment waits
    t.close()


def test_only_files_for_us_decide_the_exit_code(tmp_path, county):
    """docs/sync.md: files meant for other stations are listed as skipped (exit 0); a file sealed to us
    from a station outside our area is a problem (exit 2)."""
    t = enrolled_station(tmp_path / "t", county, org=TOWN, role=Role.CLERK, login="clerk1", name="城关镇")
    far = enrolled_station(tmp_path / "far", county, org=VILLAGE_T2, name="远村")
    other_town = enrolled_station(
        tmp_path / "t2", county, org=TOWN2, role=Role.CLERK, login="clerk1", name="河口镇"
    )
    for s in (t, other_town, far, t):
        ok(sync_now(s))
    register_case(far, 1)
    usb = tmp_path / "usb"
    usb.mkdir()
    export_bundle(far, usb)  # a bundle for another township
    run = bundle_import(tmp_path / "t", usb, "clerk1")
    assert run.rc == 0 and "不是发给本站" in run.out, (run.out, run.err)
    # the same village's records sealed to us (by someone holding its key): not ours to relay
    to = [county.county.public.enc, I.keypair(t).public.enc]
    payload = canonical.encode({"t": "bundle", "v": 1, "from": far.config.station_id, "segments": []})
    (usb / "x.cvs").write_bytes(
        seal(payload, kind="bundle", sender=far.config.station_id, to=to, key=I.keypair(far))
    )
    for s in (t, far, other_town):
        s.close()
    run = bundle_import(tmp_path / "t", usb, "clerk1")
    assert run.rc == 2 and "不属于本站管辖" in run.err, (run.out, run.err)
