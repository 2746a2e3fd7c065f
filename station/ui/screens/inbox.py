"""待办: the cases sent to this org for review or decision, most urgent first.

At a township, what its villages forwarded (and what the county returned); at the county, what
the townships forwarded; at a village, what was returned to it. The order (due date, then the
oldest registration) and the paging come from ``station.services.inbox``.
"""

from __future__ import annotations

from typing import Any

from station.ui.screens.cases import CaseListScreen

TITLES = {
    "village": "待办：上级退回本村的办件",
    "township": "待办：各村转报、待本乡镇审核的办件（最紧急的在前）",
    "county": "待办：各乡镇转报、待县级审批的办件（最紧急的在前）",
}


def _fetch_inbox(session, limit: int, offset: int):
    from station.services import inbox

    return inbox.inbox(session, limit=limit, offset=offset)


class InboxScreen(CaseListScreen):
    def compose(self):
        session = self.app.session  # type: ignore[attr-defined]
        level = session.user.role.level.value if session is not None else ""
        self.title_text = TITLES.get(level, "待办")
        yield from super().compose()

    def query_key(self) -> Any:
        return "inbox"

    def fetch(self, limit: int, offset: int) -> tuple[Any, ...]:
        return (_fetch_inbox, limit, offset)

    def empty_text(self) -> str:
        return "没有待办的办件"
