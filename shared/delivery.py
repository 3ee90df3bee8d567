"""The sync's retry policy: when a queued event is tried again, and when it is parked in the DLQ;
and the delivery of one batch by it (:class:`BatchAttempt`), which the sync function runs.

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

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from shared.burst_order import DayReset, Rank, rank, rank_of_body, ranked
from shared.config import RetryRules
from shared.errors import LimitWait, PermanentSyncError, is_permanent, retry_delay_seconds
from shared.ignition.reporting import IgnitionRateLimited
from shared.models.events import SyncEvent
from shared.observability import Metric
from shared.store.attempts import NO_HISTORY, AttemptHistory
from shared.xero.errors import XeroRateLimited
from shared.xero_to_ignition.events import record_log_keys

# Limits that hold for the whole organisation (not one record, unlike a lock on one token set):
# once one record meets them, the rest of its batch waits too without spending calls.
RateLimitWait = (XeroRateLimited, IgnitionRateLimited)


class DeferredBehindLimit(LimitWait):
    """Not tried: an earlier record of the same batch met an organisation-wide rate limit."""

    def __init__(self, delay_seconds: int) -> None:
        super().__init__(f"deferred {delay_seconds}s behind a rate limit met earlier in the batch")
        self.retry_after = delay_seconds


class HeldByAnotherDelivery(LimitWait):
    """Another delivery of the same event is being handled (its idempotency record is in progress):
    SQS may hand a message out again once its visibility lapses. That delivery's outcome will be
    this one's, so this one waits its turn instead of counting a fault towards the DLQ; the record
    in progress expires with the other invocation (Powertools sets it to the Lambda's remaining
    time), so the wait ends."""

    def __init__(self, delay_seconds: int = 30) -> None:
        super().__init__(f"another delivery of this event is in progress; trying again in {delay_seconds}s")
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


# -- one batch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedMessage:
    """A sync queue message as the policy sees it (from an SQS record of the function's event)."""

    message_id: str
    body: str
    receipt_handle: str
    receives: int
    group_id: str | None


class DeadLetterSink(Protocol):
    def send(self, body: str, *, group_id: str, dedup_id: str, category: str, reason: str) -> None: ...


class VisibilityDelay(Protocol):
    def delay(self, receipt_handle: str, seconds: int) -> bool: ...


class FunctionLog(Protocol):
    """The function's structured logger (Powertools' ``Logger``): keys appended to every line."""

    def append_keys(self, **keys: object) -> None: ...

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


OUTCOME_METRICS: dict[tuple[str, str], Metric] = {
    ("client", "created"): Metric.CONTACTS_CREATED,
    ("client", "updated"): Metric.CONTACTS_UPDATED,
    ("invoice", "created"): Metric.INVOICES_CREATED,
    ("invoice", "updated"): Metric.INVOICES_UPDATED,
    ("invoice", "voided"): Metric.INVOICES_VOIDED,
    ("invoice", "drafted"): Metric.IGNITION_DRAFTS_CREATED,
    ("payment", "applied"): Metric.PAYMENTS_APPLIED,
}


@dataclass(frozen=True)
class SyncDelivery:
    """What the sync function delivers each batch with: the policy, the sync itself (``apply``,
    idempotent per event), the DLQ, the queue (to hold a message back), its metrics and its log."""

    policy: DeliveryPolicy
    apply: Callable[[SyncEvent], Mapping[str, object]]
    dead_letters: DeadLetterSink
    queue: VisibilityDelay
    count: Callable[[Metric], None]
    log: FunctionLog

    def dead_letter(self, message: QueuedMessage, group_id: str, verdict: GiveUp) -> None:
        # One deduplication id per failed message, not per event: a replay is a new message, so a
        # replay that fails again within FIFO's 5-minute deduplication window still lands in the DLQ.
        self.dead_letters.send(
            message.body,
            group_id=group_id,
            dedup_id=message.message_id,
            category=verdict.category,
            reason=verdict.reason,
        )
        self.count(Metric.EVENTS_FAILED_PERMANENT)
        # The reason stays in the (encrypted) DLQ message: Xero's messages can quote names.
        self.log.error(
            "event dead-lettered", extra={"category": verdict.category, "message_id": message.message_id}
        )

    def count_outcome(self, result: Mapping[str, object]) -> None:
        action = str(result.get("action"))
        self.count(Metric.EVENTS_SKIPPED_STALE if action == "skipped_stale" else Metric.EVENTS_SYNCED)
        metric = OUTCOME_METRICS.get((str(result.get("record_type")), action))
        if metric is not None:
            self.count(metric)
        if result.get("total_mismatch"):
            self.count(Metric.AMOUNT_MISMATCHES)


class BatchAttempt:
    """One invocation's view of its batch: which messages were tried, and how long each failed
    FIFO group must wait, so members handed back untried return with their group's head."""

    def __init__(self, delivery: SyncDelivery) -> None:
        self._delivery = delivery
        self.tried: set[str] = set()
        self.group_delays: dict[str, int] = {}
        # Set once a record of this batch waits for a limit (Xero's or Ignition's rate limit, the
        # call budget): the limit is the organisation's, so the rest of the batch waits with it
        # instead of each spending calls to find out.
        self.limit_delay: int | None = None
        # Set when that limit is the day's budget: each record waiting for it comes back at its
        # rank's turn after the reset (shared/burst_order.py), payments and the oldest first.
        self.day_reset: DayReset | None = None

    def handle(self, message: QueuedMessage) -> None:
        """Try one message; raises (the record fails, its FIFO group stops) when it is to be
        retried, returns when it succeeded or was dead-lettered."""
        delivery, policy = self._delivery, self._delivery.policy
        self.tried.add(message.message_id)
        if self.limit_delay is not None:
            self._defer(message, self.limit_delay)
        try:
            event = SyncEvent.model_validate_json(message.body)
        except ValidationError as exc:
            reason = f"queue message is not a SyncEvent: {exc.error_count()} error(s)"
            delivery.dead_letter(message, "malformed", GiveUp(category="malformed_message", reason=reason))
            return
        delivery.log.append_keys(
            correlation_id=event.correlation_id, event_id=event.event_id, **record_log_keys(event)
        )
        refused = policy.before_attempt(message.message_id, message.receives)
        if refused is not None:
            delivery.dead_letter(message, event.group_id, refused)
            return
        try:
            with ranked(rank(event)):  # the gathered calls it makes go in rank order
                result = delivery.apply(event)
        except Exception as exc:
            decision = policy.after_failure(message.message_id, message.receives, exc)
            if isinstance(decision, GiveUp):
                delivery.dead_letter(message, event.group_id, decision)
                return
            delivery.count(Metric.EVENTS_DEFERRED if decision.wait else Metric.EVENTS_FAILED_TRANSIENT)
            reset = DayReset.of(exc, time.time()) if decision.wait else None
            delay = self._staggered(rank(event), decision.delay_seconds, reset)
            self._keep(message, delay)
            if decision.wait and isinstance(exc, RateLimitWait):
                self.day_reset = reset  # before the delay, which other threads test first
                self.limit_delay = decision.delay_seconds
            # A wait is routine (a burst behind Xero's limits): info; a fault is worth a warning.
            (delivery.log.info if decision.wait else delivery.log.warning)(
                "event will be retried",
                extra={
                    "error": type(exc).__name__,
                    "wait": decision.wait,
                    "retry_in_seconds": delay,
                    "receives": message.receives,
                },
            )
            raise
        delivery.count_outcome(result)

    def _keep(self, message: QueuedMessage, delay: int) -> None:
        self._delivery.queue.delay(message.receipt_handle, delay)
        if message.group_id is not None:
            self.group_delays[message.group_id] = delay

    def _defer(self, message: QueuedMessage, delay: int) -> None:
        self._delivery.policy.untried([message.message_id])
        self._delivery.count(Metric.EVENTS_DEFERRED)
        self._keep(message, self._staggered(rank_of_body(message.body), delay, self.day_reset))
        raise DeferredBehindLimit(delay)

    def _staggered(self, value: Rank, delay: int, reset: DayReset | None) -> int:
        """A wait for the day's reset ends at the rank's turn after it; any other wait as the
        policy said."""
        if reset is None:
            return delay
        return reset.delay_for(value, time.time(), self._delivery.policy.rules.max_delay_seconds)

    def hand_back_untried(self, event: Mapping[str, Any], failed: set[str]) -> None:
        """Messages skipped behind a failed message of their group were not tried: record a wait
        for each (not a failure of theirs) and keep them as long as their group's head."""
        untried = [r for r in event.get("Records", []) if r["messageId"] in failed - self.tried]
        if not untried:
            return
        self._delivery.policy.untried([r["messageId"] for r in untried])
        for raw in untried:
            delay = self.group_delays.get(raw.get("attributes", {}).get("MessageGroupId", ""))
            if delay is not None:
                self._delivery.queue.delay(raw["receiptHandle"], delay)
