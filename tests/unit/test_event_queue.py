from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared import aws
from shared.models.events import SyncEvent
from shared.store.queue import SQS_MAX_MESSAGE_BYTES, SqsEventQueue
from tests.sync_events import sync_event


@pytest.fixture
def queue_url(aws_each: None) -> str:
    url: str = aws.client("sqs").create_queue(QueueName="sync.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    return url


def event(notes: str) -> SyncEvent:
    now = datetime(2026, 11, 1, tzinfo=UTC).isoformat()
    record = {"slug": "cli_1", "name": "A", "notes": notes, "created_at": now, "updated_at": now}
    return sync_event("cli_1", record, event_id="evt_big")


def received(url: str) -> dict[str, object]:
    (message,) = aws.client("sqs").receive_message(QueueUrl=url)["Messages"]
    body: dict[str, object] = json.loads(message["Body"])
    return body


def test_given_event_within_sqs_limit_when_sent_then_the_record_travels_with_it(queue_url: str) -> None:
    SqsEventQueue(queue_url).send(event("short"))
    assert received(queue_url)["record"] is not None


def test_given_record_too_big_for_sqs_when_sent_then_it_goes_as_a_hint_instead_of_failing(
    queue_url: str,
) -> None:
    SqsEventQueue(queue_url).send(event("x" * SQS_MAX_MESSAGE_BYTES))

    body = received(queue_url)
    assert body["record"] is None
    assert body["event_id"] == "evt_big" and body["record_id"] == "cli_1"


def test_given_receipt_no_longer_valid_when_delaying_a_retry_then_the_queue_keeps_its_own_timeout(
    queue_url: str,
) -> None:
    queue = SqsEventQueue(queue_url)
    queue.send(event("short"))
    (message,) = aws.client("sqs").receive_message(QueueUrl=queue_url)["Messages"]
    aws.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    assert queue.delay("not-a-receipt-handle", 30) is False
