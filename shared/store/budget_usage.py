"""Read-only view of the Xero call budget that ``shared.xero.budget.DynamoCallBudget`` keeps in the
state table: how many calls this minute and today, and what is left. For the CLI's status screen
and the backfill's ETA; it never takes or gives back a unit."""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared import aws
from shared.config import XeroConfig
from shared.xero.budget import windows_at


@dataclass(frozen=True)
class BudgetUsage:
    minute_used: int
    minute_limit: int
    minute_ends_at: float
    day_used: int
    day_limit: int
    day_ends_at: float

    @property
    def minute_left(self) -> int:
        return max(self.minute_limit - self.minute_used, 0)

    @property
    def day_left(self) -> int:
        return max(self.day_limit - self.day_used, 0)


def read_budget_usage(
    table_name: str, tenant_id: str, config: XeroConfig, now: float | None = None
) -> BudgetUsage:
    moment = time.time() if now is None else now
    minute, day = windows_at(moment, config)
    used: dict[str, int] = {}
    ddb = aws.client("dynamodb")
    for window in (minute, day):
        item = ddb.get_item(
            TableName=table_name,
            Key={"pk": {"S": f"budget#{tenant_id}"}, "sk": {"S": window.key}},
            ConsistentRead=True,
        ).get("Item")
        used[window.kind] = int(item["calls"]["N"]) if item and "calls" in item else 0
    return BudgetUsage(
        minute_used=used["minute"],
        minute_limit=minute.limit,
        minute_ends_at=minute.ends_at,
        day_used=used["day"],
        day_limit=day.limit,
        day_ends_at=day.ends_at,
    )


def minute_counts(table_name: str, tenant_id: str) -> dict[str, int]:
    """Every minute window's count still in the table (tests: was the limit ever exceeded?)."""
    ddb = aws.client("dynamodb")
    counts: dict[str, int] = {}
    kwargs: dict[str, object] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :minute)",
        "ExpressionAttributeValues": {":pk": {"S": f"budget#{tenant_id}"}, ":minute": {"S": "minute#"}},
    }
    while True:
        page = ddb.query(**kwargs)
        for item in page.get("Items", []):
            counts[item["sk"]["S"]] = int(item["calls"]["N"])
        if "LastEvaluatedKey" not in page:
            return counts
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
