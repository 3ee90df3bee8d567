"""How often each queued message was tried, and why it came back: the sync's own delivery count.

SQS's ``ApproximateReceiveCount`` counts every delivery alike: a wait for Xero's rate limit spends
one as surely as a 5xx does. This ledger tells them apart, so the retry policy
(:mod:`shared.delivery`) can give up on faults only.

Item layout (state table, key ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="attempts#<SQS message id>"  sk="attempts"
    waits=<N>  faults=<N>  last_error=<S: error type and message>  last_error_unexpected=<BOOL>
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
    last_error: str | None = None
    # The last error was one nothing classified (a bug) rather than a known transient fault.
    last_error_unexpected: bool = False

    def unexplained(self, receive_count: int) -> int:
        """Earlier deliveries that ended without recording anything: the function was killed
        (timeout, out of memory) before it could say why."""
        return max(receive_count - 1 - self.waits - self.faults, 0)


NO_HISTORY = AttemptHistory()


class DynamoAttemptLedger:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._clock = clock

    def history(self, message_id: str) -> AttemptHistory:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=self._key(message_id), ConsistentRead=True)
            .get("Item")
        )
        return NO_HISTORY if item is None else _history(item)

    def add_waits(self, message_ids: Iterable[str]) -> None:
        """One wait for each message: it came back untouched (a limit, or behind its group's head)."""
        for message_id in message_ids:
            self._add(message_id, "waits")

    def add_fault(self, message_id: str, error: str, *, unexpected: bool) -> AttemptHistory:
        """Record a failed try and return the history including it."""
        return self._add(message_id, "faults", error[:_LAST_ERROR_MAX_CHARS], unexpected)

    def _add(
        self, message_id: str, counter: str, error: str | None = None, unexpected: bool = False
    ) -> AttemptHistory:
        names = {"#n": counter, "#ttl": "expires_at"}
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":ttl": {"N": str(int(self._clock()) + _RETENTION_SECONDS)},
        }
        expression = "ADD #n :one SET #ttl = :ttl"
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
        last_error=item.get("last_error", {}).get("S"),
        last_error_unexpected=bool(item.get("last_error_unexpected", {}).get("BOOL", False)),
    )
