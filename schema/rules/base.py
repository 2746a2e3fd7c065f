"""What every case action is made of: who acts, the inputs it takes, and the rule object itself.

An :class:`Action` is one thing a person can do to a case (受理, 转报, 决定 …). It owns, in one
place: who may take it (roles, and where: the level holding the case, the intake level, or a
higher level), the states it starts from, its precondition, its effect on the case, the
inputs it takes (:class:`Field`, with Chinese labels, choices and validation) and the words
the timeline uses for it. The fold (:mod:`schema.rules.fold`), the menus
(:func:`schema.rules.allowed_actions`), the county's authority check, the services, the CLI
and the UI dialogs are all derived from these objects (docs/case-rules.md).

The rules never trust what an event says about who made it: the fold hands them an
:class:`Actor` whose org and level come from the station registry (the station that recorded
the event), and whose role was checked against what a station of that level may hold.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from schema.case import CaseView, Conflict, ResultCode, State
from schema.errors import TransitionError, ValidationError
from schema.org import Level, OrgCode, Role

if TYPE_CHECKING:
    from schema.events import Event
    from schema.workdays import WorkCalendar

S = State
AGENT, CLERK, REVIEWER, ADMIN = Role.AGENT, Role.CLERK, Role.REVIEWER, Role.ADMIN
STAFF = frozenset({AGENT, CLERK, REVIEWER})  # the roles that handle cases (the admin only manages)
OPEN = frozenset({S.RECEIVED, S.AWAITING_SUPPLEMENT, S.IN_PROGRESS, S.SUSPENDED, S.RETURNED, S.TRANSFERRED})
CLOSED_RESULTS = frozenset({S.DONE, S.DELIVERED, S.REFUSED, S.LAPSED})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who takes an action, as the rules see it.

    ``org`` and ``level`` are those of the station that recorded the event (the registry's,
    never the event's claim); ``role`` is the event's role, which the station's level must be
    able to hold; ``department`` is the user's county department (for 联办意见), from the
    staff directory.
    """

    user: str
    role: Role
    org: str
    level: Level
    department: str = ""

    @classmethod
    def claimed(cls, ev: Event) -> Actor:
        """The actor an event claims to be (pure tests, and a station's own fresh events)."""
        return cls(ev.actor, Role(ev.role), ev.org, OrgCode(ev.org).level)


class Where(enum.StrEnum):
    HOLDER = "holder"  # the org now holding the case
    INTAKE = "intake"  # the org where it was registered
    EITHER = "either"  # either of those
    ABOVE = "above"  # an org above the holder that covers it (approvals)
    ANYONE = "anyone"  # any org of the county (回访 and the like; checked by the action)

    @property
    def label(self) -> str:
        return {"holder": "当前经办单位", "intake": "收件单位", "either": "收件或当前经办单位",
                "above": "上级单位", "anyone": "本县单位"}[self.value]


class Kind(enum.StrEnum):
    """How an input is typed."""

    TEXT = "text"
    CHOICE = "choice"  # one of ``choices``
    MULTI = "multi"  # several of ``choices``
    INT = "int"
    BOOL = "bool"
    DATE = "date"  # YYYY-MM-DD


Choices = Callable[[CaseView], Sequence[tuple[str, str]]]  # the case → (value, label) pairs


@dataclass(frozen=True)
class Field:
    """One input of an action: the event body key, its Chinese label and how it is typed."""

    name: str
    label: str
    kind: Kind = Kind.TEXT
    required: bool = False
    help: str = ""
    choices: Choices | Sequence[tuple[str, str]] | None = None
    max_len: int = 500
    min_value: int | None = None
    max_value: int | None = None

    @property
    def flag(self) -> str:
        """The CLI option for this field (``--rongque-due``)."""
        return "--" + self.name.replace("_", "-")

    def options(self, view: CaseView | None) -> list[tuple[str, str]]:
        if self.choices is None:
            return []
        if callable(self.choices):
            return list(self.choices(view)) if view is not None else []
        return list(self.choices)

    def parse(self, raw: Any, view: CaseView | None) -> Any:
        """A typed value from what a person gave (CLI text, a dialog's widget value).

        Raises a ValidationError naming the field. ``None``/empty means "not given".
        """
        if raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []:
            if self.required:
                raise ValidationError(f"请填写“{self.label}”", field=self.name)
            return [] if self.kind is Kind.MULTI else (False if self.kind is Kind.BOOL else None)
        if self.kind is Kind.TEXT:
            text = str(raw).strip()
            if len(text) > self.max_len:
                raise ValidationError(f"“{self.label}”最多{self.max_len}个字", field=self.name)
            return text
        if self.kind is Kind.BOOL:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "y", "是", "同意"):
                return True
            if text in ("0", "false", "no", "n", "否", "不同意"):
                return False
            raise ValidationError(f"“{self.label}”应为是或否", field=self.name)
        if self.kind is Kind.INT:
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValidationError(f"“{self.label}”应为整数", field=self.name) from None
            if (self.min_value is not None and value < self.min_value) or (
                self.max_value is not None and value > self.max_value
            ):
                raise ValidationError(f"“{self.label}”应在{self.min_value}到{self.max_value}之间", field=self.name)
            return value
        if self.kind is Kind.DATE:
            text = str(raw).strip()
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise ValidationError(f"“{self.label}”应为日期，如 2026-03-05", field=self.name) from None
        options = self.options(view)
        if self.kind is Kind.CHOICE:
            return self._pick(raw, options)
        values = raw if isinstance(raw, (list, tuple)) else [raw]
        picked = []
        for v in values:
            p = self._pick(v, options)
            if p not in picked:
                picked.append(p)
        return picked

    def _pick(self, raw: Any, options: list[tuple[str, str]]) -> str:
        text = str(raw).strip()
        for value, label in options:
            if text in (value, label):
                return value
        names = "、".join(label for _, label in options) or "（无）"
        raise ValidationError(f"“{self.label}”不能选“{text}”，可选：{names}", field=self.name)


class Env(Protocol):
    """What an action needs from the station to shape a person's input into an event body:
    today's date, the working-day calendar (deadlines are written into the body, so every
    replica folds the same case whatever calendar version it holds) and who is acting."""

    @property
    def today(self) -> date: ...

    @property
    def calendar(self) -> WorkCalendar: ...

    @property
    def actor(self) -> Actor: ...


def fail(message: str) -> None:
    raise TransitionError(message)


def text_of(body: dict[str, Any], key: str, what: str) -> str:
    """A required non-empty text of an event body (the fold's check of what the service asked)."""
    value = body.get(key)
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        fail(f"请填写{what}")
    return text


def names_of(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail("材料清单格式无效")
    return list(value)


def date_of(body: dict[str, Any], key: str, what: str, *, required: bool = True) -> str | None:
    """A YYYY-MM-DD date of an event body (deadlines are written into bodies by the station)."""
    value = body.get(key)
    if value is None or value == "":
        if required:
            fail(f"请填写{what}")
        return None
    try:
        return date.fromisoformat(value).isoformat()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fail(f"{what}“{value}”不是有效日期")
    raise AssertionError  # unreachable: fail() raised


def effective_at(ev: Event) -> str:
    """When the act happened: the paper date for 补录 entries, else the event time."""
    at = ev.body.get("effective_at")
    return at if isinstance(at, str) and at else ev.at


def close(view: CaseView, state: State, code: ResultCode, at: str) -> None:
    view.state = state
    view.result_code = code.value
    view.closed_at = at
    view.level_closures[view.holder_level] = code.value


def open_pause(view: CaseView, at: str, reason: str, until: str | None = None) -> None:
    view.pauses.append([at, None, reason, until])


def end_pause(view: CaseView, at: str) -> None:
    if view.pauses and view.pauses[-1][1] is None:
        view.pauses[-1][1] = at


def known_materials(view: CaseView, names: Iterable[str]) -> None:
    for m in names:
        if m not in view.materials:
            fail(f"材料“{m}”不在该事项的材料清单中")


def material_choices(*statuses: str) -> Choices:
    """The case's materials in catalog order, those with one of ``statuses`` (all if none)."""

    def choices(view: CaseView) -> list[tuple[str, str]]:
        order = [m["name"] for m in view.item.get("materials", []) if isinstance(m, dict)]
        names = [m for m in order if m in view.materials] + [m for m in view.materials if m not in order]
        return [(m, m) for m in names if not statuses or view.materials[m] in statuses]

    return choices


class Action:
    """One case action. Subclasses set the class attributes and override the hooks.

    The fold calls :meth:`refusal` (who, where, from which state — no body), then
    :meth:`check` (the body), then :meth:`effect`; the menu offers the action exactly when
    :meth:`refusal` is None and :meth:`offered` holds. ``check`` must accept the body that
    :meth:`prepare` builds from valid inputs (tests/schema/test_rules_agreement.py).
    """

    kind: ClassVar[str]
    name: ClassVar[str]  # the CLI sub-command: ``station case <name> CASE``
    label: ClassVar[str]  # 受理
    key: ClassVar[str] = ""  # the case page's key
    done: ClassVar[str] = ""  # what the notification says afterwards
    help: ClassVar[str] = ""
    states: ClassVar[frozenset[State]] = frozenset()
    roles: ClassVar[frozenset[Role]] = STAFF
    where: ClassVar[Where] = Where.HOLDER
    fields: ClassVar[tuple[Field, ...]] = ()
    backfill: ClassVar[bool] = True  # may carry ``effective_at`` (补录 of paper records)
    # Roles that may never take this action, whatever the case (the county refuses them at ingest).
    # Derived: anything not in ``roles``.

    # -- who and when ---------------------------------------------------------------------------

    def refusal(self, view: CaseView, actor: Actor, at: str) -> str | None:
        """Why ``actor`` may not take this action on ``view`` at time ``at`` (None: it may)."""
        if view.state not in self.states:
            return f"办件当前状态为“{view.state.label}”，不能{self.label}"
        if actor.role not in self.roles:
            return f"{actor.role.label}不能对办件执行“{self.label}”"
        return self.place_refusal(view, actor) or self.precondition(view, actor, at)

    def place_refusal(self, view: CaseView, actor: Actor) -> str | None:
        if actor.role is ADMIN and self.where is not Where.ANYONE:
            return None if OrgCode(actor.org).covers(view.intake_org) else "该办件不在本单位管辖范围内"
        at_holder, at_intake = actor.org == view.holder_org, actor.org == view.intake_org
        if self.where is Where.HOLDER:
            ok = at_holder
        elif self.where is Where.INTAKE:
            ok = at_intake
        elif self.where is Where.EITHER:
            ok = at_holder or at_intake
        elif self.where is Where.ABOVE:
            ok = actor.level.rank > Level(view.holder_level).rank and OrgCode(actor.org).covers(view.holder_org)
        else:
            ok = OrgCode(actor.org).county == OrgCode(view.intake_org).county
        if ok:
            return None
        holder = f"（当前在{Level(view.holder_level).label}单位 {view.holder_org}）"
        return f"只有{self.where.label}可以{self.label}此办件{holder}"

    def precondition(self, view: CaseView, actor: Actor, at: str) -> str | None:
        """Case facts (not the body) that forbid the action at ``at``."""
        return None

    # -- the body ---------------------------------------------------------------------------------

    def check(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str) -> None:
        """Raise TransitionError if the body breaks a rule; change nothing."""

    def effect(self, view: CaseView, actor: Actor, body: dict[str, Any], at: str, ev: Event) -> None:
        """Change the case (called only after every check passed)."""

    def prepare(self, view: CaseView, values: dict[str, Any], env: Env) -> dict[str, Any]:
        """The event body for inputs a person gave (already parsed by the fields)."""
        return {f.name: values.get(f.name) for f in self.fields}

    def describe(self, body: dict[str, Any]) -> str:
        """The timeline's words for one event of this action (its inputs, not who or when)."""
        for key in ("reason", "opinion", "result", "method"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    # -- helpers for subclasses ------------------------------------------------------------------

    def parse(self, raw: dict[str, Any], view: CaseView | None) -> dict[str, Any]:
        """Every field parsed from raw inputs (unknown keys ignored)."""
        return {f.name: f.parse(raw.get(f.name), view) for f in self.fields}


def add_conflict(view: CaseView, ev: Event, reason: str) -> None:
    view.conflicts.append(Conflict(ev.id, ev.kind, ev.at, ev.actor, reason))


@dataclass
class Registry:
    """The actions by event kind and by CLI name, in menu order."""

    actions: list[Action] = field(default_factory=list)

    def add(self, action: Action) -> Action:
        if any(a.kind == action.kind or a.name == action.name for a in self.actions):
            raise ValueError(f"duplicate action {action.kind}/{action.name}")
        keys = [a.key for a in self.actions if a.key]
        if action.key and action.key in keys:
            raise ValueError(f"duplicate key {action.key} for {action.kind}")
        self.actions.append(action)
        return action

    def by_kind(self) -> dict[str, Action]:
        return {a.kind: a for a in self.actions}

    def by_name(self) -> dict[str, Action]:
        return {a.name: a for a in self.actions}
