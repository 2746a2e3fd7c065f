"""Errors that carry a message meant for the person at the keyboard.

Every error a user can cause is a :class:`UserError` whose ``message`` is
plain Simplified Chinese telling them what to fix. Front ends (CLI, UI, HTTP)
show ``message`` and never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can understand and act on; ``message`` is Chinese."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(UserError):
    """Input that does not meet a rule (ID number, phone, required field …)."""

    code = "invalid"


class TransitionError(UserError):
    """An action the case's state, or the actor's role/level, does not allow."""

    code = "not_allowed"


class NotFoundError(UserError):
    code = "not_found"
