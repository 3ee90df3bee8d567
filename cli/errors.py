"""Exit codes scripts can rely on, and the one exception type commands raise to use them."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ERROR = 1  # unexpected failure (a bug, or AWS refused something); the message says what
    USAGE = 2  # wrong arguments (argparse's own code)
    UNHEALTHY = 3  # the command ran, and found problems: status not healthy, records failed
    CONFIG = 4  # cannot reach the target: no sandbox file, no stack, unreadable secret or setting
    AUTH = 5  # authorisation: consent denied, wrong redirect URI, missing scopes, invalid_grant
    PAUSED = 6  # stopped early and resumable: Xero's budget spent, --max-calls reached
    INTERRUPTED = 130  # Ctrl-C; a backfill checkpoint is saved


class CliError(Exception):
    """A failure with a message for people and the exit code for scripts."""

    def __init__(self, message: str, code: Exit = Exit.ERROR, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint
