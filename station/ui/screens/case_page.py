"""One case: its facts, its conflicts, its full timeline and the actions this user may take now.

The actions offered are exactly ``schema.lifecycle.allowed_actions`` for the signed-in role and
org (``station.services.case_detail.detail``); each has a key and a dialog for its inputs, and
calls the matching function of ``station.services.cases`` on the session thread. A refused
action keeps the dialog open with the reason next to the field. After an action the page
reloads and ``CaseChanged`` tells the rest of the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
from schema.case import RATING_LABELS, MaterialStatus, Outcome, ResultCode, Special
from schema.lifecycle import RULES
from schema.org import Level
from station.ui.messages import CaseChanged
from station.ui.screens.dialogs import ConfirmDialog, Field, FormDialog, ReasonDialog

MATERIAL_STYLES = {"received": "green", "missing": "bold red", "rongque": "bold yellow"}


# -- what runs on the session thread ---------------------------------------------------------------


def _load(session, case_id: str):
    from station.services.case_detail import detail

    return detail(session, case_id)


def _prepare(session, view, kind: str) -> dict[str, Any]:
    """Facts a dialog shows before the action (what 受理 would promise, the 补正 deadline)."""
    from station.services import case_detail as cd

    if kind == K.CASE_ACCEPTED:
        d = cd.promised_if_accepted_today(session, view)
        return {"promised": None if d is None else d.date.isoformat() + ("（预计）" if d.estimated else "")}
    if kind == K.CASE_NOTIFIED_MISSING:
        return {"deadline": cd.supplement_deadline_today(session, view)}
    return {}


def _reveal(session, case_id: str) -> str:
    from station.services import cases

    return cases.reveal_id_number(session, case_id)


def _call(kind: str, session, case_id: str, v: dict[str, Any]):
    """Run the action ``kind`` with the dialog's values ``v`` (every rule kind has one service call)."""
    from station.services import cases

    calls: dict[str, Callable[[], Any]] = {
        K.CASE_ACCEPTED: lambda: cases.accept(
            session, case_id, rongque=v.get("rongque") or [], opinion=v.get("opinion", "")
        ),
        K.CASE_NOTIFIED_MISSING: lambda: cases.notify_missing(
            session, case_id, missing=v.get("missing") or [], opinion=v.get("opinion", "")
        ),
        K.CASE_SUPPLEMENTED: lambda: cases.supplement(session, case_id, v.get("materials") or []),
        K.CASE_LAPSED: lambda: cases.lapse(session, case_id, opinion=v.get("reason", "")),
        K.CASE_REFUSED: lambda: cases.refuse(session, case_id, v.get("reason", "")),
        K.CASE_FORWARDED: lambda: cases.forward(session, case_id, opinion=v.get("reason", "")),
        K.CASE_RETURNED: lambda: cases.return_down(session, case_id, v.get("reason", "")),
        K.CASE_SPECIAL_STARTED: lambda: cases.start_special(
            session, case_id, v.get("procedure") or "", v.get("reason", ""), days=v.get("days")
        ),
        K.CASE_SPECIAL_ENDED: lambda: cases.end_special(session, case_id, result=v.get("reason", "")),
        K.CASE_CO_OPINION: lambda: cases.co_opinion(
            session, case_id, v.get("department") or "", bool(v.get("agree")), v.get("opinion", "")
        ),
        K.CASE_DECIDED: lambda: cases.decide(
            session,
            case_id,
            v.get("outcome") or "",
            opinion=v.get("opinion", ""),
            certificate=v.get("certificate", ""),
        ),
        K.CASE_DELIVERED: lambda: cases.deliver(session, case_id, v.get("method") or ""),
        K.CASE_RATED: lambda: cases.rate(session, case_id, v.get("level") or 0, comment=v.get("comment", "")),
        K.CASE_VOIDED: lambda: cases.void(
            session, case_id, v.get("reason", ""), entry_error=bool(v.get("entry_error"))
        ),
    }
    return calls[kind]()


# -- the actions: key, dialog ------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    key: str
    done: str  # what the notification says afterwards


ACTIONS: dict[str, Action] = {
    K.CASE_ACCEPTED: Action("a", "已受理"),
    K.CASE_NOTIFIED_MISSING: Action("n", "已一次性告知"),
    K.CASE_SUPPLEMENTED: Action("b", "已登记补正材料"),
    K.CASE_LAPSED: Action("l", "已按补正不来办结"),
    K.CASE_REFUSED: Action("x", "已不予受理"),
    K.CASE_FORWARDED: Action("f", "已转报上级"),
    K.CASE_RETURNED: Action("t", "已退回"),
    K.CASE_SPECIAL_STARTED: Action("s", "已启动特别程序"),
    K.CASE_SPECIAL_ENDED: Action("e", "已结束特别程序"),
    K.CASE_CO_OPINION: Action("o", "已录入联办意见"),
    K.CASE_DECIDED: Action("d", "已作出决定"),
    K.CASE_DELIVERED: Action("g", "已送达"),
    K.CASE_RATED: Action("p", "已录入评价"),
    K.CASE_VOIDED: Action("z", "已作废"),
}
assert set(ACTIONS) == set(RULES), "every lifecycle rule needs a key and a dialog on the case page"


def action_dialog(kind: str, detail: Any, extra: dict[str, Any], on_submit) -> FormDialog:
    """The dialog that asks for ``kind``'s inputs (its labels say what each choice means)."""
    from station.services import case_detail as cd
    from station.services.cases import DELIVERY_METHODS

    view = detail.view
    label = RULES[kind].label
    title = f"{label} · {view.case_no}"
    mats = partial(cd.material_names, view)
    opinion = Field("opinion", "意见")
    if kind == K.CASE_ACCEPTED:
        fields = [opinion]
        candidates = cd.rongque_candidates(view)
        if candidates:
            fields.insert(
                0,
                Field(
                    "rongque", "容缺受理的材料（申请人书面承诺后补）", "multi", [(m, m) for m in candidates]
                ),
            )
        promised = extra.get("promised")
        prompt = f"受理后承诺办结日：{promised}" if promised else "受理"
        missing = cd.missing_required(view)
        if missing:
            prompt += "\n尚缺必需材料：" + "、".join(missing) + "（可容缺的请勾选，否则请一次性告知）"
        return FormDialog(title, fields, prompt=prompt, on_submit=on_submit, ok_label="受理")
    if kind == K.CASE_NOTIFIED_MISSING:
        missing = cd.missing_required(view)
        fields = [
            Field(
                "missing",
                "所缺材料（一次列全）",
                "multi",
                [(m, m) for m in mats()],
                default=missing,
                required=True,
            ),
            opinion,
        ]
        prompt = f"一次性告知申请人补齐所缺的全部材料。补正期限：{extra.get('deadline')}"
        return FormDialog(title, fields, prompt=prompt, on_submit=on_submit, ok_label="告知")
    if kind == K.CASE_SUPPLEMENTED:
        outstanding = mats(MaterialStatus.MISSING, MaterialStatus.RONGQUE)
        prompt = "勾选申请人本次补交的材料"
        if not outstanding:
            prompt = "当前没有缺少的材料；申请人补交了更正或更新的材料时，勾选后登记"
        choices = outstanding or mats()
        fields = [Field("materials", "补交的材料", "multi", [(m, m) for m in choices], required=True)]
        return FormDialog(title, fields, prompt=prompt, on_submit=on_submit, ok_label="登记")
    if kind == K.CASE_SPECIAL_STARTED:
        fields = [
            Field(
                "procedure", "特别程序种类", "choice", [(s.label, s.value) for s in Special], required=True
            ),
            Field("reason", "启动理由或依据", required=True),
            Field("days", "预计天数", "int", placeholder="可不填", max_length=4),
        ]
        return FormDialog(title, fields, prompt="特别程序期间暂停计时", on_submit=on_submit)
    if kind == K.CASE_CO_OPINION:
        depts = [(d, d) for d in view.item.get("co_departments", [])]
        fields = [
            Field(
                "department",
                "联办部门",
                "choice",
                depts,
                default=depts[0][1] if depts else None,
                required=True,
            ),
            Field("agree", "意见", "choice", [("同意", True), ("不同意", False)], default=True),
            Field("opinion", "意见说明"),
        ]
        return FormDialog(title, fields, on_submit=on_submit)
    if kind == K.CASE_DECIDED:
        fields = [
            Field("outcome", "决定结果", "choice", [(o.label, o.value) for o in Outcome], required=True),
            Field("opinion", "审批意见（不予批准须写明理由）"),
            Field("certificate", "证照编号", placeholder="出证的填写，可不填", max_length=100),
        ]
        return FormDialog(title, fields, on_submit=on_submit, ok_label="决定")
    if kind == K.CASE_DELIVERED:
        fields = [
            Field(
                "method",
                "送达方式",
                "choice",
                [(m, m) for m in DELIVERY_METHODS],
                default=DELIVERY_METHODS[0],
                required=True,
            )
        ]
        return FormDialog(title, fields, on_submit=on_submit, ok_label="送达")
    if kind == K.CASE_RATED:
        fields = [
            Field(
                "level",
                "评价",
                "choice",
                [(f"{n} {RATING_LABELS[n]}", n) for n in (5, 4, 3, 2, 1)],
                required=True,
            ),
            Field("comment", "评价内容（差评请记录原因）"),
        ]
        prompt = "追评（每件只能评价一次并追评一次）" if view.ratings else "请申请人对本次服务评价"
        return FormDialog(title, fields, prompt=prompt, on_submit=on_submit)
    if kind == K.CASE_VOIDED:
        fields = [
            Field("reason", "作废原因", required=True),
            Field("entry_error", "录入错误（按删除办结上报）", "check", default=False),
        ]
        return FormDialog(
            title, fields, prompt="作废后办件结束，不能恢复", on_submit=on_submit, ok_label="作废"
        )
    # One line of text: a reason (required) or an opinion (optional).
    prompts = {
        K.CASE_REFUSED: ("不予受理的理由（将告知申请人）", True, "理由"),
        K.CASE_RETURNED: ("退回理由（下级据此补正或修改）", True, "理由"),
        K.CASE_FORWARDED: (f"转报至{_parent_label(view)}，可填写审核意见", False, "意见"),
        K.CASE_SPECIAL_ENDED: ("特别程序的结果（核查、公示等结论）", False, "结果"),
        K.CASE_LAPSED: (
            f"补正期限（{view.supplement_deadline}）已过，申请人未补正，按补正不来办结",
            False,
            "意见",
        ),
    }
    prompt, required, field_label = prompts[kind]
    return ReasonDialog(
        title, prompt, required=required, label=field_label, on_submit=on_submit, ok_label=label
    )


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
                "  待补：" + "、".join(v.missing_notice) if v.missing_notice else "",
            )
        )
    if v.special:
        t.append("\n")
        try:
            proc = Special(v.special.get("procedure")).label
        except ValueError:
            proc = str(v.special.get("procedure"))
        days = f"，预计{v.special['days']}天" if v.special.get("days") else ""
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
    from station.services.case_detail import material_names

    v = detail.view
    t = Text("材料：", style="dim")
    for name in material_names(v):
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
    for rule in detail.actions:
        a = ACTIONS[rule.kind]
        if t:
            t.append("  ")
        click = Style.from_meta({"@click": f"screen.act('{rule.kind}')"})
        t.append(f" {a.key.upper()} ", style=Style(reverse=True, bold=True) + click)
        t.append(f" {rule.label}", style=Style(bold=True) + click)
    return t


# -- the screen -------------------------------------------------------------------------------------------


class CaseScreen(Screen[None]):
    CSS_PATH = "../styles/case_page.tcss"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    AUTO_FOCUS = "#case-body"  # arrows and PageUp/PageDown scroll the page (the timeline is below)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "返回"),
        *(Binding(a.key, f"act('{kind}')", RULES[kind].label) for kind, a in ACTIONS.items()),
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
        return {r.kind for r in self.detail.actions} if self.detail is not None else set()

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

            async def submit(values: Any) -> Any:
                v = values if isinstance(values, dict) else {"reason": values}
                return await app.db(_call, kind, app.session, case_id, v)

            result = await app.push_screen_wait(action_dialog(kind, detail, extra, submit))
        except Exception as exc:  # noqa: BLE001 - shown by the app
            app.show_error(exc)
            return
        finally:
            self._busy = False
        if result is None:  # cancelled
            return
        app.post_message(CaseChanged(case_id))
        app.notify(ACTIONS[kind].done, title=detail.view.case_no)
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
