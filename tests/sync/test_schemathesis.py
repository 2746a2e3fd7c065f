"""No request can make the county center answer 500: schemathesis against its OpenAPI description —
as generated, and with its bodies swapped for hostile ones (JSON nested thousands deep or dense with
containers, bodies at and over the size limits, sealed envelopes whose header or payload is nested or
bombed, signed by a real enrolled station so they get past the signature check) — plus
hypothesis-generated sealed envelopes that get past the envelope layer (what schemathesis's random
bytes rarely do). Bounded example counts by default; ×20 with STATION_LONG_TESTS=1."""

from __future__ import annotations

import json
import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from schema import canonical
from sync import api, envelope
from tests.helpers import COUNTY, VILLAGE, scaled

MiB = 1024 * 1024


@pytest.fixture
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


def _assert_refused_not_crashed(response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("reason"), str), body


@schema.parametrize()
@settings(max_examples=scaled(30), deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server):
    response = case.call(base_url=server.url)
    case.validate_response(response, checks=[not_a_server_error])
    _assert_refused_not_crashed(response)


# -- hostile bodies: nested deep, dense, large ------------------------------------------------------------


def nested(n: int, style: str) -> str:
    """JSON text nested ``n`` deep (``open``: never closed)."""
    if style == "list":
        return "[" * n + "]" * n
    if style == "object":
        return '{"a":' * n + "1" + "}" * n
    if style == "mixed":
        return '[{"a":' * (n // 2) + "1" + "}]" * (n // 2)
    return "[" * n


# the depths (5,000 and 6,000) always among the draws: hypothesis favours small numbers
depth = st.one_of(st.integers(1, 64), st.sampled_from([1000, 5000, 6000, 12_000]))
deep_text = st.builds(nested, depth, st.sampled_from(["list", "object", "mixed", "open"]))
dense_text = st.one_of(st.integers(1, 64), st.sampled_from([10_000, 200_000])).map(
    lambda n: "[" + "[]," * n + "[]]"
)
large_size = st.sampled_from([64 * 1024 - 100, 64 * 1024 + 1, 1 * MiB, 8 * MiB + 1])


def raw_envelope(header: bytes, rest: bytes = bytes(200)) -> bytes:
    return envelope.MAGIC + bytes([envelope.VERSION]) + len(header).to_bytes(4, "big") + header + rest


def hostile_sealed(station, county, kind: str):
    """Envelopes for ``/v1/push`` or ``/v1/pull``: deep or dense headers, and payloads signed by an
    enrolled station that are nested deep, dense, compressed bombs or over the limit."""

    def sealed(payload: bytes) -> bytes:
        return envelope.seal(
            payload, kind=kind, sender=station.id, recipients=[county.public.enc], signer=station.key
        )

    return st.one_of(
        deep_text.map(lambda t: raw_envelope(t.encode())),
        deep_text.map(lambda t: raw_envelope(b'{"to":' + t.encode() + b"}")),
        deep_text.map(lambda t: sealed(t.encode())),
        deep_text.map(lambda t: sealed(canonical.encode({"h": t, "s": "AAAA"}))),
        dense_text.map(lambda t: sealed(t.encode())),
        large_size.map(lambda n: sealed(b"[" * n)),  # compresses to a few KB: a bomb
        large_size.map(lambda n: sealed(os.urandom(n))),  # does not compress: over the limit on the wire
    )


def hostile_enroll():
    return st.one_of(
        deep_text.map(lambda t: {"h": t, "s": "AAAA"}),
        dense_text.map(lambda t: {"h": t, "s": "AAAA"}),
        deep_text.map(lambda t: {"h": json.dumps({"t": "enroll", "v": 1, "station": "s1", "x": t}), "s": ""}),
        large_size.map(lambda n: {"h": "x" * n, "s": ""}),
    )


@pytest.fixture
def hostile_schema(server, stations):
    """The same OpenAPI description, with every request body replaced by a hostile one."""
    s = schemathesis.openapi.from_url(server.url + "/openapi.json")
    v = stations(VILLAGE, "village")

    @s.hook
    def flatmap_body(context, body):
        path = context.operation.path
        if path == "/v1/enroll":
            return hostile_enroll()
        return hostile_sealed(v, server.county, "push" if path == "/v1/push" else "pull")

    return s


hostile = schemathesis.pytest.from_fixture("hostile_schema")


@hostile.include(method="POST").parametrize()
@settings(max_examples=scaled(25), deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_bodies_never_500(case, server):
    """Issue #8, finding 7: schemathesis missed the deep-JSON 500 because it never nests deep."""
    response = case.call(base_url=server.url)
    _assert_refused_not_crashed(response)
    assert response.status_code != 200 or case.path != "/v1/enroll", response.text[:200]


@settings(max_examples=scaled(25), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(deep_text.map(str.encode), dense_text.map(str.encode), large_size.map(lambda n: b"[" * n))
)
def test_hostile_raw_json_bodies_never_500(server, body):
    """Top-level JSON nested deep or dense, or too large, as the raw body of the JSON endpoint."""
    r = requests.post(
        f"{server.url}/v1/enroll", data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    _assert_refused_not_crashed(r)
    assert r.status_code in (400, 413), r.text[:200]


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


@pytest.fixture
def sender(stations):
    return stations(VILLAGE, "village")


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
def test_sealed_garbage_is_refused_not_crashed(server, sender, kind, payload):
    """Signed by an enrolled station, so the garbage reaches the parsers behind the signature check."""
    try:
        data = canonical.encode(payload)
    except (TypeError, ValueError):
        data = json.dumps(payload).encode()
    blob = envelope.seal(
        data, kind=kind, sender=sender.id, recipients=[server.county.public.enc], signer=sender.key
    )
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
