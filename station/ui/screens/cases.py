"""办件查询: the case list with a filter bar and a search box, paged so it stays fast at 100,000 cases.

Every query runs on the session thread in an exclusive worker: a newer keystroke or filter
change supersedes the query still waiting (its result is never shown). Rows come a page at a
time (``queries.list_cases`` with limit/offset); reaching the last row, PageDown on it or the
更多 link loads the next page. The search box (name, ID number or its tail, 办件编号, phone,
pinyin initials) goes through ``queries.search_cases``.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Input, Select, Static

from schema.case import State
from station.ui.widgets.case_table import CaseTable

PAGE = 50
CONTROLLED = ("states", "item_code", "overdue", "since", "until")
BASE_STATES = "__base__"  # the state Select option standing for the states a home tile asked for


def _fetch_list(session, filters: dict[str, Any], limit: int, offset: int):
    from station.services import queries

    return queries.list_cases(session, **filters, limit=limit, offset=offset)


def _fetch_search(session, text: str, limit: int):
    from station.services import queries

    return queries.search_cases(session, text, limit=limit)


def _catalog_options(session) -> list[tuple[str, str]]:
    from station.services import catalog

    return [(item.name, item.impl_code) for item in catalog.current_catalog(session).items]


class CaseListScreen(Screen[None]):
    """A paged table of cases; subclasses say how to fetch a page."""

    CSS_PATH = "../styles/cases.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        Binding("ctrl+n", "more", "更多", key_display="Ctrl+N"),
    ]
    title_text = "办件"

    def __init__(self) -> None:
        super().__init__()
        self.page_offset = 0
        self.loads = 0  # finished loads (tests and the UI benchmark wait on it)
        self.shown_query: Any = None  # what the rows on screen answer
        self._more_available = False

    # -- layout ------------------------------------------------------------------------------------

    def compose_bar(self) -> ComposeResult:
        return iter(())

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="list-title", classes="screen-title", markup=False)
        yield from self.compose_bar()
        yield CaseTable(id="cases")
        yield Static("", id="cases-status")
        yield Footer()

    @property
    def table(self) -> CaseTable:
        return self.query_one("#cases", CaseTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.reload()

    def on_screen_resume(self) -> None:
        # Back from a case page: the case may have changed (or left this list).
        if self.loads:  # as many rows as were loaded, so the cursor stays where it was
            self.reload(keep_rows=True)

    # -- loading -------------------------------------------------------------------------------------

    def query_key(self) -> Any:
        """What the current query is (rows of an older query are never shown for a newer one)."""
        raise NotImplementedError

    def fetch(self, limit: int, offset: int) -> tuple[Any, ...]:
        """(function, *args) to run on the session thread for one page."""
        raise NotImplementedError

    def reload(self, keep_rows: bool = False) -> None:
        """Run the current query again from the first row (F5, a filter or search change).

        ``keep_rows``: load as many rows as are shown now (coming back from a case page).
        """
        key = self.query_key()
        if key is None:
            return
        count = max(PAGE, self.table.row_count) if keep_rows and key == self.shown_query else PAGE
        self._set_status("查询中…")
        self.run_worker(
            partial(self._load, key, append=False, count=count),
            exclusive=True,
            group="cases-query",
            exit_on_error=False,
        )

    def action_more(self) -> None:
        if not self._more_available:
            return
        self._more_available = False
        self._set_status("正在加载更多…")
        self.run_worker(
            partial(self._load, self.shown_query, append=True),
            exclusive=True,
            group="cases-query",
            exit_on_error=False,
        )

    async def _load(self, key: Any, *, append: bool, count: int = PAGE) -> None:
        offset = self.page_offset + PAGE if append else 0
        fn, *args = self.fetch(count + 1, offset)  # one more than shown tells whether there is more
        try:
            rows = await self.app.db(fn, self.app.session, *args)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - shown by the app; the list stays as it was
            self.app.show_error(exc)  # type: ignore[attr-defined]
            self._set_status("查询失败")
            return
        if key != self.query_key():  # superseded while it ran
            return
        rows = self.page_rows(rows, offset)
        more = len(rows) > count
        rows = rows[:count]
        self.table.show(rows, append=append, has_more=more)
        self.page_offset = offset + count - PAGE  # the next page starts after the last row shown
        self.shown_query = key
        changed = more != self._more_available
        self._more_available = more
        self.loads += 1
        self._set_status(self.status_text(more))
        if changed:  # the footer rebuilds its keys on every refresh: only when 更多 comes or goes
            self.refresh_bindings()

    def page_rows(self, rows: list, offset: int) -> list:
        """The rows of the page starting at ``offset`` from what ``fetch`` returned."""
        return rows

    def status_text(self, more: bool) -> str:
        n = self.table.row_count
        if n == 0:
            return self.empty_text()
        if more:
            return f"已显示 {n} 件，还有更多：移到最后一行、按 PageDown 或 Ctrl+N 加载"
        return f"共 {n} 件"

    def empty_text(self) -> str:
        return "没有符合条件的办件"

    def _set_status(self, text: str) -> None:
        self.query_one("#cases-status", Static).update(text)

    # -- events -------------------------------------------------------------------------------------

    @on(CaseTable.Open)
    def _open(self, event: CaseTable.Open) -> None:
        self.app.open_case(event.case_id)  # type: ignore[attr-defined]

    @on(CaseTable.More)
    def _more(self) -> None:
        self.action_more()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "more":
            return self._more_available
        return True

    def action_back(self) -> None:
        self.app.pop_screen()


class CasesScreen(CaseListScreen):
    """The case list; ``filters`` are ``queries.list_cases`` keywords plus ``title`` and ``search``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f3", "focus_search", "搜索"),
        Binding("ctrl+f", "focus_filters", "筛选", key_display="Ctrl+F"),
    ]

    def __init__(self, **filters: Any) -> None:
        super().__init__()
        self.title_text = filters.pop("title", None) or "办件查询"
        self.initial_search = filters.pop("search", "") or ""
        self.base = dict(filters)
        self.hidden = {k: v for k, v in filters.items() if k not in CONTROLLED}
        if filters.get("overdue") and self.hidden.get("due_before") in (None, _today().isoformat()):
            self.hidden.pop("due_before", None)  # implied by 已超期
        self.filter_problem = ""
        # The item filter, kept here: the Select gets its options only after the first query.
        self.item_code: str | None = filters.get("item_code")

    # -- the filter bar ------------------------------------------------------------------------------

    def compose_bar(self) -> ComposeResult:
        base_states = self.base.get("states") or []
        state_options: list[tuple[str, str]] = [(s.label, s.value) for s in State]
        state_value: Any = Select.NULL
        if len(base_states) == 1:
            state_value = base_states[0]
        elif base_states:
            state_options.insert(0, ("、".join(State(s).label for s in base_states), BASE_STATES))
            state_value = BASE_STATES
        since = self.base.get("since") or ""
        until = self.base.get("until") or ""
        if until:  # list_cases' until is exclusive; people read a date range inclusively
            until = (date.fromisoformat(until[:10]) - timedelta(days=1)).isoformat()
        with Horizontal(id="search-bar", classes="filter-row"):
            yield Static("搜索", classes="filter-label")
            yield Input(
                self.initial_search,
                id="search",
                compact=True,
                placeholder="姓名、身份证号或后4位、办件编号、手机号、拼音首字母",
            )
            yield Select(state_options, id="filter-state", prompt="全部状态", value=state_value, compact=True)
        with Horizontal(id="filter-bar", classes="filter-row"):
            yield Select([], id="filter-item", prompt="全部事项", compact=True)
            yield Checkbox("已超期", bool(self.base.get("overdue")), id="filter-overdue", compact=True)
            yield Static("收件自", classes="filter-label")
            yield Input(since[:10], id="filter-since", placeholder="YYYY-MM-DD", compact=True, max_length=10)
            yield Static("至", classes="filter-label")
            yield Input(until[:10], id="filter-until", placeholder="YYYY-MM-DD", compact=True, max_length=10)

    def on_mount(self) -> None:
        super().on_mount()
        if self.initial_search:
            self.query_one("#search", Input).focus()
        self.run_worker(self._load_items(), group="cases-items", exit_on_error=False)

    async def _load_items(self) -> None:
        try:
            options = await self.app.db(_catalog_options, self.app.session)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            self.app.show_error(exc)  # type: ignore[attr-defined]
            return
        select = self.query_one("#filter-item", Select)
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self.base.get("item_code"):
                select.value = self.base["item_code"]

    # -- what to query --------------------------------------------------------------------------------

    def search_text(self) -> str:
        return self.query_one("#search", Input).value.strip()

    def filters(self) -> dict[str, Any] | None:
        """list_cases keywords from the bar (None if a date does not parse)."""
        f: dict[str, Any] = dict(self.hidden)
        state = self.query_one("#filter-state", Select).value
        if state == BASE_STATES:
            f["states"] = list(self.base.get("states") or [])
        elif state is not Select.NULL:
            f["states"] = [state]
        if self.item_code:
            f["item_code"] = self.item_code
        if self.query_one("#filter-overdue", Checkbox).value:
            f["overdue"] = True
        problems = []
        for wid, key, label in (
            ("#filter-since", "since", "起始日期"),
            ("#filter-until", "until", "截止日期"),
        ):
            text = self.query_one(wid, Input).value.strip()
            if not text:
                continue
            try:
                day = date.fromisoformat(text)
            except ValueError:
                problems.append(f"{label}“{text}”应为 YYYY-MM-DD，如 2026-03-02")
                continue
            f[key] = (day + timedelta(days=1)).isoformat() if key == "until" else day.isoformat()
        self.filter_problem = "；".join(problems)
        return None if problems else f

    def query_key(self) -> Any:
        text = self.search_text()
        if text:
            return ("search", text)
        f = self.filters()
        if f is None:
            self._set_status(self.filter_problem)
            return None
        return ("list", tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in f.items())))

    def fetch(self, limit: int, offset: int) -> tuple[Any, ...]:
        text = self.search_text()
        if text:
            # search_cases has no offset: ask for everything up to the end of the next page.
            return (_fetch_search, text, offset + limit)
        return (_fetch_list, self.filters() or {}, limit, offset)

    def page_rows(self, rows: list, offset: int) -> list:
        # Search results come back from the first row; keep only this page's.
        return rows[offset:] if self.search_text() else rows

    def status_text(self, more: bool) -> str:
        text = super().status_text(more)
        if self.search_text() and self.table.row_count:
            text += "（搜索不受筛选条件限制）"
        return text

    def empty_text(self) -> str:
        if self.search_text():
            return f"没有找到与“{self.search_text()}”匹配的办件"
        return "没有符合条件的办件"

    # -- events ------------------------------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        self.reload()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#filter-item")
    def _item_changed(self, event: Select.Changed) -> None:
        self.item_code = None if event.value is Select.NULL else str(event.value)
        self.reload()

    @on(Select.Changed, "#filter-state")
    @on(Checkbox.Changed)
    def _filter_changed(self) -> None:
        self.reload()

    @on(Input.Submitted, "#filter-since, #filter-until")
    @on(Input.Blurred, "#filter-since, #filter-until")
    def _date_changed(self) -> None:
        if self.query_key() != self.shown_query:
            self.reload()

    def on_key(self, event) -> None:
        # Typing on the table searches: the letters go to the search box.
        if self.focused is self.table and event.is_printable and event.character:
            search = self.query_one("#search", Input)
            search.focus()
            search.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_filters(self) -> None:
        self.query_one("#filter-state", Select).focus()


def _today() -> date:
    from station import clock

    return clock.today()
