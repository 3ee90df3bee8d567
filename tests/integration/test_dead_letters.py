"""Nothing sits in the dead-letter queue without a reason, and a permanent failure is there once
each time it fails, replays included."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared import aws
from shared.store.dead_letter_queue import MAX_EXHAUSTED_REQUEUES, REQUEUES_ATTRIBUTE, DeadLetter, requeue
from tests.integration.conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dead_letters")]


def _replay_all(world: World) -> int:
    """What ``cli replay dlq`` does: requeue each dead letter with a fresh replay id, delete it."""
    assert world.sandbox.resources is not None
    sqs = aws.client("sqs")
    resources = world.sandbox.resources
    replayed = 0
    while batch := sqs.receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in batch:
            event = DeadLetter.from_message(message).event()
            assert event is not None
            requeue(resources.queue_url, event, replay_id=uuid.uuid4().hex)
            sqs.delete_message(QueueUrl=resources.dlq_url, ReceiptHandle=message["ReceiptHandle"])
            replayed += 1
    return replayed


def test_given_a_permanent_failure_replayed_unfixed_within_5_minutes_then_it_is_dead_lettered_again(
    world: World,
) -> None:
    client = world.synced_client()
    invoice = f"inv_{world.tag}"
    # A wrong rule: GST on income mapped to an expense account Xero will not take it on.
    try:
        with world.advertising_account("400"):
            world.put_advertising_invoice(invoice, client)
            (first,) = world.dead_letters_for(invoice)

            # When: an operator replays it before fixing the rule (well within FIFO's 5-minute window).
            assert _replay_all(world) >= 1
            world.settle()

            # Then: it is back in the DLQ, once, with the same category and reason, not silently dropped.
            (again,) = world.dead_letters_for(invoice)
            assert (again["category"], again["reason"]) == (first["category"], first["reason"])
            assert again["category"] == "xero_validation"
    finally:
        _replay_all(world)
        world.settle()


def _raw_messages_for(world: World, record_id: str) -> list[dict[str, Any]]:
    """The DLQ messages about ``record_id`` exactly as SQS stores them (left visible)."""
    assert world.sandbox.resources is not None
    found: dict[str, dict[str, Any]] = {}
    for _ in range(10):
        batch = (
            aws.client("sqs")
            .receive_message(
                QueueUrl=world.sandbox.resources.dlq_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                MessageAttributeNames=["All"],
            )
            .get("Messages", [])
        )
        found.update({m["MessageId"]: m for m in batch if record_id in m["Body"]})
    return list(found.values())


def test_given_xero_refuses_an_invoice_when_dead_lettered_then_its_reason_is_only_in_the_encrypted_body(
    world: World,
) -> None:
    # Given: a client in Xero and a wrong account rule that makes Xero refuse the client's invoice.
    client = world.synced_client()
    record = world.client(client)
    invoice = f"inv_pii_{world.tag}"
    try:
        with world.advertising_account("400"):
            # When: the invoice is synced and parked.
            world.put_advertising_invoice(invoice, client)

            # Then: the operator's view still shows the category and Xero's reason...
            (dead,) = world.dead_letters_for(invoice)
            assert dead["category"] == "xero_validation"
            assert dead["reason"]
            # ...which SQS holds only in the body (SSE-SQS encrypts the body, not the attributes):
            # the attributes carry the category alone, no reason, no name, no e-mail.
            (message,) = _raw_messages_for(world, invoice)
            attributes = message.get("MessageAttributes", {})
            assert {name: a["StringValue"] for name, a in attributes.items()} == {
                "failure_category": "xero_validation"
            }
            assert json.loads(message["Body"])["failure_reason"] == dead["reason"]
            shown = json.dumps(attributes)
            assert record["name"] not in shown and record["email"] not in shown
    finally:
        _replay_all(world)
        world.settle()


def _park_without_reason(world: World, event: dict[str, Any], requeues: int = 0) -> None:
    """What the queue's redrive policy does: the message moves to the DLQ with no failure reason."""
    assert world.sandbox.resources is not None
    attributes = (
        {REQUEUES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(requeues)}} if requeues else {}
    )
    aws.client("sqs").send_message(
        QueueUrl=world.sandbox.resources.dlq_url,
        MessageBody=json.dumps(event),
        MessageGroupId=event["group_id"],
        MessageDeduplicationId=uuid.uuid4().hex,
        MessageAttributes=attributes,
    )


def _client_event(slug: str) -> dict[str, Any]:
    return {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "event_type": "client.created",
        "record_type": "client",
        "record_id": slug,
        "group_id": slug,
        "payload_sha256": "0" * 64,
        "correlation_id": uuid.uuid4().hex,
        "occurred_at": "2026-11-26T00:00:00Z",
        "received_at": "2026-11-26T00:00:00Z",
    }


def test_given_a_dead_letter_without_a_reason_when_reconcile_runs_then_it_is_requeued_and_lands(
    world: World,
) -> None:
    slug = world.slug("exhausted")
    world.put_client(world.client(slug), deliver=False)
    _park_without_reason(world, _client_event(slug))

    world.sandbox.run_reconcile({"mode": "xero_events"})
    world.settle()

    assert len(world.contacts(ContactNumber=slug)) == 1
    assert world.dead_letters_for(slug) == []


def test_given_a_dead_letter_that_ran_out_of_deliveries_too_often_then_it_stays_with_a_reason(
    world: World,
) -> None:
    slug = world.slug("poison")
    world.put_client(world.client(slug), deliver=False)
    _park_without_reason(world, _client_event(slug), requeues=MAX_EXHAUSTED_REQUEUES)

    world.sandbox.run_reconcile({"mode": "xero_events"})
    world.settle()

    (kept,) = world.dead_letters_for(slug)
    assert kept["category"] == "receives_exhausted"
    assert f"put back {MAX_EXHAUSTED_REQUEUES} times" in kept["reason"]
    assert world.contacts(ContactNumber=slug) == []
    _replay_all(world)  # leave the DLQ as found: the client syncs now
    world.settle()
