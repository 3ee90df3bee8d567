"""Keep one Xero organisation under its limits by design, instead of bouncing off 429s.

Xero allows, per organisation: 5 concurrent calls, 60 calls a minute, 5,000 a day (1,000 on the
2026 Starter tier: ``XeroConfig.day_limit``), in fixed windows (minute, UTC day). ``XeroConfig``
sets our caps a little below those. Before every call the client takes one unit from the minute
window and one from the day window; if the minute is spent it waits for the next one (when that is
within ``max_inline_wait_seconds``), otherwise it raises :class:`BudgetExhausted` so the message
goes back to the queue rather than billing a sleeping Lambda. ``observe`` learns from Xero's
``X-MinLimit-Remaining`` / ``X-DayLimit-Remaining`` and 429s, which also catches calls made by
anything else using the same connection.

The windows and their counters are the shared implementation in ``shared/windowed_budget.py``.

DynamoDB item layout (state table, ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="budget#<tenant_id>"  sk="minute#YYYYMMDDTHHMM"  calls=<N>  expires_at=<N epoch s>
    pk="budget#<tenant_id>"  sk="day#YYYYMMDD"          calls=<N>  expires_at=<N epoch s>
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from shared.config import XeroConfig
from shared.windowed_budget import (
    DynamoWindowCounts,
    InMemoryWindowCounts,
    Window,
    WindowCounts,
    WindowedBudget,
    WindowSpec,
    window_at,
)
from shared.xero.errors import XeroRateLimited

# Xero's own per-organisation limit a minute; the remaining-header counts down from it (the day's
# counts down from the tier's ``XeroConfig.day_limit``).
XERO_CALLS_PER_MINUTE = 60

WindowKind = Literal["minute", "day"]


class BudgetExhausted(XeroRateLimited):
    """Our own budget for this organisation is spent for longer than we will wait in-process.

    A :class:`XeroRateLimited` (transient), so callers handle a real 429 and this the same way.
    """

    def __init__(self, retry_after_seconds: float, problem: str) -> None:
        super().__init__(retry_after_seconds, problem, status=None)
        self.retry_after_seconds = retry_after_seconds


class CallBudget(Protocol):
    def acquire(self) -> None:
        """Take one call from the budget, waiting up to ``max_inline_wait_seconds``; else raise
        :class:`BudgetExhausted`. Every successful ``acquire`` must be paired with ``release``."""
        ...

    def release(self) -> None:
        """The call finished (it still counts against the windows; this frees a concurrency slot)."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a Xero response's rate-limit headers."""
        ...


def window_specs(config: XeroConfig) -> tuple[WindowSpec, WindowSpec]:
    # A day that Xero says is spent stays spent: never sleep through to the next one.
    return (
        WindowSpec("minute", 60, config.calls_per_minute),
        WindowSpec("day", 86_400, config.calls_per_day, wait_inline=False),
    )


def budget_pk(tenant_id: str) -> str:
    return f"budget#{tenant_id}"


def windows_at(now: float, config: XeroConfig) -> tuple[Window, Window]:
    """The fixed minute and UTC-day windows containing ``now`` (epoch seconds)."""
    minute, day = window_specs(config)
    return window_at(now, minute), window_at(now, day)


def _exhausted(retry_after: float, problem: str) -> Exception:
    return BudgetExhausted(retry_after, problem)


class _XeroBudget:
    """The shared windowed algorithm (``shared/windowed_budget.py``), plus what is Xero's own:
    a concurrency cap, and learning from Xero's rate-limit headers."""

    def __init__(
        self,
        counts: WindowCounts,
        config: XeroConfig,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.config = config
        self._counts = counts
        self._clock = clock
        self._windows = WindowedBudget(
            counts,
            window_specs(config),
            clock=clock,
            sleep=sleep,
            max_inline_wait_seconds=config.max_inline_wait_seconds,
            exhausted=_exhausted,
        )
        # Per-process concurrency; across processes the Lambda's reserved concurrency caps it.
        self._slots = threading.BoundedSemaphore(config.max_concurrent)

    def acquire(self) -> None:
        if not self._slots.acquire(timeout=self.config.max_inline_wait_seconds):
            raise BudgetExhausted(1.0, "budget-concurrency")
        try:
            self._windows.take()
        except BaseException:
            self._slots.release()
            raise

    def release(self) -> None:
        self._slots.release()

    def observe(self, headers: Mapping[str, str]) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        minute, day = windows_at(self._clock(), self.config)
        if lower.get("x-rate-limit-problem", "").strip().lower() == "day":
            # Xero says the day is spent, whatever our counter thinks: stop every worker until
            # the next UTC day. (A minute 429 is left to its Retry-After, which the client honours:
            # Xero's minute need not line up with ours, so filling our window could over-wait.)
            self._counts.raise_to(day, day.limit)
        for window, header, xero_limit in (
            (minute, "x-minlimit-remaining", XERO_CALLS_PER_MINUTE),
            (day, "x-daylimit-remaining", self.config.day_limit),
        ):
            remaining = _int_or_none(lower.get(header))
            if remaining is not None:
                self._counts.raise_to(window, max(xero_limit - remaining, 0))


class InMemoryCallBudget(_XeroBudget):
    """One process's budget (unit tests, the local sandbox, a CLI run)."""

    def __init__(
        self,
        config: XeroConfig,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._memory = InMemoryWindowCounts()
        super().__init__(self._memory, config, clock, sleep)

    def used(self, window_key: str) -> int:
        return self._memory.used_by_key(window_key)


class DynamoCallBudget(_XeroBudget):
    """The budget of one Xero organisation, shared by every worker through the state table."""

    def __init__(
        self,
        table_name: str,
        tenant_id: str,
        config: XeroConfig,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        *,
        client: Any | None = None,
    ) -> None:
        super().__init__(
            DynamoWindowCounts(table_name, budget_pk(tenant_id), client=client), config, clock, sleep
        )
        self.table_name = table_name
        self.tenant_id = tenant_id


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
