"""The county center's HTTP API, as both sides see it.

All endpoints live under ``/v1``. Requests that carry villagers' data are sealed
envelopes (``application/octet-stream``, see :mod:`sync.envelope`) encrypted to
the county; pull pages come back sealed to the asking station. Every refusal is
a 4xx with a JSON body ``{"error": code, "reason": 中文, ...}``
(:class:`sync.errors.ProtocolError`).

=================  ==========================================================================
``GET  /v1/health``  ``{"status": "ok", "county": code, "version": 1}``
``GET  /v1/time``    ``{"county": code, "now": ISO 8601, "ms": epoch ms}``
``POST /v1/enroll``  JSON ``enroll`` request → JSON ``enrolled`` answer (:mod:`sync.enrollment`)
``POST /v1/push``    sealed ``push`` envelope → JSON ``{"results": [...]}``
``POST /v1/pull``    sealed ``pull`` envelope → sealed ``page`` envelope
=================  ==========================================================================

Recovery of a locked-out user (:mod:`sync.recovery`): ``POST /v1/recovery`` takes a JSON signed
request and answers ``{"id", "status": "pending", "check"}``; ``GET /v1/recovery/{id}`` answers
``{"status": "pending" | "approved" | "refused"}`` with the signed ``answer`` once the county admin
approved it (``county-center recover --approve``), or the ``reason`` of a refusal.

Push payload (canonical JSON inside the envelope)::

    {"t": "push", "v": 1, "from": <station id of the sender>, "segments": [<segment wire>, ...]}

A push may carry segments of other stations (a township relaying its villages'
segments); each segment is verified against its own station's key. The answer
has one result per segment, in order::

    {"station": id, "status": "stored" | "duplicate" | "refused",
     "receipt": <receipt wire> | null,          # for stored and duplicate
     "error": code, "reason": 中文, "send_from": n}   # for refused (send_from after a gap)

If every segment was stored or a duplicate the status is 200; otherwise it is the
4xx of the first refusal, with ``error``/``reason`` of that refusal at the top
level and the same ``results`` list (receipts for what *was* stored).

Pull request (signed by the station, sealed to the county)::

    {"t": "pull", "v": 1, "county": code, "station": id, "cursor": n, "limit": n, "nonce": hex}

Pull page (signed by the county, sealed to the station)::

    {"t": "page", "v": 1, "county": code, "station": id, "from": n, "to": n, "more": bool,
     "now": ISO 8601 county time, "events": [<full event dict with prev and hash>, ...]}

``to`` is the cursor to send next time. Events are those in the station's scope
(:mod:`sync.scope`) after ``from``, excluding the station's own.
"""

from __future__ import annotations

import os
from typing import Any

from sync.crypto import KeyPair
from sync.messages import VERSION, sign_doc

PREFIX = "/v1"
OCTET = "application/octet-stream"
MAX_REQUEST_BYTES = 8 * 1024 * 1024
DEFAULT_PULL_LIMIT = 500
MAX_PULL_LIMIT = 5000


def push_payload(sender: str, segments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"t": "push", "v": VERSION, "from": sender, "segments": segments}


def pull_request(key: KeyPair, *, county: str, station: str, cursor: int, limit: int = DEFAULT_PULL_LIMIT):
    return sign_doc(
        {
            "t": "pull",
            "v": VERSION,
            "county": county,
            "station": station,
            "cursor": cursor,
            "limit": limit,
            "nonce": os.urandom(8).hex(),
        },
        key,
    )


def page_doc(
    key: KeyPair,
    *,
    county: str,
    station: str,
    cursor_from: int,
    cursor_to: int,
    more: bool,
    now: str,
    events: list[dict[str, Any]],
):
    return sign_doc(
        {
            "t": "page",
            "v": VERSION,
            "county": county,
            "station": station,
            "from": cursor_from,
            "to": cursor_to,
            "more": more,
            "now": now,
            "events": events,
        },
        key,
    )
