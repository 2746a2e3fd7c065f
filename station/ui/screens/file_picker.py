"""Choose a file or a folder, for USB bundles and enrollment files.

A tree of folders starting on the USB stick (removable-media mount points: ``/media/<user>/*``,
``/media/*``, ``/run/media/<user>/*``, drive letters on Windows), or the home folder when no
stick is found; a "位置" list to jump between sticks and the home folder; and a path field that
always shows what 选择 will take — type a path there directly if you know it.

Returns the chosen :class:`~pathlib.Path`, or None (Esc).
"""

from __future__ import annotations

import getpass
import os
import string
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Select, Static, Tree

from station.ui.widgets.footer import StationFooter

STYLES = Path(__file__).resolve().parent.parent / "styles"
MODES = ("dir", "file", "any")


def _subdirs(base: Path) -> list[Path]:
    try:
        return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def removable_roots(
    *,
    media: Path = Path("/media"),
    run_media: Path = Path("/run/media"),
    user: str | None = None,
    windows: bool | None = None,
) -> list[Path]:
    """Mount points of USB sticks and other removable media, as far as they can be guessed."""
    windows = os.name == "nt" if windows is None else windows
    if windows:
        # A: and B: are floppies, C: is the system disk.
        return [Path(f"{c}:\\") for c in string.ascii_uppercase[3:] if os.path.exists(f"{c}:\\")]
    try:
        user = user or getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (odd environment): look in the shared places only
        user = ""
    roots: list[Path] = []
    # udisks mounts under /media/<user>/<label> (Debian, Ubuntu) or /run/media/<user>/<label>
    # (Fedora, openSUSE); older systems mount straight under /media/<label>.
    for base in [media / user, run_media / user] if user else []:
        roots += _subdirs(base)
    for p in _subdirs(media):
        if p.name != user and p not in roots:
            roots.append(p)
    return roots


def start_folder(roots: list[Path] | None = None) -> Path:
    roots = removable_roots() if roots is None else roots
    return roots[0] if roots else Path.home()


def locations(roots: list[Path]) -> list[tuple[str, Path]]:
    out = [(f"U盘 {r.name or r} （{r}）", r) for r in roots]
    out.append((f"主目录（{Path.home()}）", Path.home()))
    anchor = Path(Path.home().anchor or "/")
    out.append((f"整个电脑（{anchor}）", anchor))
    return out


class PickerTree(DirectoryTree):
    """Folders, and (unless choosing a folder) the files that fit; hidden entries left out."""

    def __init__(self, path: Path, *, mode: str, suffixes: tuple[str, ...], **kwargs) -> None:
        self.mode = mode
        self.suffixes = tuple(s.lower() for s in suffixes)
        super().__init__(path, **kwargs)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        out = []
        for p in paths:
            if p.name.startswith("."):
                continue
            try:
                is_dir = p.is_dir()
            except OSError:
                continue
            if is_dir:
                out.append(p)
            elif self.mode != "dir" and (not self.suffixes or p.suffix.lower() in self.suffixes):
                out.append(p)
        return out


def check_choice(text: str, mode: str) -> Path:
    """The path typed or chosen, if it fits ``mode``; a Chinese message otherwise."""
    from schema.errors import ValidationError

    text = text.strip().strip('"')
    if not text:
        raise ValidationError("请选择或输入路径", field="path")
    path = Path(os.path.expanduser(text))
    if mode == "dir":
        if not path.is_dir():
            raise ValidationError(f"找不到文件夹“{path}”，请确认U盘已插好", field="path")
    elif mode == "file":
        if not path.is_file():
            raise ValidationError(f"找不到文件“{path}”，请选择一个文件", field="path")
    elif not path.exists():
        raise ValidationError(f"找不到“{path}”，请确认U盘已插好、路径正确", field="path")
    return path


class FilePickerScreen(ModalScreen[Path | None]):
    """``mode``: ``dir`` (a folder), ``file`` (a file), ``any`` (a file, or a folder of files)."""

    CSS_PATH = STYLES / "file_picker.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "取消"),
        Binding("ctrl+s", "choose", "选择"),
        Binding("backspace", "up", "上一级文件夹"),
    ]

    def __init__(
        self,
        title: str,
        *,
        mode: str = "dir",
        suffixes: tuple[str, ...] = (),
        prompt: str = "",
        start: Path | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        super().__init__(classes="picker-screen")
        self.title_text, self.mode, self.suffixes, self.prompt = title, mode, suffixes, prompt
        self.roots = removable_roots()
        self.start = start if start is not None and start.is_dir() else start_folder(self.roots)

    def compose(self) -> ComposeResult:
        places = locations(self.roots)
        if self.start not in [p for _, p in places]:
            places.insert(0, (str(self.start), self.start))
        self.place_values = {str(p) for _, p in places}
        with Vertical(id="picker"):
            yield Static(self.title_text, id="picker-title", markup=False)
            hint = (
                self.prompt
                or {
                    "dir": "选择一个文件夹",
                    "file": "选择一个文件",
                    "any": "选择一个文件，或选择文件夹（导入其中全部文件）",
                }[self.mode]
            )
            if not self.roots:
                hint += "（没有找到U盘，插好后可在“位置”中选择，或直接输入路径）"
            yield Static(hint, id="picker-hint", markup=False)
            with Horizontal(id="picker-places-row"):
                yield Static("位置", classes="picker-label")
                yield Select(
                    [(label, str(p)) for label, p in places],
                    value=str(self.start),
                    prompt="（其他文件夹）",
                    id="picker-places",
                    compact=True,
                )
            yield PickerTree(self.start, mode=self.mode, suffixes=self.suffixes, id="picker-tree")
            with Horizontal(id="picker-path-row"):
                yield Static("路径", classes="picker-label")
                # Focusing it selects the path, so typing a new one replaces it.
                yield Input(str(self.start), id="picker-path", compact=True)
            yield Static("", id="picker-error", markup=False)
            with Horizontal(id="picker-buttons"):
                yield Button("选择 Ctrl+S", id="picker-ok", variant="primary", compact=True)
                yield Button("取消 Esc", id="picker-cancel", compact=True)
        yield StationFooter()  # this dialog's keys, not those of the screen below

    def on_mount(self) -> None:
        self.query_one("#picker-tree", PickerTree).focus()

    # -- moving around --------------------------------------------------------------------------

    @property
    def tree(self) -> PickerTree:
        return self.query_one("#picker-tree", PickerTree)

    def go(self, folder: Path) -> None:
        self.tree.path = folder
        self._set_path(folder)
        places = self.query_one("#picker-places", Select)
        if str(folder) in self.place_values:
            places.value = str(folder)
        else:
            places.clear()  # the list names sticks and the home folder; this is somewhere else

    def _set_path(self, path: Path) -> None:
        self.query_one("#picker-path", Input).value = str(path)
        self._say("")

    @on(Select.Changed, "#picker-places")
    def _place(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL and Path(str(event.value)) != Path(self.tree.path):
            self.go(Path(str(event.value)))

    def action_up(self) -> None:
        current = Path(self.tree.path)
        parent = current.parent
        if parent != current:
            self.go(parent)

    @on(Tree.NodeHighlighted, "#picker-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        entry = event.node.data
        if entry is not None:
            self._set_path(Path(entry.path))

    @on(DirectoryTree.DirectorySelected, "#picker-tree")
    def _dir_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self._set_path(event.path)

    @on(DirectoryTree.FileSelected, "#picker-tree")
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self._set_path(event.path)
        if self.mode != "dir":
            self.action_choose()

    # -- choosing -------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        error = self.query_one("#picker-error", Static)
        error.update(text)
        error.set_class(bool(text), "-shown")

    def action_choose(self) -> None:
        from schema.errors import UserError

        try:
            path = check_choice(self.query_one("#picker-path", Input).value, self.mode)
        except UserError as exc:
            self._say(exc.message)
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_choose()

    @on(Button.Pressed, "#picker-ok")
    def _ok(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose()

    @on(Button.Pressed, "#picker-cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()
