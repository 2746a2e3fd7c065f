"""Names of the files a USB stick carries: who they are from or for, and when — nothing personal.

``330522101001-01_20261128-1336_上报_a3f9.cvs``: a station's upload (org, station number, time);
``330522101001_20261128-1336_回执_b71c.cvs``: the county's answer for that village (time of
writing). The org code and the time are what a person at the window needs to tell the files
apart; the random tail keeps two files of the same minute apart. The content stays sealed
(``sync.envelope``) whatever the name says, and importing never trusts the name.
"""

from __future__ import annotations

import secrets
from datetime import datetime

SUFFIX = ".cvs"
UPLOAD = "上报"
ANSWER = "回执"


def bundle_name(org: str, at: datetime, kind: str, *, station_no: int | None = None) -> str:
    who = f"{org}-{station_no:02d}" if station_no is not None else org
    return f"{who}_{at.strftime('%Y%m%d-%H%M')}_{kind}_{secrets.token_hex(2)}{SUFFIX}"
