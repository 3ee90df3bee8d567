"""One reconciliation at a time, and what an on-demand run's requester can watch.

A run holds the ``reconcile-run`` lease lock in the state table for its whole invocation (the
lease outlives Lambda's 15-minute maximum), so a scheduled run and an on-demand one, or two
operators' ``reconcile --now``, never run at once: the second start is told a run is in progress.

The CLI reserves the lease *before* it invokes the function asynchronously
(``InvocationType=Event``), under a ticket that is the lease's owner; the function starts the run
under that ticket (once: a second delivery of the same invocation finds it started), notes each
phase on the lock item, writes the outcome under the ticket and releases. The CLI polls those two
items until the outcome is there. Items (key ``pk`` S + ``sk`` S)::

    pk="lock#reconcile-run"  sk="lock"   owner=<ticket>  lease_until  requested_at  started_at
                                          phase  phase_at
    pk="reconcile#ticket"    sk=<ticket> body=<the handler's response, or a failure/skip>  expires_at

A retried async invocation (Lambda retries a failed Event twice) finds its ticket's outcome and
does not run again.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from shared import aws
from shared.store.documents import StoredDocument

RUN_LOCK = "reconcile-run"
# Longer than Lambda's 15-minute maximum: a run that dies is cleared by the lease running out.
RUN_LEASE_SECONDS = 16 * 60.0
# Outcomes are for the requester to read back; a day is plenty.
OUTCOME_TTL_SECONDS = 24 * 3600
_OUTCOME_PK = "reconcile#ticket"


def new_ticket() -> str:
    return uuid.uuid4().hex


_LOCK_KEY = {"pk": {"S": f"lock#{RUN_LOCK}"}, "sk": {"S": "lock"}}


def _held_by(ticket: str, also: str | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The condition of a write to the lock item: ``ticket`` holds it (``and also``, with
    ``values`` for ``also``'s and the update's placeholders)."""
    return {
        "ConditionExpression": "#owner = :me" + (f" AND {also}" if also else ""),
        "ExpressionAttributeNames": {"#owner": "owner"},
        "ExpressionAttributeValues": {":me": {"S": ticket}, **(values or {})},
    }


def _num(value: float) -> str:
    return f"{value:.3f}"


def reserve(table: str, ticket: str, now: float | None = None) -> bool:
    """Take the lease for a run not started yet (phase ``queued``); False while another run holds
    it. Same item layout as :class:`shared.store.locks.DynamoLeaseLock`."""
    moment = time.time() if now is None else now
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(
            TableName=table,
            Item={
                **_LOCK_KEY,
                "owner": {"S": ticket},
                "lease_until": {"N": _num(moment + RUN_LEASE_SECONDS)},
                "expires_at": {"N": str(math.ceil(moment + RUN_LEASE_SECONDS) + OUTCOME_TTL_SECONDS)},
                "requested_at": {"S": _iso(moment)},
                "phase": {"S": "queued"},
            },
            ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
            ExpressionAttributeValues={":now": {"N": _num(moment)}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def start(table: str, ticket: str, now: float | None = None) -> bool:
    """Mark the reserved run started, once: False if ``ticket`` does not hold the lease or a run
    under it already started (a second delivery of the same asynchronous invocation)."""
    moment = time.time() if now is None else now
    ddb = aws.client("dynamodb")
    try:
        ddb.update_item(
            TableName=table,
            Key=_LOCK_KEY,
            UpdateExpression=(
                "SET started_at = :started, phase = :phase, phase_at = :started, lease_until = :until"
            ),
            **_held_by(
                ticket,
                "lease_until >= :now AND attribute_not_exists(started_at)",
                {
                    ":started": {"S": _iso(moment)},
                    ":phase": {"S": "starting"},
                    ":until": {"N": _num(moment + RUN_LEASE_SECONDS)},
                    ":now": {"N": _num(moment)},
                },
            ),
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def release(table: str, ticket: str) -> None:
    ddb = aws.client("dynamodb")
    with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
        ddb.delete_item(TableName=table, Key=_LOCK_KEY, **_held_by(ticket))


def note_phase(table: str, ticket: str, phase: str) -> None:
    """Record the phase on the lock item while ``ticket`` holds it (progress for the requester)."""
    ddb = aws.client("dynamodb")
    with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(
            TableName=table,
            Key=_LOCK_KEY,
            UpdateExpression="SET phase = :phase, phase_at = :at",
            **_held_by(ticket, values={":phase": {"S": phase}, ":at": {"S": _iso(time.time())}}),
        )


def current_run(table: str, now: float | None = None) -> dict[str, str] | None:
    """The run holding the lock (its ticket, phase, times), or None when none does."""
    item = aws.client("dynamodb").get_item(TableName=table, Key=_LOCK_KEY, ConsistentRead=True).get("Item")
    if item is None or float(item["lease_until"]["N"]) < (time.time() if now is None else now):
        return None
    fields = {k: v["S"] for k, v in item.items() if "S" in v and k not in ("pk", "sk")}
    fields["ticket"] = fields.pop("owner", "")
    return fields


def save_outcome(table: str, ticket: str, body: dict[str, Any]) -> None:
    StoredDocument(table, _OUTCOME_PK, ticket).write(
        json.dumps(body, default=str), expires_at={"N": str(math.ceil(time.time()) + OUTCOME_TTL_SECONDS)}
    )


def outcome(table: str, ticket: str) -> dict[str, Any] | None:
    body = StoredDocument(table, _OUTCOME_PK, ticket).read()
    return None if body is None else dict(json.loads(body))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")
