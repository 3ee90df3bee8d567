"""The dead-letter message format: the reason travels in the (encrypted) body, only the category is
an attribute, and messages written before the envelope still read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import aws
from shared.models.events import SyncEvent
from shared.store.dead_letter_queue import (
    MAX_BODY_BYTES,
    MAX_REASON_CHARS,
    REQUEUES_ATTRIBUTE,
    DeadLetter,
    DeadLetterInfo,
    DeadLetters,
    SqsDeadLetters,
    encode_dead_letter,
    receive_dead_letters,
    requeue_exhausted,
)
from tests.sync_events import sync_event

NAME, EMAIL = "Aroha Ngata", "aroha@example.test"
# Xero's validation messages can quote the contact: this is what makes the reason personal data.
REASON = f"The contact name {NAME} ({EMAIL}) is already assigned to another contact."


@pytest.fixture
def queues(aws_each: None) -> tuple[str, str]:
    sqs = aws.client("sqs")
    fifo = {"FifoQueue": "true"}
    dlq: str = sqs.create_queue(QueueName="dlq.fifo", Attributes=fifo)["QueueUrl"]
    sync: str = sqs.create_queue(QueueName="sync.fifo", Attributes=fifo)["QueueUrl"]
    return dlq, sync


def park_validation_failure(dlq: str, event: SyncEvent) -> None:
    """Dead-letter ``event`` as the sync does when Xero refuses it (a reason quoting the client)."""
    DeadLetters(dlq).send(
        event.model_dump_json(),
        group_id=event.group_id,
        dedup_id="m1",
        category="xero_validation",
        reason=REASON,
    )


def raw_messages(url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = aws.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    )["Messages"]
    return messages


def only_letter(url: str) -> DeadLetter:
    (letter,) = receive_dead_letters(url, visibility_seconds=0, max_messages=1)
    return letter


def test_given_a_sync_event_dead_lettered_when_read_then_event_category_and_reason_round_trip(
    queues: tuple[str, str],
) -> None:
    dlq, _ = queues
    original = sync_event()

    park_validation_failure(dlq, original)

    letter = only_letter(dlq)
    assert letter.event() == original
    assert (letter.category, letter.reason) == ("xero_validation", REASON)


def test_given_a_reason_quoting_a_name_when_dead_lettered_then_no_attribute_holds_it(
    queues: tuple[str, str],
) -> None:
    dlq, _ = queues

    park_validation_failure(dlq, sync_event())

    (message,) = raw_messages(dlq)
    attributes = message["MessageAttributes"]
    assert {k: v["StringValue"] for k, v in attributes.items()} == {"failure_category": "xero_validation"}
    assert NAME not in json.dumps(attributes) and EMAIL not in json.dumps(attributes)
    body = json.loads(message["Body"])
    assert body["dead_letter"] == 1 and body["failure_reason"] == REASON
    assert body["event"]["event_id"] == "evt_1"  # the event as an object, not a string inside a string


def test_given_a_malformed_body_dead_lettered_when_read_then_the_raw_body_comes_back(
    queues: tuple[str, str],
) -> None:
    dlq, _ = queues

    DeadLetters(dlq).send(
        '{"not": "an event"', group_id="malformed", dedup_id="m1", category="malformed_message", reason="bad"
    )

    letter = only_letter(dlq)
    assert letter.body == '{"not": "an event"'
    assert letter.event() is None
    assert letter.reason == "bad"


def test_given_a_legacy_message_with_the_reason_attribute_when_read_then_event_and_reason_are_found(
    queues: tuple[str, str],
) -> None:
    dlq, _ = queues
    original = sync_event()
    aws.client("sqs").send_message(
        QueueUrl=dlq,
        MessageBody=original.model_dump_json(),
        MessageGroupId="cli_1",
        MessageDeduplicationId="legacy",
        MessageAttributes={
            "failure_category": {"DataType": "String", "StringValue": "xero_validation"},
            "failure_reason": {"DataType": "String", "StringValue": REASON},
        },
    )

    letter = only_letter(dlq)
    assert letter.event() == original
    assert (letter.category, letter.reason) == ("xero_validation", REASON)


def test_given_an_event_near_the_sqs_limit_when_encoded_then_the_reason_is_cut_to_fit() -> None:
    big = sync_event("cli_1", {"slug": "cli_1", "notes": "n" * (MAX_BODY_BYTES - 1_500)})

    body = encode_dead_letter(big.model_dump_json(), "é" * MAX_REASON_CHARS)

    assert len(body.encode()) <= MAX_BODY_BYTES
    envelope = json.loads(body)
    assert 0 < len(envelope["failure_reason"]) < MAX_REASON_CHARS
    assert SyncEvent.model_validate(envelope["event"]) == big


def test_given_an_event_over_the_sqs_limit_when_encoded_then_its_record_is_dropped_and_it_still_reads() -> (
    None
):
    huge = sync_event("cli_1", {"slug": "cli_1", "notes": "n" * MAX_BODY_BYTES})

    body = encode_dead_letter(huge.model_dump_json(), REASON)

    assert len(body.encode()) <= MAX_BODY_BYTES
    envelope = json.loads(body)
    assert envelope["failure_reason"] == REASON
    assert SyncEvent.model_validate(envelope["event"]) == huge.model_copy(update={"record": None})


def test_given_a_long_reason_when_encoded_then_it_is_cut_at_the_reason_limit() -> None:
    body = encode_dead_letter(sync_event().model_dump_json(), "x" * (MAX_REASON_CHARS + 10))

    assert json.loads(body)["failure_reason"] == "x" * MAX_REASON_CHARS


def test_given_a_dead_letter_sent_again_when_encoded_then_the_envelope_is_not_nested() -> None:
    once = encode_dead_letter(sync_event().model_dump_json(), "first")

    twice = json.loads(encode_dead_letter(once, "second"))

    assert twice["failure_reason"] == "second"
    assert SyncEvent.model_validate(twice["event"]) == sync_event()


def test_given_redriven_letters_when_requeued_then_the_sync_queue_gets_bare_events_and_kept_ones_read(
    queues: tuple[str, str],
) -> None:
    dlq, sync = queues
    sqs = aws.client("sqs")
    # Given: two events the redrive policy moved (no category); the second was put back too often.
    fresh, tired = (
        sync_event(),
        sync_event().model_copy(update={"event_id": "evt_2", "group_id": "cli_2"}),
    )
    sqs.send_message(
        QueueUrl=dlq, MessageBody=fresh.model_dump_json(), MessageGroupId="g1", MessageDeduplicationId="a"
    )
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody=tired.model_dump_json(),
        MessageGroupId="g2",
        MessageDeduplicationId="b",
        MessageAttributes={REQUEUES_ATTRIBUTE: {"DataType": "Number", "StringValue": "3"}},
    )

    # When
    outcome = requeue_exhausted(dlq, sync, max_requeues=3, visibility_seconds=0)

    # Then: the sync queue has the event itself, never an envelope; the kept one reads back whole.
    assert (outcome.requeued, outcome.kept) == (1, 1)
    (requeued,) = raw_messages(sync)
    assert SyncEvent.model_validate_json(requeued["Body"]) == fresh
    kept = only_letter(dlq)
    assert kept.event() == tired
    assert kept.category == "receives_exhausted" and kept.reason and "put back 3 times" in kept.reason


def test_given_dead_letters_when_the_reconciliation_reads_them_then_it_sees_each_and_none_is_consumed(
    queues: tuple[str, str],
) -> None:
    dlq, _ = queues
    letters = SqsDeadLetters(dlq)
    park_validation_failure(dlq, sync_event())
    DeadLetters(dlq).send(
        "not json", group_id="malformed", dedup_id="m2", category="malformed_message", reason=""
    )

    infos = letters.read(10)

    malformed = next(info for info in infos if info.category == "malformed_message")
    assert sorted(infos, key=lambda info: info.category) == [
        malformed,
        DeadLetterInfo(record_type="client", record_id="cli_1", category="xero_validation", reason=REASON),
    ]
    assert malformed.record_id.startswith("malformed:") and malformed.reason == "no reason recorded"
    # Visible again at once: the operator's replay (and the next report) find them all.
    assert len(list(receive_dead_letters(dlq, visibility_seconds=0, max_messages=10))) == 2
    assert len(letters.read(10)) == 2
