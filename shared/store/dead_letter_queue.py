"""The dead-letter queue's message format, and reading it, writing it and putting events back on
the sync queue (replay). This module is the only one that knows the format.

A dead letter's body is an envelope, ``{"dead_letter": 1, "event": ..., "failure_reason": ...}``:
``event`` is the dead-lettered SyncEvent as a JSON object, or the raw queue body as a string when
it was not one. Only ``failure_category`` (a fixed word, never personal data) is a message
attribute: SQS server-side encryption covers the body but not "message metadata (message ID,
timestamp, and attributes)" (Amazon SQS Developer Guide, encryption at rest), and the reason can
quote a client's name or e-mail address (Xero's validation messages do). Messages written before
the envelope (a bare SyncEvent body, the reason in a ``failure_reason`` attribute) still read.

A replayed event must not reuse its original ``MessageDeduplicationId``: SQS FIFO would drop it as
a repeat within its 5-minute window. :func:`requeue` gives each replay its own id; the sync step's
idempotency (event id + body hash) and its "not newer than what was written" check make a replay of
something already applied a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared import aws
from shared.models.events import SyncEvent
from shared.store.queue import sqs_id

ENVELOPE_VERSION = 1
# The envelope's fields (in the body) and the message attributes, written and read only here.
ENVELOPE_FIELD = "dead_letter"
EVENT_FIELD = "event"
REASON_FIELD = "failure_reason"
CATEGORY_ATTRIBUTE = "failure_category"
# Where the reason was before the envelope; read only, so older messages keep their reason.
LEGACY_REASON_ATTRIBUTE = REASON_FIELD
MAX_REASON_CHARS = 4_000
# SQS's limit is 256 KiB for body and attributes together; the margin covers the attributes.
MAX_BODY_BYTES = 256 * 1024 - 2_048
# How often a dead letter without a reason is put back before it stays, now with one.
MAX_EXHAUSTED_REQUEUES = 3
REQUEUES_ATTRIBUTE = "requeues"
RECEIVE_COUNT_ATTRIBUTE = "ApproximateReceiveCount"
# How long a dead letter read only to be looked at (the reconciliation's report, the CLI's status)
# stays hidden from other readers before it is made visible again.
DLQ_PEEK_SECONDS = 20


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _envelope(data: Any) -> dict[str, Any] | None:
    if isinstance(data, dict) and data.get(ENVELOPE_FIELD) == ENVELOPE_VERSION and EVENT_FIELD in data:
        return data
    return None


def _envelope_body(event: dict[str, Any] | str, reason: str) -> str:
    return _json({ENVELOPE_FIELD: ENVELOPE_VERSION, EVENT_FIELD: event, REASON_FIELD: reason})


def _loads(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _event_part(body: str) -> dict[str, Any] | str:
    """The SyncEvent as an object when ``body`` is one, else the raw body string."""
    data = _loads(body)
    if isinstance(data, dict):
        try:
            SyncEvent.model_validate(data)
        except ValidationError:
            return body
        return data
    return body


def encode_dead_letter(body: str, reason: str) -> str:
    """The DLQ body for the sync-queue message ``body`` parked for ``reason``: within SQS's size
    limit, the reason cut to fit (and, for an oversized event, its record dropped)."""
    wrapped = _envelope(_loads(body))
    if wrapped is not None:  # already a dead letter (one kept again): wrap its event, not it
        body = wrapped[EVENT_FIELD] if isinstance(wrapped[EVENT_FIELD], str) else _json(wrapped[EVENT_FIELD])
    event = _event_part(body)
    reason = reason[:MAX_REASON_CHARS]

    def size(event: dict[str, Any] | str, reason: str) -> int:
        return len(_envelope_body(event, reason).encode())

    if isinstance(event, dict) and event.get("record") is not None and size(event, "") > MAX_BODY_BYTES:
        # As for an oversized sync-queue message: the sync reads the record from Ignition instead.
        event = {**event, "record": None}
    if size(event, reason) > MAX_BODY_BYTES:
        # The longest start of the reason that fits (characters and escapes vary in bytes).
        low, high = 0, len(reason)
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (
                (middle, high) if size(event, reason[:middle]) <= MAX_BODY_BYTES else (low, middle - 1)
            )
        reason = reason[:low]
    while (overflow := size(event, reason) - MAX_BODY_BYTES) > 0 and isinstance(event, str):
        event = event[: max(0, len(event) - overflow)]  # a malformed body: kept in part, for a person
    return _envelope_body(event, reason)


@dataclass(frozen=True)
class DecodedDeadLetter:
    body: str  # the message as it was on the sync queue
    category: str | None
    reason: str | None


def decode_dead_letter(body: str, attributes: Mapping[str, Any]) -> DecodedDeadLetter:
    """Read a DLQ message, envelope or legacy (bare body, reason in an attribute)."""
    category = attributes.get(CATEGORY_ATTRIBUTE, {}).get("StringValue")
    legacy_reason = attributes.get(LEGACY_REASON_ATTRIBUTE, {}).get("StringValue")
    wrapped = _envelope(_loads(body))
    if wrapped is None:
        return DecodedDeadLetter(body=body, category=category, reason=legacy_reason)
    event = wrapped[EVENT_FIELD]
    reason = wrapped.get(REASON_FIELD)
    return DecodedDeadLetter(
        body=event if isinstance(event, str) else _json(event),
        category=category,
        reason=reason if isinstance(reason, str) else legacy_reason,
    )


class DeadLetters:
    """Sends what a person must look at straight to the DLQ, with the reason, so it is neither
    retried pointlessly nor lost."""

    def __init__(self, dlq_url: str) -> None:
        self._url = dlq_url

    def send(self, body: str, *, group_id: str, dedup_id: str, category: str, reason: str) -> None:
        aws.client("sqs").send_message(
            QueueUrl=self._url,
            MessageBody=encode_dead_letter(body, reason),
            MessageGroupId=sqs_id(group_id),
            MessageDeduplicationId=sqs_id(f"dead:{dedup_id}"),
            MessageAttributes={CATEGORY_ATTRIBUTE: {"DataType": "String", "StringValue": category}},
        )


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str  # the dead-lettered message as it was on the sync queue (out of its envelope)
    category: str | None
    reason: str | None
    receive_count: int
    # Times the product already put this event back after it ran out of deliveries.
    requeues: int = 0

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        """From one message of an SQS ``receive_message`` answer."""
        attributes = message.get("MessageAttributes", {})
        decoded = decode_dead_letter(message["Body"], attributes)
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=decoded.body,
            category=decoded.category,
            reason=decoded.reason,
            receive_count=int(message.get("Attributes", {}).get(RECEIVE_COUNT_ATTRIBUTE, "1")),
            requeues=int(attributes.get(REQUEUES_ATTRIBUTE, {}).get("StringValue", "0") or 0),
        )

    def event(self) -> SyncEvent | None:
        try:
            return SyncEvent.model_validate_json(self.body)
        except ValueError:
            return None

    def summary(self) -> dict[str, Any]:
        event = self.event()
        return {
            "message_id": self.message_id,
            "event_id": event.event_id if event else None,
            "event_type": event.event_type if event else None,
            "record_id": event.record_id if event else None,
            "category": self.category,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int


def queue_depth(queue_url: str) -> QueueDepth:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return QueueDepth(
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def receive_dead_letters(
    dlq_url: str, *, visibility_seconds: int, max_messages: int = 1_000
) -> Iterator[DeadLetter]:
    """Receive DLQ messages (each becomes invisible for ``visibility_seconds``) until none is left
    or ``max_messages`` were seen. The caller deletes what it handled and releases the rest."""
    sqs = aws.client("sqs")
    seen: set[str] = set()
    empty_rounds = 0
    while len(seen) < max_messages and empty_rounds < 2:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, max_messages - len(seen)),
            VisibilityTimeout=visibility_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=[RECEIVE_COUNT_ATTRIBUTE],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            empty_rounds += 1
            continue
        empty_rounds = 0
        for message in fresh:
            seen.add(message["MessageId"])
            yield DeadLetter.from_message(message)


def delete_dead_letter(dlq_url: str, letter: DeadLetter) -> None:
    aws.client("sqs").delete_message(QueueUrl=dlq_url, ReceiptHandle=letter.receipt_handle)


def release_dead_letters(dlq_url: str, letters: list[DeadLetter]) -> None:
    """Make received but unhandled messages visible again at once."""
    sqs = aws.client("sqs")
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(chunk)
            ],
        )


def peek_dead_letters(
    dlq_url: str, *, limit: int, visibility_seconds: int = DLQ_PEEK_SECONDS
) -> list[DeadLetter]:
    """Read up to ``limit`` DLQ messages without consuming them: each is received (hidden for
    ``visibility_seconds``, so the next receive returns others), then made visible again at once,
    for the operator's replay must find them."""
    letters = list(receive_dead_letters(dlq_url, visibility_seconds=visibility_seconds, max_messages=limit))
    release_dead_letters(dlq_url, letters)
    return letters


@dataclass(frozen=True)
class DeadLetterInfo:
    """What the reconciliation's report says of a dead letter."""

    record_type: str
    record_id: str
    category: str
    reason: str

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterInfo:
        event = letter.event()
        if event is not None:
            record_type, record_id = str(event.record_type), event.record_id
        else:
            record_type, record_id = "client", f"malformed:{letter.message_id}"
        return cls(
            record_type=record_type,
            record_id=record_id,
            category=letter.category or "unknown",
            reason=letter.reason or "no reason recorded",
        )


class SqsDeadLetters:
    """The reconciliation's view of the DLQ: read, never consumed."""

    def __init__(self, dlq_url: str) -> None:
        self._url = dlq_url

    def read(self, limit: int) -> list[DeadLetterInfo]:
        return [DeadLetterInfo.of(letter) for letter in peek_dead_letters(self._url, limit=limit)]


def requeue(queue_url: str, event: SyncEvent, *, replay_id: str) -> None:
    """Send ``event`` to the sync queue as a replay: same FIFO group, a fresh deduplication id."""
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=event.model_dump_json(),
        MessageGroupId=sqs_id(event.group_id),
        MessageDeduplicationId=sqs_id(f"replay:{replay_id}:{event.event_id}:{event.payload_sha256[:16]}"),
    )


@dataclass(frozen=True)
class ExhaustedRequeue:
    requeued: int
    kept: int


def requeue_exhausted(
    dlq_url: str,
    queue_url: str,
    *,
    max_requeues: int = MAX_EXHAUSTED_REQUEUES,
    limit: int = 1_000,
    visibility_seconds: int = 60,
) -> ExhaustedRequeue:
    """Put back on the sync queue every dead letter that carries no failure reason.

    Such a message was moved by the queue's redrive policy: it ran out of deliveries, which says
    nothing about the event itself (the sync parks what it gives up on with a category and reason).
    Each goes back at most ``max_requeues`` times (counted in a message attribute, which SQS keeps
    through redrive); after that it is put back in the DLQ with a reason, so a person sees it.
    """
    sqs = aws.client("sqs")
    requeued = kept = 0
    with_reason: list[DeadLetter] = []
    for letter in receive_dead_letters(dlq_url, visibility_seconds=visibility_seconds, max_messages=limit):
        if letter.category is not None:
            with_reason.append(letter)
            continue
        event = letter.event()
        times = letter.requeues
        if event is None or times >= max_requeues:
            DeadLetters(dlq_url).send(
                letter.body,
                group_id=event.group_id if event else "malformed",
                dedup_id=f"exhausted:{letter.message_id}",
                category="receives_exhausted",
                reason=(
                    f"ran out of queue deliveries {times + 1} times and was put back {times} times; "
                    "the sync function may be failing to start or timing out: check its errors, "
                    "then replay"
                ),
            )
            kept += 1
        else:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=event.model_dump_json(),
                MessageGroupId=sqs_id(event.group_id),
                MessageDeduplicationId=sqs_id(f"requeue:{letter.message_id}"),
                MessageAttributes={REQUEUES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(times + 1)}},
            )
            requeued += 1
        delete_dead_letter(dlq_url, letter)
    # Visible again at once: the report and the operator's replay must find them.
    release_dead_letters(dlq_url, with_reason)
    return ExhaustedRequeue(requeued=requeued, kept=kept)
