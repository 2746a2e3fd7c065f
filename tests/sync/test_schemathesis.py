"""No request can make the county center answer 500: schemathesis against its OpenAPI description,
plus hypothesis-generated sealed envelopes that get past the envelope layer (what schemathesis's
random bytes rarely do). Bounded example counts by default; ×20 with STATION_LONG_TESTS=1."""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from schema import canonical
from sync import api, envelope
from tests.helpers import COUNTY, VILLAGE, scaled


@pytest.fixture
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=scaled(30), deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server):
    response = case.call(base_url=server.url)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("reason"), str), body


# -- sealed envelopes with hostile insides ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
segment_like = st.fixed_dictionaries(
    {
        "h": st.one_of(
            st.text(max_size=30),
            json_values.map(lambda v: json.dumps(v)),
            st.builds(
                lambda f, l_, c: json.dumps(
                    {
                        "t": "seg",
                        "v": 1,
                        "county": c,
                        "station": "s1",
                        "first": f,
                        "last": l_,
                        "prev": "",
                        "head": "x",
                    }
                ),
                st.integers(-3, 5),
                st.integers(-3, 5000),
                st.sampled_from([COUNTY, "x", ""]),
            ),
        ),
        "s": st.text(max_size=10),
    },
    optional={"e": st.lists(json_values, max_size=3)},
)


@settings(max_examples=scaled(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["push", "pull"]),
    payload=st.one_of(
        json_values,
        st.builds(
            lambda segs, sender: {"t": "push", "v": 1, "from": sender, "segments": segs},
            st.lists(segment_like, max_size=3),
            st.text(max_size=10),
        ),
        st.builds(
            lambda doc: {"h": json.dumps(doc), "s": "AAAA"},
            st.fixed_dictionaries(
                {
                    "t": st.just("pull"),
                    "v": st.just(1),
                    "county": st.just(COUNTY),
                    "station": st.text(max_size=70),
                    "cursor": json_values,
                    "limit": json_values,
                }
            ),
        ),
    ),
)
def test_sealed_garbage_is_refused_not_crashed(server, kind, payload):
    try:
        data = canonical.encode(payload)
    except (TypeError, ValueError):
        data = json.dumps(payload).encode()
    blob = envelope.seal(data, kind=kind, sender="st-x", recipients=[server.county.public.enc])
    r = requests.post(f"{server.url}/v1/{kind}", data=blob, headers={"Content-Type": api.OCTET}, timeout=30)
    assert r.status_code < 500, r.text
    if r.status_code != 200:  # 200 only for a push of no segments
        body = r.json()
        assert 400 <= r.status_code and body["error"] and body["reason"], body


@settings(max_examples=scaled(30), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_valid_pushes_never_500(server, stations, data):
    v = stations(VILLAGE, "village")
    v.register()
    blob = bytearray(v.push_blob(server.county, [v.segment(county=COUNTY)]))
    at = lambda: data.draw(st.integers(0, 10**6)) * (len(blob) - 1) // 10**6  # noqa: E731 - length varies per run
    for _ in range(data.draw(st.integers(1, 4))):
        blob[at()] = data.draw(st.integers(0, 255))
    cut = at()
    r = requests.post(
        f"{server.url}/v1/push",
        data=bytes(blob[:cut] if data.draw(st.booleans()) else blob),
        headers={"Content-Type": api.OCTET},
        timeout=30,
    )
    assert r.status_code < 500, r.text
