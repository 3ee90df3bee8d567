"""Output for people (tables, colour when the terminal supports it, a progress bar) and ``--json``
for scripts: with ``--json`` stdout carries exactly one JSON document; progress and messages go to
stderr either way."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

_STYLES = {"ok": "32", "warn": "33", "bad": "31;1", "dim": "2", "bold": "1"}


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def supports_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    delta = (now - moment).total_seconds()
    return f"{duration(abs(delta))} {'ago' if delta >= 0 else 'from now'}"


class Output:
    def __init__(
        self, *, json_mode: bool, stdout: TextIO, stderr: TextIO, colour: bool | None = None
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout
        self.stderr = stderr
        self.colour = supports_colour(stdout) if colour is None else colour
        self._err_colour = supports_colour(stderr) if colour is None else colour

    # -- results ---------------------------------------------------------------------------------

    def result(self, data: dict[str, Any], human: Callable[[], str]) -> None:
        if self.json_mode:
            self.stdout.write(json.dumps(data, default=_default, indent=2, sort_keys=False) + "\n")
        else:
            self.stdout.write(human().rstrip("\n") + "\n")
        self.stdout.flush()

    def message(self, text: str) -> None:
        """A line for people, on stderr (never mixed into ``--json`` output)."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def error(self, text: str, hint: str | None = None, *, usage: str | None = None, code: int = 1) -> None:
        """One readable line on stderr; with ``--json`` also ``{"error": {...}}`` on stdout, so a
        script that parses stdout always gets a document."""
        if self.json_mode:
            problem = {"message": text, "hint": hint, "exit_code": int(code)}
            self.stdout.write(json.dumps({"error": problem}, indent=2) + "\n")
            self.stdout.flush()
        if usage:
            self.stderr.write(usage + "\n")
        self.stderr.write(self._styled("error: ", "bad", self._err_colour) + text + "\n")
        if hint:
            self.stderr.write(self._styled("hint: ", "bold", self._err_colour) + hint + "\n")
        self.stderr.flush()

    # -- formatting ------------------------------------------------------------------------------

    def style(self, text: str, kind: str) -> str:
        return self._styled(text, kind, self.colour)

    @staticmethod
    def _styled(text: str, kind: str, enabled: bool) -> str:
        code = _STYLES.get(kind)
        return f"\x1b[{code}m{text}\x1b[0m" if enabled and code else text

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
        widths = [max(len(_plain(row[i])) for row in cells) for i in range(len(headers))]
        lines = []
        for index, row in enumerate(cells):
            text = "  ".join(c + " " * (w - len(_plain(c))) for c, w in zip(row, widths, strict=True))
            lines.append(self.style(text.rstrip(), "bold") if index == 0 else text.rstrip())
        return "\n".join(lines)


def _plain(text: str) -> str:
    """Text without ANSI styles (for widths)."""
    out, skipping = [], False
    for ch in text:
        if ch == "\x1b":
            skipping = True
        elif skipping and ch == "m":
            skipping = False
        elif not skipping:
            out.append(ch)
    return "".join(out)


class ProgressBar:
    """``[#####.....] contacts 1,200/4,000 30%  Xero calls 26  ETA 1m10s  (4,700 calls left today)``
    redrawn in place on a terminal; on anything else, one line every 10%."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_decile: dict[str, int] = {}
        self._drawn = False

    def update(
        self,
        phase: str,
        done: int,
        total: int,
        *,
        calls: int,
        eta_seconds: float | None,
        calls_left_today: int | None,
        waiting: str | None = None,
    ) -> None:
        if waiting:
            self._line(f"  {waiting}")
            return
        fraction = done / total if total else 1.0
        filled = int(self._width * fraction)
        left = f"  ({calls_left_today:,} calls left today)" if calls_left_today is not None else ""
        text = (
            f"[{'#' * filled}{'.' * (self._width - filled)}] {phase} {done:,}/{total:,} {fraction:4.0%}"
            f"  Xero calls {calls:,}  ETA {duration(eta_seconds)}{left}"
        )
        decile = int(fraction * 10)
        if self._tty:
            self._stream.write("\r\x1b[K" + text)
            self._stream.flush()
            self._drawn = True
        elif self._last_decile.get(phase) != decile:
            self._last_decile[phase] = decile
            self._line(text)

    def _line(self, text: str) -> None:
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._drawn = False
        self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


class Ticker:
    """A progress line on stderr at most every ``every`` seconds, for work counted without a
    known total (``replay: 1,200 read, 1,150 replayed``); nothing for work that ends sooner."""

    def __init__(
        self, stream: TextIO, what: str, every: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._what = what
        self._every = every
        self._clock = clock
        self._next = clock() + every

    def __call__(self, read: int, done: int) -> None:
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            self._stream.write(f"{self._what}: {read:,} read, {done:,} so far\n")
            self._stream.flush()
