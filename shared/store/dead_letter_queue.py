"""Reading the dead-letter queue and putting events back on the sync queue (replay).

A replayed event must not reuse its original ``MessageDeduplicationId``: SQS FIFO would drop it as
a repeat within its 5-minute window. :func:`requeue` gives each replay its own id; the sync step's
idempotency (event id + body hash) and its "not newer than what was written" check make a replay of
something already applied a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared import aws
from shared.models.events import SyncEvent
from shared.store.queue import DeadLetters, sqs_id


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    category: str | None
    reason: str | None
    receive_count: int
    # Times the product already put this event back after it ran out of deliveries.
    requeues: int = 0

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
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            empty_rounds += 1
            continue
        empty_rounds = 0
        for message in fresh:
            seen.add(message["MessageId"])
            attributes = message.get("MessageAttributes", {})
            yield DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message["Body"],
                category=attributes.get("failure_category", {}).get("StringValue"),
                reason=attributes.get("failure_reason", {}).get("StringValue"),
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                requeues=int(attributes.get(REQUEUES_ATTRIBUTE, {}).get("StringValue", "0") or 0),
            )


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


def requeue(queue_url: str, event: SyncEvent, *, replay_id: str) -> None:
    """Send ``event`` to the sync queue as a replay: same FIFO group, a fresh deduplication id."""
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=event.model_dump_json(),
        MessageGroupId=sqs_id(event.group_id),
        MessageDeduplicationId=sqs_id(f"replay:{replay_id}:{event.event_id}:{event.payload_sha256[:16]}"),
    )


# How often a dead letter without a reason is put back before it stays, now with one.
MAX_EXHAUSTED_REQUEUES = 3
REQUEUES_ATTRIBUTE = "requeues"


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
