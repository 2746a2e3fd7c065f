"""收件: find the 事项, read its 办事指南, enter the applicant, tick the materials, then decide.

1. The 事项 is found by name, code or pinyin initials (``catalog.search``, live).
2. Its 办事指南 shows the materials, limits, fee, who decides and whether a village may
   accept it; an advice-only item (村级仅可咨询) cannot be received at a village.
3. The ID number is checked as it is typed (birth date and gender shown when it is complete,
   the reason when it is wrong) and shown masked once the field is left.
4. Each material is ticked 已收 / 缺 / 容缺; ``intake.preview`` says what each decision would
   mean (the promised date for 受理, the missing list and deadline for 一次性告知).
5. 受理 (F6), 一次性告知 (F7), 不予受理 (F8) or 即办 (F12) registers the case and takes the
   decision in one transaction (``intake.submit``). Errors appear next to their field; the
   form keeps everything typed.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from schema.errors import UserError, ValidationError
from schema.validation import mask_id_number, parse_id_number
from station.ui.messages import CaseChanged
from station.ui.screens.dialogs import ConfirmDialog, Field, FormDialog, ReasonDialog
from station.ui.widgets.id_input import IdNumberInput
from station.ui.widgets.material_checklist import MaterialChecklist

APPLICANT_FIELDS = {"name": "#applicant-name", "id_number": "#applicant-id", "phone": "#applicant-phone"}
ERROR_LABELS = {"name": "#name-note", "id_number": "#id-note", "phone": "#phone-note"}
DECISIONS = (
    ("accept", "受理", "F6"),
    ("notify", "一次性告知", "F7"),
    ("refuse", "不予受理", "F8"),
    ("immediate", "即办", "F12"),
)


# -- on the session thread ---------------------------------------------------------------------------


def _search(session, text: str):
    from station.services import catalog, intake

    org = session.config.org
    return [(item, intake.advice_only_here(item, org)) for item in catalog.search(text, session, limit=30)]


def _choose(session, code: str):
    from station.services import catalog, intake

    item = catalog.get(code, session)
    return (
        item,
        intake.guide_lines(item, session.config.org),
        intake.advice_only_here(item, session.config.org),
    )


def _preview(session, item, materials: dict[str, str]):
    from station.services import intake

    return intake.preview(session, item, materials)


def _check(name: str, id_number: str, phone: str):
    from station.services import intake

    return intake.check_applicant(name, id_number, phone)


def _submit(session, **kwargs):
    from station.services import intake

    return intake.submit(session, **kwargs)


# -- pure helpers for what is shown -------------------------------------------------------------------


def id_hint(text: str, today) -> tuple[str, str]:
    """(message, kind) for the ID number as typed so far; kind is "", "ok" or "error"."""
    s = "".join(text.split()).upper()
    if not s:
        return "", ""
    if len(s) < 18 and all(c.isdigit() for c in s):
        return f"已输入{len(s)}位，共18位", ""
    try:
        ident = parse_id_number(s, today=today)
    except ValidationError as e:
        return e.message, "error"
    d = ident.birth_date
    return f"出生日期 {d.year}年{d.month:02d}月{d.day:02d}日　性别 {ident.gender}", "ok"


def item_option(item, advice_only: bool) -> Option:
    t = Text(item.name)
    t.append(f"  {item.case_type.label}·{item.decide_level.label}决定", style="dim")
    if advice_only:
        t.append("  村级仅可咨询", style="bold red")
    return Option(t, id=item.impl_code)


def preview_text(p, item) -> Text:
    t = Text()
    if p.advice_only:
        t.append(f"村级仅可咨询，不能收件：请告知申请人到{item.decide_level.label}窗口办理", style="bold red")
        return t
    if p.immediate_item:
        t.append("即办件：材料齐全可当场办结（F12）", style="bold")
    else:
        t.append("受理后承诺办结日：", style="dim")
        t.append(p.promised_label, style="bold")
    if p.missing_required:
        t.append("\n缺必需材料：", style="dim")
        t.append("、".join(p.missing_required), style="bold red")
        t.append(f"\n不能受理，可一次性告知（补正期限 {p.supplement_deadline.isoformat()}）", style="yellow")
    else:
        t.append("\n必需材料已齐全", style="green")
    if p.rongque:
        t.append("\n容缺受理：", style="dim")
        t.append("、".join(p.rongque), style="bold yellow")
        t.append("（申请人书面承诺后补）", style="dim")
    return t


class ItemSearch(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("down", "results", "选择事项", show=False)]

    def action_results(self) -> None:
        self.screen.query_one("#item-results", OptionList).focus()


class IntakeScreen(Screen[None]):
    CSS_PATH = "../styles/intake.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        Binding("f2", "new", "重新收件"),
        Binding("f6", "decide('accept')", "受理"),
        Binding("f7", "decide('notify')", "一次性告知"),
        Binding("f8", "decide('refuse')", "不予受理"),
        Binding("f12", "decide('immediate')", "即办"),
        Binding("pageup", "scroll_form(-1)", "上翻", show=False),
        Binding("pagedown", "scroll_form(1)", "下翻", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.item: Any = None
        self.advice_only = False
        self.preview: Any = None
        self.results: list[Any] = []
        self.submitted: list[Any] = []  # CaseViews registered from this screen (tests read them)
        self._busy = False
        self._results_for: str | None = None  # the search text the result list answers
        self._choose_when_ready = False

    # -- layout ---------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("收件登记", id="intake-title", classes="screen-title")
        with Container(id="intake-body"):
            with VerticalScroll(id="intake-left"):
                yield Static("① 事项（名称、编码或拼音首字母）", classes="section-title")
                yield ItemSearch(id="item-search", placeholder="如：养老保险、ylbx、低保", compact=True)
                yield OptionList(id="item-results", compact=True)
                yield Static("尚未选择事项", id="item-chosen", markup=False)
                yield Static("", id="guide", markup=False)
            with VerticalScroll(id="intake-right"):
                yield Static("② 申请人", classes="section-title")
                with Horizontal(classes="form-row"):
                    yield Static("姓名", classes="form-label")
                    yield Input(id="applicant-name", placeholder="与身份证一致", compact=True, max_length=30)
                yield Static("", id="name-note", classes="field-note", markup=False)
                with Horizontal(classes="form-row"):
                    yield Static("身份证号", classes="form-label")
                    yield IdNumberInput(id="applicant-id", compact=True)
                yield Static("", id="id-note", classes="field-note", markup=False)
                with Horizontal(classes="form-row"):
                    yield Static("手机号", classes="form-label")
                    yield Input(
                        id="applicant-phone", placeholder="11位手机号，可不填", compact=True, max_length=20
                    )
                yield Static("", id="phone-note", classes="field-note", markup=False)
                yield Static("③ 材料　空格切换 已收/缺/容缺，A 全部已收", classes="section-title")
                yield MaterialChecklist(id="materials")
                yield Static("④ 办理", classes="section-title")
                yield Static("请先选择事项", id="preview", markup=False)
                with Horizontal(id="decision-buttons"):
                    for key, label, fkey in DECISIONS:
                        yield Button(
                            f"{label} {fkey}",
                            id=f"do-{key}",
                            compact=True,
                            variant="primary" if key == "accept" else "default",
                        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#item-search", Input).focus()
        self.query_one("#do-immediate", Button).display = False
        self.query_one("#materials", MaterialChecklist).display = False
        self._search("")

    def on_descendant_focus(self, event) -> None:
        # Back in the search box: show the results again to choose another item.
        if getattr(event.widget, "id", None) in ("item-search", "item-results"):
            self.query_one("#item-results", OptionList).display = True

    # -- the 事项 -----------------------------------------------------------------------------------------

    def _search(self, text: str) -> None:
        self.run_worker(
            partial(self._run_search, text), exclusive=True, group="intake-search", exit_on_error=False
        )

    async def _run_search(self, text: str) -> None:
        app: Any = self.app
        try:
            items = await app.db(_search, app.session, text)
        except Exception as exc:  # noqa: BLE001
            app.show_error(exc)
            return
        self.results = [item for item, _ in items]
        self._results_for = text
        results = self.query_one("#item-results", OptionList)
        results.clear_options()
        results.add_options([item_option(item, advice) for item, advice in items])
        if items:
            results.highlighted = 0
        if self._choose_when_ready and text == self.query_one("#item-search", Input).value:
            self._choose_when_ready = False
            self._search_submitted()

    @on(Input.Changed, "#item-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.query_one("#item-results", OptionList).display = True
        self._search(event.value)

    @on(Input.Submitted, "#item-search")
    def _search_submitted(self) -> None:
        if self._results_for != self.query_one("#item-search", Input).value:
            self._choose_when_ready = True  # Enter typed faster than the search: take its first result
            return
        results = self.query_one("#item-results", OptionList)
        if results.option_count:
            index = results.highlighted if results.highlighted is not None else 0
            self._choose(results.get_option_at_index(index).id)

    @on(OptionList.OptionSelected, "#item-results")
    def _result_selected(self, event: OptionList.OptionSelected) -> None:
        self._choose(event.option.id)

    def _choose(self, code: str | None) -> None:
        if code:
            self.run_worker(
                partial(self._run_choose, code), exclusive=True, group="intake-choose", exit_on_error=False
            )

    async def _run_choose(self, code: str) -> None:
        app: Any = self.app
        try:
            item, guide, advice_only = await app.db(_choose, app.session, code)
        except Exception as exc:  # noqa: BLE001
            app.show_error(exc)
            return
        self.item, self.advice_only = item, advice_only
        chosen = Text("已选：", style="dim")
        chosen.append(item.name, style="bold")
        if advice_only:
            chosen.append("\n村级仅可咨询，不能收件", style="bold red")
        self.query_one("#item-chosen", Static).update(chosen)
        self.query_one("#guide", Static).update(Text("\n".join(guide)))
        self.query_one("#do-immediate", Button).display = item.case_type.value == "immediate"
        self.query_one("#item-results", OptionList).display = False  # chosen: the guide needs the room
        checklist = self.query_one("#materials", MaterialChecklist)
        checklist.display = True
        checklist.load(item)  # posts Changed → preview
        self.refresh_bindings()
        if not advice_only:
            name = self.query_one("#applicant-name", Input)
            name.focus()
            self.call_after_refresh(name.scroll_visible)

    # -- the applicant ---------------------------------------------------------------------------------

    def _note(self, field: str, message: str, kind: str = "error") -> None:
        note = self.query_one(ERROR_LABELS[field], Static)
        note.update(message)
        note.display = bool(message)
        note.set_class(kind == "error" and bool(message), "-error")
        note.set_class(kind == "ok", "-ok")

    @on(Input.Changed, "#applicant-id")
    def _id_changed(self, event: Input.Changed) -> None:
        from station import clock

        message, kind = id_hint(event.value, clock.today())
        self._note("id_number", message, kind)

    @on(Input.Blurred, "#applicant-name")
    def _name_left(self, event: Input.Blurred) -> None:
        from schema.validation import check_person_name

        if not event.value.strip():
            self._note("name", "")
            return
        try:
            check_person_name(event.value, label="申请人姓名")
        except ValidationError as e:
            self._note("name", e.message)
        else:
            self._note("name", "")

    @on(Input.Blurred, "#applicant-phone")
    def _phone_left(self, event: Input.Blurred) -> None:
        from schema.validation import normalize_mobile

        if not event.value.strip():
            self._note("phone", "")
            return
        try:
            normalize_mobile(event.value)
        except ValidationError as e:
            self._note("phone", e.message)
        else:
            self._note("phone", "")

    # -- materials and the preview -----------------------------------------------------------------------

    @on(MaterialChecklist.Changed)
    def _materials_changed(self) -> None:
        if self.item is None:
            self.preview = None
            self.query_one("#preview", Static).update("请先选择事项")
            return
        materials = self.query_one("#materials", MaterialChecklist).values()
        self.run_worker(
            partial(self._run_preview, self.item, materials),
            exclusive=True,
            group="intake-preview",
            exit_on_error=False,
        )

    async def _run_preview(self, item, materials: dict[str, str]) -> None:
        app: Any = self.app
        try:
            p = await app.db(_preview, app.session, item, materials)
        except Exception as exc:  # noqa: BLE001
            app.show_error(exc)
            return
        if item is not self.item:
            return
        self.preview = p
        self.query_one("#preview", Static).update(preview_text(p, item))
        for key, _, _ in DECISIONS:
            self.query_one(f"#do-{key}", Button).set_class(not p.allowed(key), "-blocked")
        self.refresh_bindings()

    # -- deciding -------------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "decide" and parameters and parameters[0] == "immediate":
            return self.item is not None and self.item.case_type.value == "immediate"
        return True

    @on(Button.Pressed, "#decision-buttons Button")
    def _button(self, event: Button.Pressed) -> None:
        self.action_decide((event.button.id or "").removeprefix("do-"))

    def action_decide(self, decision: str) -> None:
        if self._busy:
            return
        if self.item is None:
            self.app.notify("请先选择事项", severity="warning")
            self.query_one("#item-search", Input).focus()
            return
        if self.preview is None:
            return
        if not self.preview.allowed(decision):
            self.app.notify(self.preview.blockers[decision], severity="warning", markup=False)
            return
        self.run_worker(partial(self._decide, decision), group="intake-submit", exit_on_error=False)

    def applicant(self) -> dict[str, str]:
        return {key: self.query_one(wid, Input).value for key, wid in APPLICANT_FIELDS.items()}

    def show_field_error(self, exc: UserError) -> bool:
        """Put ``exc`` next to its field; False if it names no field of this form."""
        if exc.field in ERROR_LABELS:
            self._note(exc.field, exc.message)
            field = self.query_one(APPLICANT_FIELDS[exc.field], Input)
            field.focus()
            # Cursor at the end, nothing selected: the next key must not replace what was typed.
            self.call_after_refresh(field.action_end)
            return True
        return False

    async def _decide(self, decision: str) -> None:
        app: Any = self.app
        self._busy = True
        try:
            await self._decide_steps(app, decision)
        finally:
            self._busy = False

    async def _decide_steps(self, app: Any, decision: str) -> None:
        item, p = self.item, self.preview
        fields = self.applicant()
        try:
            applicant = await app.db(_check, fields["name"], fields["id_number"], fields["phone"])
        except UserError as e:
            self.show_field_error(e)
            app.show_error(e)
            return
        for key in ERROR_LABELS:
            if key != "id_number":
                self._note(key, "")
        materials = self.query_one("#materials", MaterialChecklist).values()
        args = dict(
            item_code=item.impl_code,
            name=fields["name"],
            id_number=fields["id_number"],
            phone=fields["phone"],
            materials=materials,
            decision=decision,
        )
        who = f"申请人：{applicant.name}（{mask_id_number(applicant.id_number)}）"
        if decision == "refuse":

            async def refuse(reason: str) -> Any:
                try:
                    return await app.db(_submit, app.session, **args, reason=reason)
                except UserError as e:
                    if e.field in ERROR_LABELS:
                        return e  # closes the dialog: the problem is in the form behind it
                    raise

            view = await app.push_screen_wait(
                ReasonDialog(
                    f"不予受理 · {item.name}",
                    f"{who}\n请填写不予受理的理由（将书面告知申请人）",
                    on_submit=refuse,
                )
            )
            if view is None:
                return
            if isinstance(view, UserError):
                self.show_field_error(view)
                app.show_error(view)
                return
        elif decision == "accept" and p.rongque:
            # 容缺受理: the applicant's written promise and its date go into the record.
            async def accept_rongque(values: dict[str, Any]) -> Any:
                return await app.db(_submit, app.session, **args, promise=values["promise"],
                                    rongque_due=values["rongque_due"])

            form = FormDialog(
                f"容缺受理 · {item.name}",
                [Field("promise", "申请人书面承诺的内容", required=True,
                       placeholder="如：本人承诺10个工作日内补交银行账户复印件"),
                 Field("rongque_due", "承诺补交日期", required=True,
                       default=p.rongque_due.isoformat() if p.rongque_due else "", placeholder="YYYY-MM-DD")],
                prompt=f"{who}\n承诺办结日：{p.promised_label}\n容缺材料：" + "、".join(p.rongque)
                + "\n请申请人在承诺书上签字，并把承诺内容录入下面",
                on_submit=accept_rongque,
                ok_label="受理",
            )
            view = await app.push_screen_wait(form)
            if view is None:
                return
        else:
            if decision == "accept":
                text = f"受理“{item.name}”\n{who}\n承诺办结日：{p.promised_label}"
                question = ConfirmDialog(text, title="确认受理", yes="受理")
            elif decision == "notify":
                missing = p.missing_required + [m for m in p.rongque if m not in p.missing_required]
                lines = "\n".join(f"  {i}. {m}" for i, m in enumerate(missing, 1))
                text = (
                    f"一次性告知：“{item.name}”\n{who}\n请申请人补齐以下全部材料：\n{lines}\n"
                    f"补正期限：{p.supplement_deadline.isoformat()}"
                )
                question = ConfirmDialog(text, title="确认一次性告知", yes="告知")
            else:
                question = ConfirmDialog(
                    f"即办：“{item.name}”材料齐全，当场办结\n{who}", title="确认即办", yes="办结"
                )
            if not await app.push_screen_wait(question):
                return
            try:
                view = await app.db(_submit, app.session, **args)
            except UserError as e:
                if not self.show_field_error(e):
                    self.query_one("#preview", Static).update(Text(e.message, style="bold red"))
                app.show_error(e)
                return
        self.submitted.append(view)
        app.post_message(CaseChanged(view.case_id))
        done = {
            "accept": "已受理",
            "notify": "已出具一次性告知",
            "refuse": "已不予受理",
            "immediate": "已即办办结",
        }
        summary = f"{done[decision]}：{item.name}\n办件编号：{view.case_no}"
        if decision == "accept":
            summary += f"\n承诺办结日：{p.promised_label}"
        elif decision == "notify":
            summary += f"\n补正期限：{view.supplement_deadline}"
        open_it = await app.push_screen_wait(
            ConfirmDialog(summary, title="收件完成", yes="打开办件", no="继续收件")
        )
        self.reset()
        if open_it:
            app.open_case(view.case_id)

    def action_scroll_form(self, direction: int) -> None:
        # The 办事指南 can be long: PageUp/PageDown scroll it without leaving the field being typed.
        wide = self.has_class("-wide")
        box = self.query_one("#intake-left" if wide else "#intake-body")
        if direction > 0:
            box.scroll_page_down()
        else:
            box.scroll_page_up()

    # -- leaving and starting over -------------------------------------------------------------------------

    def dirty(self) -> bool:
        return self.item is not None or any(v.strip() for v in self.applicant().values())

    def reset(self) -> None:
        for wid in APPLICANT_FIELDS.values():
            self.query_one(wid, Input).value = ""
        for field in ERROR_LABELS:
            self._note(field, "")
        self.item, self.preview, self.advice_only = None, None, False
        self.query_one("#item-chosen", Static).update("尚未选择事项")
        self.query_one("#guide", Static).update("")
        self.query_one("#do-immediate", Button).display = False
        checklist = self.query_one("#materials", MaterialChecklist)
        checklist.load(None)
        checklist.display = False
        search = self.query_one("#item-search", Input)
        search.value = ""
        search.focus()
        self.refresh_bindings()

    def action_new(self) -> None:
        self.run_worker(partial(self._leave, reset=True), group="intake-leave", exit_on_error=False)

    def action_back(self) -> None:
        self.run_worker(partial(self._leave, reset=False), group="intake-leave", exit_on_error=False)

    async def _leave(self, reset: bool) -> None:
        app: Any = self.app
        if self.dirty() and not await app.push_screen_wait(
            ConfirmDialog(
                "本次收件尚未办理，填写的内容将不保存。确定放弃吗？",
                title="放弃收件",
                yes="放弃",
                no="继续填写",
            )
        ):
            return
        if reset:
            self.reset()
        else:
            app.pop_screen()
