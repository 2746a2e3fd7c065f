"""Messages that cross screens. Post them to the app: ``self.app.post_message(CaseChanged(case_id))``."""

from __future__ import annotations

from textual.message import Message


class CaseChanged(Message):
    """A case was written (registered, accepted, forwarded …): open lists and the home refresh."""

    def __init__(self, case_id: str) -> None:
        super().__init__()
        self.case_id = case_id


class SignedIn(Message):
    """The app has a session (after unlock or first-run set-up)."""


class Locked(Message):
    """The session was closed (ctrl+l or idle lock); the unlock screen is showing."""
