from __future__ import annotations

import pytest

from shared import aws
from shared.reconcile.adapters import DynamoRunStore
from tests.unit.moto_env import STATE_TABLE


@pytest.fixture
def store(state_table: str) -> DynamoRunStore:
    return DynamoRunStore(state_table)


def record_event(resource_id: str) -> None:
    """What the Xero webhook function does for each event: refresh the item, revision + 1."""
    aws.client("dynamodb").update_item(
        TableName=STATE_TABLE,
        Key={"pk": {"S": "xero-event#INVOICE"}, "sk": {"S": resource_id}},
        UpdateExpression="SET event_type = :t ADD revision :one",
        ExpressionAttributeValues={":t": {"S": "UPDATE"}, ":one": {"N": "1"}},
    )


def remaining() -> list[str]:
    items = aws.client("dynamodb").query(
        TableName=STATE_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "xero-event#INVOICE"}},
    )["Items"]
    return [item["sk"]["S"] for item in items]


def test_given_checked_events_when_deleted_then_they_are_gone(store: DynamoRunStore) -> None:
    record_event("a")
    record_event("b")
    read = store.xero_events("INVOICE", 10)

    store.delete_xero_events("INVOICE", [e.resource_id for e in read])

    assert remaining() == []


def test_given_xero_sends_an_event_during_the_run_when_deleted_then_the_new_event_is_kept(
    store: DynamoRunStore,
) -> None:
    record_event("a")
    read = store.xero_events("INVOICE", 10)
    record_event("a")  # a person edited the invoice again while the run was checking it

    store.delete_xero_events("INVOICE", [e.resource_id for e in read])

    assert remaining() == ["a"]
