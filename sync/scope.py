"""Who may send what, and who receives what (DESIGN.md §5.2, §5.5).

Every stored event gets a *scope*: the org code whose stations may see it, or
:data:`GLOBAL` for what every station of the county receives (the catalog, the
calendar, the station registry, the staff directory). A case's scope is the org
of the station where it was registered; every later event on the case shares
it. A village station sees its own org's scope, a township station everything
under it, the county office everything.
"""

from __future__ import annotations

from schema import events as K
from schema.org import Level, OrgCode
from sync.errors import ProtocolError

GLOBAL = ""
# Only the county center writes these, on its own chain; a station sending one is refused.
COUNTY_KINDS = frozenset({K.CATALOG_PUBLISHED, K.CALENDAR_SET, K.STATION_ENROLLED, K.STATION_REVOKED})
STATION_KINDS = frozenset(
    {K.USER_ADDED, K.USER_DISABLED, K.USER_PIN_RESET, K.USER_DELEGATED, K.STATION_INITIALISED}
)


# A subject with a scope of its own: a case, and the 咨询/投诉 registers that travel like cases.
SCOPED_PREFIXES = ("case.", "consult.", "complaint.")
# The kinds that create such a subject (its scope is the org of the station that sends it).
CREATION_KINDS = frozenset({K.CASE_REGISTERED, K.CONSULT_RECORDED, K.COMPLAINT_FILED})


def is_case(kind: str) -> bool:
    """True for the kinds whose subject has a scope of its own (cases, 咨询, 投诉)."""
    return kind.startswith(SCOPED_PREFIXES)


def visible(station_org: str, scope: str) -> bool:
    """May a station of ``station_org`` receive an event of ``scope``?"""
    return scope == GLOBAL or OrgCode(station_org).covers(scope)


def township_of(scope: str) -> str:
    """The township a scope belongs to ('' for county-level and global scopes): an index key for pulls."""
    if scope == GLOBAL:
        return ""
    code = OrgCode(scope)
    return "" if code.level is Level.COUNTY else code.ancestor(Level.TOWNSHIP)


def scope_of(kind: str, subject: str, *, station_org: str, case_scope: str | None) -> str:
    """The scope of an event a station with org ``station_org`` sends, or a refusal.

    ``case_scope`` is the scope the county already has for the case ``subject``
    (None if the case is unknown to it).
    """
    if kind in COUNTY_KINDS:
        raise ProtocolError("kind", f"“{kind}”只能由县中心发布，工作站不能上传")
    if not is_case(kind):
        if kind not in STATION_KINDS:
            raise ProtocolError("kind", f"未知的记录类型“{kind}”")
        return GLOBAL
    if case_scope is None:
        if kind in CREATION_KINDS:
            return station_org
        raise ProtocolError(
            "scope",
            f"办件 {subject} 尚未到达县中心（其登记记录还未上传），本段稍后会自动重新上传",
            retry=True,
        )
    if not OrgCode(station_org).covers(case_scope):
        raise ProtocolError("scope", f"办件 {subject} 不属于本工作站的管辖范围，不能上传对它的操作")
    return case_scope
