"""A burst that waits behind Xero's limits is never parked: 200 new clients queued behind a spent
day budget bounce many more times than the queue's old 5 receives, and all land once the budget
returns, each exactly once, with the dead-letter queue empty."""

from __future__ import annotations

import time

import pytest

from sandbox.environment import Sandbox
from shared import aws
from shared.config import IntegrationConfig, RetryRules
from shared.xero.budget import windows_at
from tests.integration.conftest import World

pytestmark = pytest.mark.integration

BURST = 200
# More bounces than this test's whole fault allowance (1 fault + 2 unexplained deliveries): had
# waits been counted, every event would have been parked.
WAITS_BEFORE_THE_DAY_RETURNS = 4


def _parked(world: World) -> list[dict[str, object]]:
    """This test's events in the DLQ (the session sandbox's DLQ may hold other tests' letters)."""
    return [m for m in world.sandbox.dead_letters() if world.tag in str(m["body"].get("record_id"))]


def _day_budget(sandbox: Sandbox) -> int:
    return IntegrationConfig.model_validate_json(
        sandbox.function_environment["INTEGRATION_CONFIG"]
    ).xero.calls_per_day


def _day_key(sandbox: Sandbox) -> dict[str, dict[str, str]]:
    _, day = windows_at(time.time(), IntegrationConfig().xero)
    return {"pk": {"S": f"budget#{sandbox.xero.tenant_id}"}, "sk": {"S": day.key}}


def _attempt_items(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    assert sandbox.resources is not None
    ddb = aws.client("dynamodb")
    items: dict[str, dict[str, int]] = {}  # every message's ledger, this test's and earlier ones'
    kwargs: dict[str, object] = {
        "TableName": sandbox.resources.state_table,
        "FilterExpression": "begins_with(pk, :p)",
        "ExpressionAttributeValues": {":p": {"S": "attempts#"}},
    }
    while True:
        page = ddb.scan(**kwargs)
        for item in page.get("Items", []):
            items[item["pk"]["S"]] = {
                "waits": int(item.get("waits", {}).get("N", "0")),
                "faults": int(item.get("faults", {}).get("N", "0")),
            }
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.mark.timeout(1200)
def test_given_a_spent_day_budget_when_200_new_clients_arrive_then_none_is_parked_and_all_land_once(
    world: World,
) -> None:
    sandbox = world.sandbox
    assert sandbox.resources is not None
    ddb = aws.client("dynamodb")
    # Given: today's Xero budget is spent (as after a large import earlier in the day), strict fault
    # allowances, and day-limit waits capped at 8 s: long enough for every waiting event to get its turn
    # (moto hands out the oldest visible messages first), short enough for many bounces.
    sandbox.reconfigure(
        retries={"max_fault_attempts": 1, "max_unexplained_receives": 2, "max_delay_seconds": 8}
    )
    ddb.put_item(
        TableName=sandbox.resources.state_table,
        Item={
            **_day_key(sandbox),
            "calls": {"N": str(_day_budget(sandbox))},
            "expires_at": {"N": str(int(time.time()) + 86_400)},
        },
    )
    try:
        _burst_waits_then_lands(world, sandbox)
    finally:
        ddb.delete_item(TableName=sandbox.resources.state_table, Key=_day_key(sandbox))
        sandbox.reconfigure(retries=RetryRules().model_dump())


def _burst_waits_then_lands(world: World, sandbox: Sandbox) -> None:
    assert sandbox.resources is not None
    ddb = aws.client("dynamodb")
    slugs = [world.slug(f"burst{n:03d}") for n in range(BURST)]
    earlier = set(_attempt_items(sandbox))

    # When: 200 new clients are created in Ignition at once.
    for slug in slugs:
        world.put_client(world.client(slug, name=f"Burst client {slug}"))

    # Then: each waits, bouncing more often than the queue's old receive limit, and none is parked.
    deadline = time.monotonic() + 600
    while True:
        items = [v for k, v in _attempt_items(sandbox).items() if k not in earlier]
        if len(items) >= BURST and min(i["waits"] for i in items) >= WAITS_BEFORE_THE_DAY_RETURNS:
            break
        assert time.monotonic() < deadline, f"bounces too slow: {sorted(i['waits'] for i in items)[:5]}"
        assert _parked(world) == [], "a waiting event was parked"
        time.sleep(2)
    assert _parked(world) == []
    assert all(i["faults"] == 0 for i in items)
    assert world.contacts(Name=f"Burst client {slugs[0]}") == []

    # When: the next day's budget arrives.
    ddb.delete_item(TableName=sandbox.resources.state_table, Key=_day_key(sandbox))
    sandbox.wait_until_idle(timeout=360)

    # Then: every client is in Xero exactly once, mapped, and the DLQ is empty.
    contacts = world.xero_state()["Contacts"]
    by_number: dict[str, int] = {}
    for contact in contacts:
        number = contact.get("ContactNumber")
        if number:
            by_number[number] = by_number.get(number, 0) + 1
    assert {slug: by_number.get(slug, 0) for slug in slugs} == dict.fromkeys(slugs, 1)
    assert all(world.mapping(slug) is not None for slug in slugs)
    assert _parked(world) == []
