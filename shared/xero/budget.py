"""Keep one Xero organisation under its limits by design, instead of bouncing off 429s.

Xero allows, per organisation: 5 concurrent calls, 60 calls a minute, 5,000 a day, in fixed
windows (minute, UTC day). ``XeroConfig`` sets our caps a little below those. Before every call the
client takes one unit from the minute window and one from the day window; if the minute is spent it
waits for the next one (when that is within ``max_inline_wait_seconds``), otherwise it raises
:class:`BudgetExhausted` so the message goes back to the queue rather than billing a sleeping
Lambda. ``observe`` learns from Xero's ``X-MinLimit-Remaining`` / ``X-DayLimit-Remaining`` and
429s, which also catches calls made by anything else using the same connection.

DynamoDB item layout (state table, ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="budget#<tenant_id>"  sk="minute#YYYYMMDDTHHMM"  calls=<N>  expires_at=<N epoch s>
    pk="budget#<tenant_id>"  sk="day#YYYYMMDD"          calls=<N>  expires_at=<N epoch s>
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shared import aws
from shared.config import XeroConfig
from shared.xero.errors import XeroRateLimited

logger = logging.getLogger(__name__)

# Xero's own per-organisation limits; the remaining-headers count down from these.
XERO_CALLS_PER_MINUTE = 60
XERO_CALLS_PER_DAY = 5_000
_TTL_GRACE_SECONDS = 86_400

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


@dataclass(frozen=True)
class Window:
    kind: WindowKind
    key: str
    limit: int
    ends_at: float


def windows_at(now: float, config: XeroConfig) -> tuple[Window, Window]:
    """The fixed minute and UTC-day windows containing ``now`` (epoch seconds)."""
    moment = datetime.fromtimestamp(now, tz=UTC)
    minute = Window("minute", f"minute#{moment:%Y%m%dT%H%M}", config.calls_per_minute, (now // 60 + 1) * 60)
    day = Window("day", f"day#{moment:%Y%m%d}", config.calls_per_day, (now // 86_400 + 1) * 86_400)
    return minute, day


class _WindowedBudget(ABC):
    """The algorithm; subclasses only say how a counter is taken, given back and raised."""

    def __init__(
        self,
        config: XeroConfig,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.config = config
        self._clock = clock
        self._sleep = sleep
        # Per-process concurrency; across processes the Lambda's reserved concurrency caps it.
        self._slots = threading.BoundedSemaphore(config.max_concurrent)

    def acquire(self) -> None:
        max_wait = self.config.max_inline_wait_seconds
        deadline = self._clock() + max_wait
        if not self._slots.acquire(timeout=max_wait):
            raise BudgetExhausted(1.0, "budget-concurrency")
        try:
            while True:
                now = self._clock()
                minute, day = windows_at(now, self.config)
                if not self._take(minute):
                    problem, wait = "budget-minute", minute.ends_at - now
                elif not self._take(day):
                    # Do not leave a minute unit spent on a call that is not going to happen.
                    self._give_back(minute)
                    problem, wait = "budget-day", day.ends_at - now
                else:
                    return
                if problem == "budget-day" or now + wait > deadline:
                    logger.info("call budget exhausted", extra={"problem": problem, "retry_after": wait})
                    raise BudgetExhausted(wait, problem)
                self._sleep(wait)
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
            self._raise_to(day, day.limit)
        for window, header, xero_limit in (
            (minute, "x-minlimit-remaining", XERO_CALLS_PER_MINUTE),
            (day, "x-daylimit-remaining", XERO_CALLS_PER_DAY),
        ):
            remaining = _int_or_none(lower.get(header))
            if remaining is not None:
                self._raise_to(window, max(xero_limit - remaining, 0))

    @abstractmethod
    def _take(self, window: Window) -> bool:
        """Add one call if the window is below its limit; False when it is full."""

    @abstractmethod
    def _give_back(self, window: Window) -> None: ...

    @abstractmethod
    def _raise_to(self, window: Window, used: int) -> None:
        """Make the window's count at least ``used`` (never lower it)."""


class InMemoryCallBudget(_WindowedBudget):
    """One process's budget (unit tests, the local sandbox, a CLI run)."""

    def __init__(
        self,
        config: XeroConfig,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config, clock, sleep)
        self._counts: dict[str, int] = {}
        self._mutex = threading.Lock()

    def used(self, window_key: str) -> int:
        with self._mutex:
            return self._counts.get(window_key, 0)

    def _take(self, window: Window) -> bool:
        with self._mutex:
            self._forget_old(window)
            if self._counts.get(window.key, 0) >= window.limit:
                return False
            self._counts[window.key] = self._counts.get(window.key, 0) + 1
            return True

    def _give_back(self, window: Window) -> None:
        with self._mutex:
            self._counts[window.key] = max(self._counts.get(window.key, 0) - 1, 0)

    def _raise_to(self, window: Window, used: int) -> None:
        with self._mutex:
            self._counts[window.key] = max(self._counts.get(window.key, 0), used)

    def _forget_old(self, current: Window) -> None:
        prefix = f"{current.kind}#"
        for key in [k for k in self._counts if k.startswith(prefix) and k != current.key]:
            del self._counts[key]


class DynamoCallBudget(_WindowedBudget):
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
        super().__init__(config, clock, sleep)
        # None: the calling thread's client from shared.aws (the usual case).
        self._client = client
        self.table_name = table_name
        self.tenant_id = tenant_id
        # Last count DynamoDB told us per window: observe() only writes when Xero knows of more.
        self._seen: dict[str, int] = {}

    def _ddb(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def _key(self, window: Window) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"budget#{self.tenant_id}"}, "sk": {"S": window.key}}

    def _ttl(self, window: Window) -> dict[str, str]:
        return {"N": str(int(window.ends_at) + _TTL_GRACE_SECONDS)}

    def _take(self, window: Window) -> bool:
        ddb = self._ddb()
        try:
            result = ddb.update_item(
                TableName=self.table_name,
                Key=self._key(window),
                UpdateExpression="SET expires_at = if_not_exists(expires_at, :ttl) ADD calls :one",
                ConditionExpression="attribute_not_exists(calls) OR calls < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(window.limit)},
                    ":ttl": self._ttl(window),
                },
                ReturnValues="UPDATED_NEW",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            self._seen[window.key] = window.limit
            return False
        self._remember(window, int(result["Attributes"]["calls"]["N"]))
        return True

    def _give_back(self, window: Window) -> None:
        ddb = self._ddb()
        with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
            ddb.update_item(
                TableName=self.table_name,
                Key=self._key(window),
                UpdateExpression="ADD calls :minus",
                ConditionExpression="calls > :zero",
                ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
            )

    def _raise_to(self, window: Window, used: int) -> None:
        if used <= self._seen.get(window.key, 0):
            return
        ddb = self._ddb()
        # A failed condition means the count is already at least that high.
        with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
            ddb.update_item(
                TableName=self.table_name,
                Key=self._key(window),
                UpdateExpression="SET calls = :used, expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(calls) OR calls < :used",
                ExpressionAttributeValues={":used": {"N": str(used)}, ":ttl": self._ttl(window)},
            )
        self._remember(window, used)

    def _remember(self, window: Window, count: int) -> None:
        if len(self._seen) > 8:  # Old windows are never consulted again.
            self._seen = {k: v for k, v in self._seen.items() if k == window.key}
        self._seen[window.key] = max(self._seen.get(window.key, 0), count)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
