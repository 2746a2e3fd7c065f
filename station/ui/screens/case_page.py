"""One case: its facts, its conflicts, its full timeline and the actions this user may take now.

The actions offered are exactly ``schema.rules.allowed_actions`` for the signed-in user
(``station.services.case_detail.detail``); each has the key and the inputs its rule object
declares, shown in a dialog built from them, and goes through ``station.services.cases.act``
on the session thread. A refused
action keeps the dialog open with the reason next to the field. After an action the page
reloads and ``CaseChanged`` tells the rest of the app.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from schema import events as K
from schema import rules
from schema.case import RATING_LABELS, MaterialStatus, Outcome, ResultCode, Special
from schema.org import Level
from schema.rules import Kind
from station.ui.messages import CaseChanged
from station.ui.screens.dialogs import ConfirmDialog, Field, FormDialog

MATERIAL_STYLES = {"received": "green", "missing": "bold red", "rongque": "bold yellow"}


# -- what runs on the session thread ---------------------------------------------------------------


def _load(session, case_id: str):
    from station.services.case_detail import detail

    return detail(session, case_id)


def _prepare(session, view, kind: str) -> dict[str, Any]:
    """What the action would write with default inputs (补正期限, 公示截止日 …) and, for 受理,
    the promised date: facts its dialog shows before the person confirms."""
    from station.services import case_detail as cd

    facts = cd.preview_body(session, view, rules.ACTIONS[kind])
    if kind == K.CASE_ACCEPTED:
        d = cd.promised_if_accepted_today(session, view)
        facts["promised"] = None if d is None else d.date.isoformat() + ("（预计）" if d.estimated else "")
    return facts


def _reveal(session, case_id: str) -> str:
    from station.services import cases

    return cases.reveal_id_number(session, case_id)


def _call(kind: str, session, case_id: str, values: dict[str, Any]):
    """Run the action ``kind`` with the dialog's values (every action goes through ``cases.act``)."""
    from station.services import cases

    return cases.act(session, case_id, kind, values)


# -- the actions' dialogs, built from their fields --------------------------------------------------------

_KINDS = {Kind.TEXT: "text", Kind.INT: "int", Kind.CHOICE: "choice", Kind.MULTI: "multi", Kind.BOOL: "check",
          Kind.DATE: "text"}


def _default(action, f, view, facts: dict[str, Any], actor) -> Any:
    if f.name in facts and f.kind is not Kind.MULTI:
        return facts[f.name]
    if action.kind == K.CASE_NOTIFIED_MISSING and f.name == "missing":
        return view.missing_required
    if action.kind == K.CASE_CO_OPINION and f.name == "department":
        return actor.department if actor is not None and actor.department else None
    if f.kind is Kind.CHOICE and f.required:
        options = f.options(view)
        return options[0][0] if len(options) == 1 else None
    return None


def _prompt(action, view, facts: dict[str, Any]) -> str:
    lines = [action.help]
    if action.kind == K.CASE_ACCEPTED:
        if facts.get("promised"):
            lines.append(f"受理后承诺办结日：{facts['promised']}")
        if view.missing_required:
            lines.append("尚缺必需材料：" + "、".join(view.missing_required) + "（可容缺的请勾选并填写承诺，否则请一次性告知）")
    if facts.get("deadline"):
        lines.append(f"补正期限：{facts['deadline']}")
    if facts.get("until"):
        lines.append(f"截止日期：{facts['until']}")
    if action.kind == K.CASE_DECIDED:
        blockers = rules.approval_blockers(view)
        if blockers:
            lines.append("现在不能准予：" + "；".join(blockers))
    return "\n".join(lines)


def action_dialog(kind: str, detail: Any, facts: dict[str, Any], on_submit, actor=None) -> FormDialog:
    """The dialog that asks for ``kind``'s inputs: its fields, labels and choices are the rule object's."""
    action = rules.ACTIONS[kind]
    view = detail.view
    fields = [
        Field(
            f.name,
            f.label,
            _KINDS[f.kind],
            [(label, value) for value, label in f.options(view)],
            default=_default(action, f, view, facts, actor),
            required=f.required,
            placeholder="YYYY-MM-DD" if f.kind is Kind.DATE else (f.help if f.kind is Kind.TEXT else ""),
            max_length=f.max_len,
        )
        for f in action.fields
    ]
    return FormDialog(f"{action.label} · {view.case_no}", fields, prompt=_prompt(action, view, facts),
                      on_submit=on_submit, ok_label=action.label)


def _parent_label(view) -> str:
    parent = Level(view.holder_level).parent
    return parent.label if parent else "上级"


# -- rendering -------------------------------------------------------------------------------------------


def _line(*parts: tuple[str, str] | str) -> Text:
    t = Text()
    for p in parts:
        if isinstance(p, tuple):
            t.append(p[0], style=p[1])
        else:
            t.append(p)
    return t


def _time(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "—"


def head_text(detail) -> Text:
    v = detail.view
    item = v.item
    case_type = {"immediate": "即办件", "promised": "承诺件", "escalated": "上报件", "joint": "联办件"}.get(
        item.get("case_type", ""), ""
    )
    decide = Level(item.get("decide_level", "county")).label
    t = _line(("事项：", "dim"), (item.get("name", ""), "bold"))
    t.append("\n")
    t.append_text(_line(("　　　", ""), (f"{case_type} · {decide}决定", "dim")))
    t.append("\n")
    t.append_text(
        _line(
            ("状态：", "dim"),
            (f" {v.state.label} ", "bold reverse" if v.state.is_open else "bold"),
            ("　当前经办：", "dim"),
            detail.holder_label,
        )
    )
    t.append("\n")
    intake = f"{Level(v.intake_level).label}（{v.intake_org}）" if v.intake_level else v.intake_org
    t.append_text(_line(("收件单位：", "dim"), intake))
    return t


def applicant_text(detail, revealed: str | None) -> Text:
    from schema.validation import mask_id_number, mask_phone

    a = detail.view.applicant
    t = _line(
        ("申请人：", "dim"),
        (a.get("name", ""), "bold"),
        f"  {a.get('gender', '')}",
        f"  出生 {a.get('birth_date', '')}" if a.get("birth_date") else "",
    )
    t.append("\n")
    if revealed:
        t.append_text(
            _line(("身份证号：", "dim"), (revealed, "bold"), ("（完整号码，已记录查看）", "yellow"))
        )
    else:
        t.append_text(
            _line(
                ("身份证号：", "dim"),
                mask_id_number(a.get("id_number", "")),
                ("  （按I显示完整号码）", "dim"),
            )
        )
    t.append("\n")
    t.append_text(_line(("手机号：", "dim"), mask_phone(a.get("phone", "")) or "—"))
    return t


def due_text(detail) -> Text:
    v, due = detail.view, detail.due
    t = _line(("收件：", "dim"), _time(v.registered_at), ("  受理：", "dim"), _time(v.accepted_at))
    t.append("\n")
    if due.overdue:
        t.append_text(
            _line(("承诺办结：", "dim"), (due.text, "bold red"), (f"  已超期{due.days_over}天", "bold red"))
        )
    else:
        t.append_text(_line(("承诺办结：", "dim"), (due.text, "bold")))
    if v.supplement_deadline:
        t.append("\n")
        t.append_text(
            _line(
                ("补正期限：", "dim"),
                (v.supplement_deadline, "bold"),
                "  尚缺：" + "、".join(v.still_missing) if v.still_missing else "",
            )
        )
    if v.special:
        t.append("\n")
        try:
            proc = Special(v.special.get("procedure")).label
        except ValueError:
            proc = str(v.special.get("procedure"))
        days = f"，至{v.special['until']}恢复计时" if v.special.get("until") else ""
        t.append_text(
            _line(
                ("特别程序：", "dim"),
                (proc, "bold"),
                f"（{v.special.get('reason', '')}{days}）",
                f" 自 {_time(v.special.get('started_at'))}",
            )
        )
    if v.result_code:
        t.append("\n")
        outcome = f"，{Outcome(v.outcome).label}" if v.outcome else ""
        if v.certificate:
            outcome += f"，证照编号 {v.certificate}"
        t.append_text(
            _line(
                ("办结：", "dim"),
                (ResultCode(v.result_code).label + outcome, "bold"),
                f"  {_time(v.closed_at)}",
            )
        )
    if v.delivered_at:
        t.append("\n")
        t.append_text(_line(("送达：", "dim"), _time(v.delivered_at)))
    for r in v.ratings:
        t.append("\n")
        t.append_text(
            _line(
                ("追评：" if r.get("follow_up") else "评价：", "dim"),
                (RATING_LABELS.get(r.get("level"), str(r.get("level"))), "bold"),
                f"  {r.get('comment', '')}",
            )
        )
    return t


def materials_text(detail) -> Text:
    from schema.rules.base import material_choices

    v = detail.view
    t = Text("材料：", style="dim")
    for name, _ in material_choices()(v):
        status = MaterialStatus(v.materials[name])
        t.append("\n  ")
        t.append(f"[{status.label}]", style=MATERIAL_STYLES[status.value])
        t.append(name)  # no space: a long name would wrap away from its status
    return t


def conflicts_text(detail) -> Text:
    from station.services.timeline import KIND_LABELS

    v = detail.view
    t = Text(f"⚠ 此办件有{len(v.conflicts)}处冲突，需要人工核实处理：", style="bold")
    for c in v.conflicts:
        t.append("\n  ")
        t.append(f"{_time(c.at)} {KIND_LABELS.get(c.kind, c.kind)}：", style="bold")
        t.append(c.reason)
    return t


def timeline_text(detail) -> Text:
    """Each entry on two lines: when and who (dim), then what was done and its 意见."""
    t = Text()
    for i, e in enumerate(detail.timeline):
        if i:
            t.append("\n")
        t.append(f"{_time(e.at)}  {e.level}{e.role} {e.actor}\n", style="dim")
        t.append("  ")
        t.append(e.action, style="bold")
        if e.detail:
            t.append("：" + e.detail)
        if e.conflict:
            t.append(f"  【冲突：{e.conflict}】", style="bold red")
    return t


def actions_text(detail) -> Text:
    t = Text()
    for a in detail.actions:
        if t:
            t.append("  ")
        click = Style.from_meta({"@click": f"screen.act('{a.kind}')"})
        t.append(f" {a.key.upper()} ", style=Style(reverse=True, bold=True) + click)
        t.append(f" {a.label}", style=Style(bold=True) + click)
    return t


# -- the screen -------------------------------------------------------------------------------------------


class CaseScreen(Screen[None]):
    CSS_PATH = "../styles/case_page.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    AUTO_FOCUS = "#case-body"  # arrows and PageUp/PageDown scroll the page (the timeline is below)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        *(Binding(a.key, f"act('{a.kind}')", a.label) for a in rules.REGISTRY.actions),
        Binding("i", "reveal", "显示身份证号"),
    ]

    def __init__(self, case_id: str) -> None:
        super().__init__()
        self.case_id = case_id
        self.detail: Any = None
        self.revealed: str | None = None
        self.loads = 0  # finished loads (tests wait on it)
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Static("办件", id="case-title", classes="screen-title", markup=False)
        with VerticalScroll(id="case-body"):
            with VerticalScroll(id="case-info"):
                yield Static("", id="case-conflicts", markup=False)
                yield Static("正在读取…", id="case-head", markup=False)
                yield Static("", id="case-applicant", markup=False)
                yield Static("", id="case-due", markup=False)
                yield Static("", id="case-materials", markup=False)
            with VerticalScroll(id="case-timeline-box"):
                yield Static("全程记录", classes="section-title")
                yield Static("", id="case-timeline", markup=False)
        yield Static("", id="case-actions")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.run_worker(self._load, exclusive=True, group="case-load", exit_on_error=False)

    async def _load(self) -> None:
        try:
            detail = await self.app.db(_load, self.app.session, self.case_id)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - shown by the app
            self.app.show_error(exc)  # type: ignore[attr-defined]
            self.query_one("#case-head", Static).update("无法读取该办件")
            return
        self.show(detail)

    def show(self, detail) -> None:
        self.detail = detail
        v = detail.view
        self.query_one("#case-title", Static).update(f"办件 {v.case_no}　{v.state.label}")
        conflicts = self.query_one("#case-conflicts", Static)
        conflicts.display = bool(v.conflicts)
        if v.conflicts:
            conflicts.update(conflicts_text(detail))
        self.query_one("#case-head", Static).update(head_text(detail))
        self.query_one("#case-applicant", Static).update(applicant_text(detail, self.revealed))
        self.query_one("#case-due", Static).update(due_text(detail))
        self.query_one("#case-materials", Static).update(materials_text(detail))
        self.query_one("#case-timeline", Static).update(timeline_text(detail))
        actions = self.query_one("#case-actions", Static)
        actions.update(
            actions_text(detail) if detail.actions else Text("本人在此状态下没有可办理的操作", style="dim")
        )
        self.loads += 1
        self.refresh_bindings()

    # -- actions ------------------------------------------------------------------------------------------

    def allowed(self) -> set[str]:
        return {a.kind for a in self.detail.actions} if self.detail is not None else set()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act":
            return parameters[0] in self.allowed()
        if action == "reveal":
            return self.detail is not None and self.revealed is None
        return True

    def action_act(self, kind: str) -> None:
        if kind not in self.allowed() or self._busy:
            return
        self.run_worker(partial(self._act, kind), group="case-action", exit_on_error=False)

    async def _act(self, kind: str) -> None:
        app: Any = self.app
        detail, case_id = self.detail, self.detail.view.case_id
        self._busy = True
        try:
            extra = await app.db(_prepare, app.session, detail.view, kind)

            async def submit(values: dict[str, Any]) -> Any:
                return await app.db(_call, kind, app.session, case_id, values)

            actor = await app.db(lambda s: s.author, app.session)
            result = await app.push_screen_wait(action_dialog(kind, detail, extra, submit, actor))
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        finally:
            self._busy = False
        if result is None:  # cancelled
            return
        app.post_message(CaseChanged(case_id))
        app.notify(rules.ACTIONS[kind].done, title=detail.view.case_no)
        self.reload()

    def action_reveal(self) -> None:
        if self.detail is not None and self.revealed is None:
            self.run_worker(self._reveal, group="case-action", exit_on_error=False)

    async def _reveal(self) -> None:
        app: Any = self.app
        ok = await app.push_screen_wait(
            ConfirmDialog(
                "显示完整身份证号会留下一条审计记录（查看人、时间、办件编号），县中心可以查询。\n确定要显示吗？",
                title="显示完整身份证号",
                yes="显示",
            )
        )
        if not ok:
            return
        try:
            self.revealed = await app.db(_reveal, app.session, self.case_id)
        except Exception as exc:  # noqa: BLE001
            app.show_error(exc)
            return
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
