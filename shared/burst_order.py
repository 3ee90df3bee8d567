"""Which records of a burst get the day's last Xero calls, and in what order the rest come back
after the day's budget returns (docs/batching.md, "When a burst is larger than today's budget").

One rank for both: payments first, then the oldest change. A change's time is its event's
``occurred_at``: Ignition's time of the change for a webhook, the record's ``updated_at`` for the
poller, the moment of the repair for the reconciliation.

* **Within a batch** the records (one record at a time) and the gathered calls (``shared/gather.py``)
  go in rank order, so when the budget runs out part-way it is the lower ranks that wait. The order
  across clients only: one client's events stay in their queue order (:func:`in_rank_order` merges
  the FIFO groups by their heads), so a contact still comes before its invoices, an invoice before
  its payments, and a newer change never before an older one of the same client.
* **After the day's reset** (our day budget spent, or Xero's day limit) a record waiting for it is
  kept invisible until the reset plus its rank's offset (:meth:`DayReset.delay_for`): payments in
  the first minute, then changes one second later per two minutes of change time, those 24 hours or
  more older than the reset first: 13 minutes in all, less than a Starter-tier day's budget takes
  at the minute rate (960 calls at 55 a minute, 17.5 minutes), so a backlog of a day or more lands
  no later for it (``shared/backlog.py`` counts the window for a smaller one). The return time is
  anchored to the reset, not to when the record was told to wait, so records deferred at any time
  of the day come back in rank order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

from pydantic import ValidationError

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.xero.errors import XeroRateLimited

T = TypeVar("T")

# (0 for a payment else 1, the change's epoch seconds): lower goes first.
Rank = tuple[int, float]
# A message that is not a SyncEvent goes last (it is parked as malformed when its turn comes).
UNRANKED: Rank = (2, math.inf)

# After the reset: payments within the first minute, then changes at one second per two minutes of
# change time over the 24 hours before the reset (12 minutes), older ones at the start.
PAYMENT_BAND_SECONDS = 60
CHANGE_SECONDS_PER_SECOND = 120
CHANGE_HORIZON_SECONDS = 24 * 3600
STAGGER_SECONDS = PAYMENT_BAND_SECONDS + CHANGE_HORIZON_SECONDS // CHANGE_SECONDS_PER_SECOND

# Xero's X-Rate-Limit-Problem for its day limit, and our own day budget's problem.
_DAY_PROBLEMS = frozenset({"day", "budget-day"})

_current: ContextVar[Rank | None] = ContextVar("burst_rank", default=None)


def rank(event: SyncEvent) -> Rank:
    changed = event.occurred_at
    if changed.tzinfo is None:  # a naive time is UTC, as everywhere in the sync
        changed = changed.replace(tzinfo=UTC)
    return (0 if event.record_type == RecordType.PAYMENT else 1, changed.timestamp())


def rank_of_body(body: str) -> Rank:
    try:
        return rank(SyncEvent.model_validate_json(body))
    except ValidationError:
        return UNRANKED


def in_rank_order(items: Sequence[T], group: Callable[[T], str], rank_of: Callable[[T], Rank]) -> list[T]:
    """``items`` with their groups merged by rank: each step takes the best-ranked head of a group,
    so one group's items keep their order (a later one of a group never passes an earlier one,
    whatever its own rank), and ties keep the original order."""
    queues: dict[str, list[T]] = {}
    for item in items:
        queues.setdefault(group(item), []).append(item)
    heads = [(rank_of(queue[0]), order, key, 0) for order, (key, queue) in enumerate(queues.items())]
    heapq.heapify(heads)
    ordered: list[T] = []
    while heads:
        _, order, key, index = heapq.heappop(heads)
        queue = queues[key]
        ordered.append(queue[index])
        if index + 1 < len(queue):
            heapq.heappush(heads, (rank_of(queue[index + 1]), order, key, index + 1))
    return ordered


@contextmanager
def ranked(value: Rank) -> Iterator[None]:
    """The rank of the record this thread is syncing, for the calls it makes meanwhile."""
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)


def current_rank() -> Rank | None:
    return _current.get()


@dataclass(frozen=True)
class DayReset:
    """When the day's Xero budget returns (epoch seconds)."""

    at: float

    @staticmethod
    def of(exc: BaseException, now: float) -> DayReset | None:
        """The reset ``exc`` waits for, when it is a wait for the day's budget (ours or Xero's)."""
        if not isinstance(exc, XeroRateLimited) or (exc.problem or "").lower() not in _DAY_PROBLEMS:
            return None
        return DayReset(now + max(exc.retry_after, 0.0))

    def offset_seconds(self, value: Rank) -> int:
        """How long after the reset a record of this rank comes back (see the module docstring)."""
        kind, changed = value
        if kind > 1:
            return STAGGER_SECONDS
        newer = min(max(changed - (self.at - CHANGE_HORIZON_SECONDS), 0.0), float(CHANGE_HORIZON_SECONDS))
        if kind == 0:
            return int(newer / CHANGE_HORIZON_SECONDS * (PAYMENT_BAND_SECONDS - 1))
        return PAYMENT_BAND_SECONDS + int(newer // CHANGE_SECONDS_PER_SECOND)

    def delay_for(self, value: Rank, now: float, max_delay_seconds: int) -> int:
        """The visibility delay that brings a record of this rank back at its turn after the reset.
        Where that is beyond ``max_delay_seconds`` (SQS's 12 hours) it comes back just before the
        reset instead, and is placed then: never early after the reset, which would lose its turn."""
        until = max(math.ceil(self.at - now), 0) + 1
        wanted = until + self.offset_seconds(value)
        if wanted <= max_delay_seconds:
            return wanted
        return max(min(max_delay_seconds, until - 2), 1)


def records_in_rank_order(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """An SQS event's records in rank order, each FIFO group's in queue order (the one-record
    sync's batch: the records tried first get the day's last calls)."""
    return in_rank_order(
        records,
        group=lambda r: str(r.get("attributes", {}).get("MessageGroupId") or f"message:{r['messageId']}"),
        rank_of=lambda r: rank_of_body(str(r.get("body", ""))),
    )
