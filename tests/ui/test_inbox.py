"""The township inbox in the UI: what the villages forwarded, most urgent first; Enter opens it."""

from __future__ import annotations

from station.services import cases
from station.services import inbox as inbox_service
from station.ui.screens.case_page import CaseScreen
from station.ui.screens.inbox import InboxScreen
from station.ui.widgets.case_table import CaseTable
from tests.helpers import DIBAO, OLD_AGE_CARD, PENSION, id_number, make_station, material_names, receive
from tests.ui.cases_support import idle, on_screen, screen_text, town_station
from tests.ui.conftest import unlock


def forward_from_village(root, now) -> tuple[list, list[str]]:
    """Three cases forwarded up from a village, registered oldest-first but due in the other order."""
    ids = []
    with make_station(root) as v:
        for hour, code, name, seq in (
            (9, DIBAO, "李建国", "002"),
            (10, OLD_AGE_CARD, "张桂兰", "003"),
            (11, PENSION, "王秀英", "004"),
        ):
            now(f"2026-03-02T{hour:02d}:00:00+08:00")
            view = cases.register(
                v,
                item_code=code,
                name=name,
                id_number=id_number(seq=seq),
                phone="",
                received=material_names(code),
            )
            cases.act(v, view.case_id, "accept")
            cases.act(v, view.case_id, "forward", {"opinion": "材料齐全，请审核"})
            ids.append(view.case_id)
        cases.register(
            v,
            item_code=PENSION,
            name="周八",
            id_number=id_number(seq="005"),
            phone="",
            received=material_names(PENSION),
        )  # still at the village: not in the inbox
        return list(v.store.events()), ids


def rows(screen) -> list[str]:
    table = screen.query_one("#cases", CaseTable)
    return [table.coordinate_to_cell_key((r, 0))[0].value for r in range(table.row_count)]


async def test_township_inbox_lists_forwarded_cases_most_urgent_first(tmp_path, make_app, now):
    events, (dibao, card, pension) = forward_from_village(tmp_path / "village", now)
    town_dir = tmp_path / "town"
    with town_station(town_dir) as t:
        receive(t, events)
        expected = [r.case_id for r in inbox_service.inbox(t)]
    assert expected == [pension, card, dibao]  # due in 3, 5 and 30 working days

    app = make_app(town_dir)
    async with app.run_test(size=(120, 36)) as pilot:
        await unlock(pilot, "clerk1")
        await pilot.press("f4")
        screen = await on_screen(pilot, InboxScreen)
        await idle(pilot)
        assert rows(screen) == expected
        text = screen_text(app)
        assert "各村转报" in text and "共 3 件" in text and "周八" not in text
        await pilot.press("enter")
        page = await on_screen(pilot, CaseScreen)
        assert page.case_id == pension
        assert app.internal_errors == []
