# ruff: noqa: F811 - the cc fixture is imported from test_county_cli
"""``county-center``: the 6-digit county code, global options anywhere, times as people read them."""

from __future__ import annotations

import json
import re

import pytest

from sync.server.db import connect
from sync.server.keystore import unlock
from tests.helpers import VILLAGE
from tests.sync.conftest import PASSPHRASE
from tests.sync.county_kit import enroll_direct, make_station
from tests.sync.test_county_cli import cc  # noqa: F401 - fixture


@pytest.mark.parametrize("backend", ["sqlite"])
def test_init_with_the_six_digit_county_code(cc):
    code, out, err = cc("init", "--code", "330522", "--name", "测试县", "--json")
    assert code == 0, err
    assert json.loads(out)["county"] == "330522000000"
    code, out, err = cc("enroll", "--org", "330522101", "--role", "township", "--json")
    assert code == 0, err
    assert json.loads(out)["org"] == "330522101000"
    code, _, err = cc("enroll", "--org", "330522", "--role", "village")
    assert code == 2 and "村级单位应写12位" in err


@pytest.mark.parametrize("backend", ["sqlite"])
def test_global_options_after_the_sub_command_and_human_times(cc):
    assert cc("init", "--code", "330522", "--name", "测试县")[0] == 0
    cdb = connect(cc.url)
    enroll_direct(cdb, unlock(cdb, PASSPHRASE), make_station(VILLAGE, "village"))
    cdb.close()
    code, before, _ = cc("--json", "stations")
    code2, after, _ = cc("stations", "--json")
    assert code == code2 == 0 and before == after
    enrolled = json.loads(after)[0]["enrolled"]
    assert "T" in enrolled  # --json keeps ISO 8601
    code, out, _ = cc("stations")
    assert code == 0 and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", out) and not re.search(r"\dT\d", out), out
