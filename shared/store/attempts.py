"""How often each queued message was tried, and why it came back: the sync's own delivery count.

SQS's ``ApproximateReceiveCount`` counts every delivery alike: a wait for Xero's rate limit spends
one as surely as a 5xx does. This ledger tells them apart, so the retry policy
(:mod:`shared.delivery`) can give up on faults only.

Item layout (state table, key ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="attempts#<SQS message id>"  sk="attempts"
    waits=<N>  faults=<N>  starts=<N>  finished=<N>
    last_error=<S: error type and message>  last_error_unexpected=<BOOL>
    expires_at=<N epoch seconds>   # TTL: after the queue's 14-day retention nothing can come back

The SQS message id is stable across redeliveries of one message; a replay is a new message with
a fresh count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shared import aws

# SQS keeps a message at most 14 days; a day more covers clock skew and the TTL sweeper's lag.
_RETENTION_SECONDS = 15 * 24 * 3600
_LAST_ERROR_MAX_CHARS = 1_000


@dataclass(frozen=True)
class AttemptHistory:
    """What earlier deliveries of one message recorded."""

    waits: int = 0
    faults: int = 0
    # Redeliveries on which the sync started work on this very message, and how many of those
    # ended by recording a wait or a fault. A start without an end: the function died on it.
    starts: int = 0
    finished: int = 0
    last_error: str | None = None
    # The last error was one nothing classified (a bug) rather than a known transient fault.
    last_error_unexpected: bool = False

    def unexplained(self) -> int:
        """Earlier tries of this message that ended without recording anything: the function was
        killed (timeout, out of memory) while working on it. Deliveries on which the function died
        before reaching the message (behind another record of the batch) are not counted: they
        say nothing about this event. The current try (the last start) is not counted either."""
        return max(self.starts - 1 - self.finished, 0)


NO_HISTORY = AttemptHistory()


class DynamoAttemptLedger:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._clock = clock

    def start(self, message_id: str) -> AttemptHistory:
        """Work on a redelivered message begins: count it and return what earlier tries recorded
        (one write, which also serves as the read)."""
        return self._add(message_id, ("starts",))

    def add_waits(self, message_ids: Iterable[str], *, finished: bool = False) -> None:
        """One wait for each message: it came back untouched (a limit, or behind its group's head).
        ``finished``: the wait ends a try that :meth:`start` counted."""
        for message_id in message_ids:
            self._add(message_id, ("waits", "finished") if finished else ("waits",))

    def add_fault(
        self, message_id: str, error: str, *, unexpected: bool, finished: bool = False
    ) -> AttemptHistory:
        """Record a failed try and return the history including it."""
        counters = ("faults", "finished") if finished else ("faults",)
        return self._add(message_id, counters, error[:_LAST_ERROR_MAX_CHARS], unexpected)

    def _add(
        self,
        message_id: str,
        counters: tuple[str, ...],
        error: str | None = None,
        unexpected: bool = False,
    ) -> AttemptHistory:
        names = {f"#n{i}": counter for i, counter in enumerate(counters)}
        names["#ttl"] = "expires_at"
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":ttl": {"N": str(int(self._clock()) + _RETENTION_SECONDS)},
        }
        expression = f"ADD {', '.join(f'#n{i} :one' for i in range(len(counters)))} SET #ttl = :ttl"
        if error is not None:
            expression += ", #e = :e, #u = :u"
            names.update({"#e": "last_error", "#u": "last_error_unexpected"})
            values.update({":e": {"S": error}, ":u": {"BOOL": unexpected}})
        item = aws.client("dynamodb").update_item(
            TableName=self._table,
            Key=self._key(message_id),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _history(item)

    @staticmethod
    def _key(message_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"attempts#{message_id}"}, "sk": {"S": "attempts"}}


def _history(item: dict[str, Any]) -> AttemptHistory:
    return AttemptHistory(
        waits=int(item.get("waits", {}).get("N", "0")),
        faults=int(item.get("faults", {}).get("N", "0")),
        starts=int(item.get("starts", {}).get("N", "0")),
        finished=int(item.get("finished", {}).get("N", "0")),
        last_error=item.get("last_error", {}).get("S"),
        last_error_unexpected=bool(item.get("last_error_unexpected", {}).get("BOOL", False)),
    )
