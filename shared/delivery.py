"""The sync's retry policy: when a queued event is tried again, and when it is parked in the DLQ.

Three kinds of failure, three answers:

* a wait (:class:`shared.errors.LimitWait`: a rate limit, the call budget, a lock) comes back
  after exactly the time the limit names, and is never counted against the event;
* a fault (a 5xx that outlasted in-process retries, a timeout, an unexpected error) comes back with
  exponential backoff, and after ``max_fault_attempts`` the event is parked with its last error;
* a permanent failure (:class:`shared.errors.PermanentSyncError`, a validation error) is parked
  at once with its category and reason.

Tries that ended with nothing recorded (the function was killed while working on this very
message) are counted on their own; after ``max_unexplained_receives`` the event is parked saying
so. A delivery on which the function died before reaching the message is not counted against it.
The queue's redrive policy is only a backstop far above these numbers, so nothing reaches the DLQ
without a reason unless the function cannot start at all (and even that is re-queued:
:func:`shared.store.dead_letter_queue.requeue_exhausted`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.config import RetryRules
from shared.errors import LimitWait, PermanentSyncError, is_permanent, retry_delay_seconds
from shared.ignition.reporting import IgnitionRateLimited
from shared.store.attempts import NO_HISTORY, AttemptHistory
from shared.xero.errors import XeroRateLimited

# Limits that hold for the whole organisation (not one record, unlike a lock on one token set):
# once one record meets them, the rest of its batch waits too without spending calls.
RateLimitWait = (XeroRateLimited, IgnitionRateLimited)


class DeferredBehindLimit(LimitWait):
    """Not tried: an earlier record of the same batch met an organisation-wide rate limit."""

    def __init__(self, delay_seconds: int) -> None:
        super().__init__(f"deferred {delay_seconds}s behind a rate limit met earlier in the batch")
        self.retry_after = delay_seconds


class AttemptLedger(Protocol):
    def start(self, message_id: str) -> AttemptHistory: ...

    def add_waits(self, message_ids: list[str], *, finished: bool = False) -> None: ...

    def add_fault(
        self, message_id: str, error: str, *, unexpected: bool, finished: bool = False
    ) -> AttemptHistory: ...


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: int
    # True: a limit or a lock (not counted against the event); False: a counted fault.
    wait: bool
    error: str


@dataclass(frozen=True)
class GiveUp:
    """Park the event in the DLQ with a category a person (and ``cli replay --category``) can use."""

    category: str
    reason: str


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class DeliveryPolicy:
    def __init__(self, ledger: AttemptLedger, rules: RetryRules) -> None:
        self.ledger = ledger
        self.rules = rules

    def before_attempt(self, message_id: str, receive_count: int) -> GiveUp | None:
        """Refuse to try again what already failed as often as the rules allow. The first delivery
        costs nothing (a death during it goes uncounted: at most one); a redelivery one write."""
        history = NO_HISTORY if receive_count <= 1 else self.ledger.start(message_id)
        if history.faults >= self.rules.max_fault_attempts:
            # The last fault was recorded but the function died before parking the event.
            return self._exhausted(history)
        unexplained = history.unexplained()
        if unexplained >= self.rules.max_unexplained_receives:
            return GiveUp(
                category="receives_exhausted",
                reason=(
                    f"the sync function stopped {unexplained} times while handling this event without "
                    "recording an error (a timeout or a crash: see the sync function's logs and "
                    f"duration); last recorded error: {history.last_error or 'none'}"
                ),
            )
        return None

    def after_failure(self, message_id: str, receive_count: int, exc: BaseException) -> RetryLater | GiveUp:
        if is_permanent(exc):
            category = exc.category if isinstance(exc, PermanentSyncError) else type(exc).__name__
            return GiveUp(category=category, reason=str(exc))
        started = receive_count > 1  # before_attempt counted a start only then
        if isinstance(exc, LimitWait):
            self.ledger.add_waits([message_id], finished=started)
            delay = retry_delay_seconds(exc, receive_count, max_delay_seconds=self.rules.max_delay_seconds)
            return RetryLater(delay_seconds=delay, wait=True, error=describe(exc))
        # None from is_permanent: nothing classified this error (a bug); False: a known transient.
        history = self.ledger.add_fault(
            message_id, describe(exc), unexpected=is_permanent(exc) is None, finished=started
        )
        if history.faults >= self.rules.max_fault_attempts:
            return self._exhausted(history)
        # Backoff grows with the faults, not with the deliveries spent waiting for a limit.
        delay = retry_delay_seconds(exc, history.faults, max_delay_seconds=self.rules.max_delay_seconds)
        return RetryLater(delay_seconds=delay, wait=False, error=describe(exc))

    def untried(self, message_ids: list[str]) -> None:
        """Messages handed back without being tried (behind a failed message of their FIFO group):
        not their own failure, so a wait."""
        if message_ids:
            self.ledger.add_waits(message_ids)

    def _exhausted(self, history: AttemptHistory) -> GiveUp:
        # An unexpected error (a bug, an unclassified exception) is told apart from a transient
        # fault that simply did not clear in time.
        return GiveUp(
            category="unexpected_error" if history.last_error_unexpected else "retries_exhausted",
            reason=(
                f"gave up after {history.faults} failed tries (waits for rate limits not counted); "
                f"last error: {history.last_error or 'unknown'}"
            ),
        )
