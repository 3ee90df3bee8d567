"""One record per marked Xero invoice: what makes its Ignition draft happen exactly once.

``intent`` is written (conditionally) just BEFORE ``create_invoice_draft`` is sent, ``drafted`` after
it with the draft's id and link. A worker that finds ``intent`` knows a call may have made a draft
whose answer was lost (a crash, a timeout): it looks for the draft by its reference, and when the
lookup does not show it (``list_invoices`` may leave unfinished drafts out) it never creates a
second one: the record becomes ``unconfirmed`` with words for the bookkeeper, and only a replay with
``--create-anew`` (the event's ``force``) makes one again. ``held``: the call was answered without a
draft (RATE_LIMITED, a refusal, no connection), so the next try simply creates it. ``finalised``
names the Ignition invoice the draft became; ``refused`` keeps the reason the draft could not be
exact, until the invoice is edited again.

State table item (one partition, so the reconciliation reads them all with one Query)::

    pk="x2i#drafts"  sk="<marker: 12 hex of the Xero InvoiceID>"  record=<JSON>  version=<N>
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from shared import aws
from shared.errors import TransientSyncError

PARTITION = "x2i#drafts"
DraftState = Literal["intent", "unconfirmed", "held", "drafted", "refused", "finalised"]
# A create_invoice_draft call may have made a draft that is not recorded.
UNANSWERED: tuple[DraftState, ...] = ("intent", "unconfirmed")


class RecordConflict(TransientSyncError):
    """Another worker wrote the record first: the retry re-reads it."""


class DraftRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    marker: str
    xero_invoice_id: str
    xero_number: str | None = None
    client_slug: str | None = None
    reference: str | None = None
    state: DraftState
    # When the intent was first recorded (the draft was asked for) and when the draft was made.
    intent_at: datetime
    drafted_at: datetime | None = None
    draft_id: str | None = None
    app_path: str | None = None
    total: Decimal | None = None
    currency: str | None = None
    # The history note on the Xero invoice is written (best effort, once).
    noted: bool = False
    ignition_invoice: str | None = None
    reason: str | None = None
    version: int = 0


class DraftRecordStore(Protocol):
    def get(self, marker: str) -> DraftRecord | None: ...

    def put(self, record: DraftRecord, *, previous: DraftRecord | None) -> DraftRecord:
        """Write ``record`` if the stored one is still ``previous`` (None: none yet); the written
        record (its version moved on), or ``RecordConflict``."""
        ...

    def all(self) -> list[DraftRecord]: ...


class DynamoDraftRecordStore:
    def __init__(self, table: str) -> None:
        self._table = table

    @staticmethod
    def _key(marker: str) -> dict[str, Any]:
        return {"pk": {"S": PARTITION}, "sk": {"S": marker}}

    def get(self, marker: str) -> DraftRecord | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=self._key(marker), ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else _from_item(item)

    def put(self, record: DraftRecord, *, previous: DraftRecord | None) -> DraftRecord:
        written = record.model_copy(update={"version": (previous.version if previous else 0) + 1})
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if previous is None
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(previous.version)}},
            }
        )
        try:
            aws.client("dynamodb").put_item(
                TableName=self._table,
                Item={
                    **self._key(record.marker),
                    "record": {"S": written.model_dump_json()},
                    "version": {"N": str(written.version)},
                },
                **condition,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise RecordConflict(f"the draft record {record.marker} changed meanwhile") from exc
            raise
        return written

    def all(self) -> list[DraftRecord]:
        records: list[DraftRecord] = []
        paginator = aws.client("dynamodb").get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": PARTITION}},
            ConsistentRead=True,
        ):
            records.extend(_from_item(item) for item in page.get("Items", []))
        return records


def _from_item(item: dict[str, Any]) -> DraftRecord:
    return DraftRecord.model_validate_json(item["record"]["S"]).model_copy(
        update={"version": int(item["version"]["N"])}
    )
