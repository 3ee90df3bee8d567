"""Fixed-window request budgets, counted in the state table: one implementation for every API whose
provider limits calls per window (Xero per minute and per UTC day, Ignition per hour).

A budget is a key prefix (``pk``) and a list of windows. Taking a unit adds one to the counter of
every window containing now, each below its limit; when one is full the units already taken are
given back, and the caller either waits for that window to end (when that is within its inline
wait and the window allows waiting) or gets the exception its API raises for a rate limit, so the
message goes back to the queue rather than billing a sleeping Lambda.

Windows are fixed (aligned to the epoch, so UTC), not sliding, like the providers' own.

DynamoDB item layout (state table, ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk=<prefix>  sk="<kind>#<window start, e.g. YYYYMMDDTHHMM>"  calls=<N>  expires_at=<N epoch s>
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import aws

logger = logging.getLogger(__name__)

_TTL_GRACE_SECONDS = 86_400
# Window length -> how its start is written in the sort key (readable, and sorts by time).
_KEY_FORMATS = {60: "%Y%m%dT%H%M", 3_600: "%Y%m%dT%H", 86_400: "%Y%m%d"}


@dataclass(frozen=True)
class WindowSpec:
    """One fixed window of a budget: ``kind`` names it in keys and problems ("minute", "hour")."""

    kind: str
    seconds: int
    limit: int
    # False: never sleep for this window to end, even when it ends soon (a day rarely does, and
    # a provider that says the day is spent means it).
    wait_inline: bool = True

    def __post_init__(self) -> None:
        if self.seconds not in _KEY_FORMATS:
            raise ValueError(f"window length {self.seconds} s: one of {sorted(_KEY_FORMATS)}")


@dataclass(frozen=True)
class Window:
    kind: str
    key: str
    limit: int
    ends_at: float


def window_at(now: float, spec: WindowSpec) -> Window:
    """The fixed window of ``spec`` containing ``now`` (epoch seconds)."""
    start = datetime.fromtimestamp(now, tz=UTC)
    key = f"{spec.kind}#{start:{_KEY_FORMATS[spec.seconds]}}"
    return Window(spec.kind, key, spec.limit, (now // spec.seconds + 1) * spec.seconds)


class WindowCounts(ABC):
    """Where the counters live; the algorithm (:class:`WindowedBudget`) is the same for all."""

    @abstractmethod
    def take(self, window: Window, limit: int) -> bool:
        """Add one call if the window's count is below ``limit``; False when it is not."""

    @abstractmethod
    def give_back(self, window: Window) -> None: ...

    @abstractmethod
    def raise_to(self, window: Window, used: int) -> None:
        """Make the window's count at least ``used`` (never lower it)."""

    @abstractmethod
    def used(self, window: Window) -> int:
        """The window's count, read without changing it."""


class InMemoryWindowCounts(WindowCounts):
    """One process's counters (unit tests, a CLI run without a table)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._mutex = threading.Lock()

    def used_by_key(self, key: str) -> int:
        with self._mutex:
            return self._counts.get(key, 0)

    def take(self, window: Window, limit: int) -> bool:
        with self._mutex:
            self._forget_old(window)
            if self._counts.get(window.key, 0) >= limit:
                return False
            self._counts[window.key] = self._counts.get(window.key, 0) + 1
            return True

    def give_back(self, window: Window) -> None:
        with self._mutex:
            self._counts[window.key] = max(self._counts.get(window.key, 0) - 1, 0)

    def raise_to(self, window: Window, used: int) -> None:
        with self._mutex:
            self._counts[window.key] = max(self._counts.get(window.key, 0), used)

    def used(self, window: Window) -> int:
        return self.used_by_key(window.key)

    def _forget_old(self, current: Window) -> None:
        prefix = f"{current.kind}#"
        for key in [k for k in self._counts if k.startswith(prefix) and k != current.key]:
            del self._counts[key]


class DynamoWindowCounts(WindowCounts):
    """Counters under one ``pk`` in the state table, shared by every worker and function."""

    def __init__(self, table_name: str, pk: str, *, client: Any | None = None) -> None:
        # None: the calling thread's client from shared.aws (the usual case).
        self._client = client
        self.table_name = table_name
        self.pk = pk
        # Last count DynamoDB told us per window: raise_to() only writes when it knows of more.
        self._seen: dict[str, int] = {}

    def _ddb(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def _key(self, window: Window) -> dict[str, dict[str, str]]:
        return {"pk": {"S": self.pk}, "sk": {"S": window.key}}

    @staticmethod
    def _ttl(window: Window) -> dict[str, str]:
        return {"N": str(int(window.ends_at) + _TTL_GRACE_SECONDS)}

    def _update_if(
        self, window: Window, update: str, condition: str, values: dict[str, dict[str, str]]
    ) -> dict[str, Any] | None:
        """One conditional update of the window's item: its new attributes, or None when the
        condition failed (the count already says otherwise)."""
        ddb = self._ddb()
        try:
            result = ddb.update_item(
                TableName=self.table_name,
                Key=self._key(window),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                # ALL_NEW, not UPDATED_NEW: the sandbox's moto server once answered a burst of
                # concurrent updates without ``calls`` (a KeyError parked an event); the item is tiny.
                ReturnValues="ALL_NEW",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return None
        attributes: dict[str, Any] = result["Attributes"]
        return attributes

    def take(self, window: Window, limit: int) -> bool:
        taken = self._update_if(
            window,
            "SET expires_at = if_not_exists(expires_at, :ttl) ADD calls :one",
            "attribute_not_exists(calls) OR calls < :limit",
            {":one": {"N": "1"}, ":limit": {"N": str(limit)}, ":ttl": self._ttl(window)},
        )
        if taken is None:
            self._remember(window, limit)
            return False
        self._remember(window, int(taken["calls"]["N"]))
        return True

    def give_back(self, window: Window) -> None:
        self._update_if(
            window, "ADD calls :minus", "calls > :zero", {":minus": {"N": "-1"}, ":zero": {"N": "0"}}
        )

    def raise_to(self, window: Window, used: int) -> None:
        if used <= self._seen.get(window.key, 0):
            return
        # A failed condition means the count is already at least that high.
        self._update_if(
            window,
            "SET calls = :used, expires_at = if_not_exists(expires_at, :ttl)",
            "attribute_not_exists(calls) OR calls < :used",
            {":used": {"N": str(used)}, ":ttl": self._ttl(window)},
        )
        self._remember(window, used)

    def used(self, window: Window) -> int:
        item = (
            self._ddb()
            .get_item(TableName=self.table_name, Key=self._key(window), ConsistentRead=True)
            .get("Item")
        )
        return int(item["calls"]["N"]) if item and "calls" in item else 0

    def _remember(self, window: Window, count: int) -> None:
        if len(self._seen) > 8:  # Old windows are never consulted again.
            self._seen = {k: v for k, v in self._seen.items() if k == window.key}
        self._seen[window.key] = max(self._seen.get(window.key, 0), count)


def reserve_of(limit: int, share: float) -> int:
    """The units of ``limit`` kept back by a ``share`` (rounded up: a reserve is never zero)."""
    return min(limit, math.ceil(limit * share)) if share > 0 else 0


class WindowedBudget:
    """The algorithm: take one unit from every window, or wait, or raise ``exhausted``."""

    def __init__(
        self,
        counts: WindowCounts,
        specs: Sequence[WindowSpec],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_inline_wait_seconds: float,
        exhausted: Callable[[float, str], Exception],
    ) -> None:
        if not specs:
            raise ValueError("a budget needs at least one window")
        self.counts = counts
        self.specs = tuple(specs)
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_inline_wait_seconds
        self._exhausted = exhausted

    def windows(self, now: float | None = None) -> tuple[Window, ...]:
        moment = self._clock() if now is None else now
        return tuple(window_at(moment, spec) for spec in self.specs)

    def take(self, *, keep_share: float = 0.0) -> None:
        """Take one unit, leaving ``keep_share`` of each window's limit for other callers (a
        caller that can wait, such as a poller, must not starve one that cannot)."""
        deadline = self._clock() + self._max_wait
        while True:
            now = self._clock()
            taken: list[Window] = []
            refused: tuple[WindowSpec, Window] | None = None
            for spec, window in zip(self.specs, self.windows(now), strict=True):
                if self.counts.take(window, window.limit - reserve_of(window.limit, keep_share)):
                    taken.append(window)
                    continue
                refused = spec, window
                break
            if refused is None:
                return
            # Do not leave a unit spent in one window on a call that is not going to happen.
            for window in reversed(taken):
                self.counts.give_back(window)
            spec, window = refused
            problem, wait = f"budget-{window.kind}", window.ends_at - now
            if not spec.wait_inline or now + wait > deadline:
                logger.info(
                    "call budget exhausted",
                    extra={"problem": problem, "retry_after": wait, "keep_share": keep_share},
                )
                raise self._exhausted(wait, problem)
            self._sleep(wait)

    def remaining(self, *, keep_share: float = 0.0) -> int:
        """Units a caller keeping ``keep_share`` may still take in the tightest window now."""
        return min(
            max(window.limit - reserve_of(window.limit, keep_share) - self.counts.used(window), 0)
            for window in self.windows()
        )
