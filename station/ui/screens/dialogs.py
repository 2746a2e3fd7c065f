"""Shared dialogs: confirm, a reason, and small forms for case actions.

Esc cancels (the dialog returns None / False); Enter in a text field or on 确定 confirms
(ctrl+s confirms from anywhere in a form). A form dialog may be given ``on_submit``: it then
runs that coroutine (a service call through ``app.db``) and stays open on a
:class:`~schema.errors.UserError`, with the message next to the field it names, so nothing
typed is lost; it closes with the coroutine's result on success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, RadioButton, RadioSet, SelectionList, Static
from textual.widgets.selection_list import Selection

from schema.errors import UserError

CSS = "../styles/dialogs.tcss"


@dataclass(frozen=True)
class Field:
    """One input of a :class:`FormDialog`.

    kind: ``text`` (one line), ``int``, ``choice`` (one of ``options``), ``multi`` (any of
    ``options``), ``check`` (yes/no). ``options`` are (label, value) pairs.
    """

    key: str
    label: str
    kind: str = "text"
    options: Sequence[tuple[str, Any]] = ()
    default: Any = None
    required: bool = False
    placeholder: str = ""
    max_length: int = 500


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question. Enter = yes, Esc = no."""

    CSS_PATH = CSS
    BINDINGS = [
        Binding("escape", "answer(False)", "取消"),
        Binding("y", "answer(True)", "是", show=False),
        Binding("n", "answer(False)", "否", show=False),
    ]

    def __init__(self, text: str, *, title: str = "请确认", yes: str = "确定", no: str = "取消") -> None:
        super().__init__(classes="dialog-screen")
        self.text, self.title_text, self.yes, self.no = text, title, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.text, classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} Enter", id="yes", variant="primary", compact=True)
                yield Button(f"{self.no} Esc", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ChoiceDialog(ModalScreen[str | None]):
    """One of a few answers, each a button with a digit key (1, 2, …). Esc = None (cancel)."""

    CSS_PATH = CSS
    BINDINGS = [Binding("escape", "choose('')", "取消")]

    def __init__(self, text: str, choices: Sequence[tuple[str, str]], *, title: str = "请选择") -> None:
        super().__init__(classes="dialog-screen")
        self.text, self.choices, self.title_text = text, list(choices), title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.text, classes="dialog-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                for i, (key, label) in enumerate(self.choices, 1):
                    yield Button(f"{label} {i}", id=f"choice-{key}", variant="primary" if i == 1 else "default",
                                 compact=True)
                yield Button("取消 Esc", id="choice-cancel", compact=True)

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event) -> None:
        if event.character and event.character.isdigit() and 1 <= int(event.character) <= len(self.choices):
            event.stop()
            self.dismiss(self.choices[int(event.character) - 1][0])

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        key = (event.button.id or "").removeprefix("choice-")
        self.dismiss(None if key == "cancel" else key)

    def action_choose(self, key: str) -> None:
        self.dismiss(key or None)


class FormDialog(ModalScreen[Any]):
    """A small form. Returns the values as a dict (or ``on_submit``'s result); None if cancelled."""

    CSS_PATH = CSS
    BINDINGS = [
        Binding("escape", "cancel", "取消"),
        Binding("ctrl+s", "submit", "确定"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        *,
        prompt: str = "",
        on_submit: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
        ok_label: str = "确定",
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.prompt = prompt
        self.fields = list(fields)
        self.on_submit = on_submit
        self.ok_label = ok_label
        self._busy = False

    # -- building -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                if self.prompt:
                    yield Static(self.prompt, classes="dialog-text", markup=False)
                for f in self.fields:
                    if f.kind != "check":
                        yield Static(f.label + ("（必填）" if f.required else ""), classes="field-label")
                    yield self._widget(f)
                    yield Static("", id=f"error-{f.key}", classes="field-error", markup=False)
            yield Static("", id="form-error", classes="field-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.ok_label} Enter", id="ok", variant="primary", compact=True)
                yield Button("取消 Esc", id="cancel", compact=True)

    def _widget(self, f: Field):
        wid = f"field-{f.key}"
        if f.kind in ("text", "int"):
            value = "" if f.default is None else str(f.default)
            kind = "integer" if f.kind == "int" else "text"
            return Input(
                value,
                placeholder=f.placeholder,
                id=wid,
                type=kind,
                max_length=f.max_length,
                compact=True,
                classes="field-input",
            )
        if f.kind == "choice":
            buttons = [RadioButton(label, value=(value == f.default)) for label, value in f.options]
            return RadioSet(*buttons, id=wid, compact=True)
        if f.kind == "multi":
            chosen = set(f.default or ())
            return SelectionList[Any](
                *(Selection(label, value, value in chosen) for label, value in f.options),
                id=wid,
                compact=True,
            )
        if f.kind == "check":
            return Checkbox(f.label, bool(f.default), id=wid, compact=True)
        raise ValueError(f"unknown field kind {f.kind!r}")

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#field-{self.fields[0].key}").focus()

    # -- reading and checking --------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            w = self.query_one(f"#field-{f.key}")
            if f.kind == "text":
                out[f.key] = w.value.strip()  # type: ignore[attr-defined]
            elif f.kind == "int":
                text = w.value.strip()  # type: ignore[attr-defined]
                out[f.key] = int(text) if text.lstrip("-").isdigit() else None
            elif f.kind == "choice":
                i = w.pressed_index  # type: ignore[attr-defined]
                out[f.key] = f.options[i][1] if i >= 0 else None
            elif f.kind == "multi":
                out[f.key] = list(w.selected)  # type: ignore[attr-defined]
            else:
                out[f.key] = bool(w.value)  # type: ignore[attr-defined]
        return out

    def _missing(self, values: dict[str, Any]) -> dict[str, str]:
        """Required fields left empty (the form's own check; the service checks the rules)."""
        errors = {}
        for f in self.fields:
            v = values.get(f.key)
            if not f.required or (v not in (None, "") and v != []):
                continue
            errors[f.key] = {"choice": f"请选择{f.label}", "multi": f"请至少选择一项{f.label}"}.get(
                f.kind, f"请填写{f.label}"
            )
        return errors

    def show_errors(self, errors: dict[str, str], general: str = "") -> None:
        for f in self.fields:
            _say(self.query_one(f"#error-{f.key}", Static), errors.get(f.key, ""))
        _say(self.query_one("#form-error", Static), general)
        first = next((f for f in self.fields if f.key in errors), None)
        if first is not None:
            self.query_one(f"#field-{first.key}").focus()

    # -- actions ---------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if not self._busy:
            self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#ok")
    def _ok_pressed(self) -> None:
        self.action_submit()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        if self._busy:
            return
        values = self.values()
        errors = self._missing(values)
        if errors:
            self.show_errors(errors)
            return
        if self.on_submit is None:
            self.dismiss(self.result_of(values))
            return
        self._busy = True
        self.run_worker(self._run_submit(values), exclusive=True, group="dialog-submit", exit_on_error=False)

    def result_of(self, values: dict[str, Any]) -> Any:
        return values

    async def _run_submit(self, values: dict[str, Any]) -> None:
        assert self.on_submit is not None
        try:
            result = await self.on_submit(self.result_of(values))
        except UserError as e:
            self._busy = False
            keys = {f.key for f in self.fields}
            if e.field in keys:
                self.show_errors({e.field: e.message})
            else:
                self.show_errors({}, e.message)
            self.app.show_error(e)  # type: ignore[attr-defined]
            return
        except Exception as e:  # noqa: BLE001 - logged by the app, the dialog stays usable
            self._busy = False
            self.app.show_error(e)  # type: ignore[attr-defined]
            return
        self.dismiss(result)


class PinFormDialog(FormDialog):
    """The form dialog with its PIN fields (``old``, ``pin``, ``pin2``) masked."""

    PIN_FIELDS = frozenset({"old", "pin", "pin2"})

    def _widget(self, f: Field):
        widget = super()._widget(f)
        if f.key in self.PIN_FIELDS:
            widget.password = True
        return widget


def _say(widget: Static, message: str) -> None:
    widget.update(message)
    widget.set_class(bool(message), "-shown")


class ReasonDialog(FormDialog):
    """Ask for one line of text (a reason, an opinion). Returns the text, or None if cancelled."""

    def __init__(
        self,
        title: str,
        prompt: str,
        *,
        required: bool = True,
        label: str = "理由",
        on_submit: Callable[[str], Awaitable[Any]] | None = None,
        ok_label: str = "确定",
    ) -> None:
        super().__init__(
            title,
            [Field("reason", label, required=required)],
            prompt=prompt,
            on_submit=on_submit,
            ok_label=ok_label,
        )  # type: ignore[arg-type]

    def result_of(self, values: dict[str, Any]) -> Any:
        return values["reason"]
