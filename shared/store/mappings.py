"""The durable cross-reference between Ignition records and Xero records, and the audit trail.

DynamoDB state table (``pk``/``sk`` strings, TTL attribute ``expires_at``):

* forward  ``pk=map#<type>#<ignition slug>``  ``sk=ignition``  -> xero_id, source timestamps, version
* reverse  ``pk=xref#<type>#<xero id>``       ``sk=xero``      -> ignition slug
* audit    ``pk=audit#<type>#<ignition slug>`` ``sk=<iso time>#<event id>`` -> what was decided

Forward and reverse items are written in one transaction with conditions, so two workers can never
map one Ignition record to two Xero records, nor one Xero record to two Ignition records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from shared import aws
from shared.config import RecordType

AUDIT_RETENTION_SECONDS = 400 * 24 * 3600


class MappingConflict(Exception):
    """Another worker changed the mapping first, or the Xero record already belongs to another
    Ignition record. Safe to retry: the retry re-reads the mapping."""


class RecordMapping(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_type: RecordType
    ignition_id: str
    xero_id: str
    ignition_created_at: datetime | None = None
    ignition_updated_at: datetime
    synced_at: datetime
    last_event_id: str
    match_method: str = Field(description="created, mapping, contact_number, xero_contact_id, email, name")
    version: int = Field(ge=1)
    # An invoice's state in Xero as our own last write left it (amount due, status, currency), so
    # a payment need not read the invoice back; None: unknown (a write in flight, or not ours).
    xero_amount_due: Decimal | None = None
    xero_status: str | None = None
    xero_currency: str | None = None
    # SHA-256 of the body our last write sent to Xero (shared/record_sync.py written_body), so a
    # change in Ignition that alters nothing Xero holds is not written again; None: unknown.
    xero_body_sha256: str | None = None


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_type: RecordType
    ignition_id: str
    event_id: str
    action: str = Field(description="created, updated, skipped_stale, failed, ...")
    at: datetime
    xero_id: str | None = None
    ignition_updated_at: datetime | None = None
    changed_fields: list[str] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list, description="Why the sync did what it did")


class MappingStore(Protocol):
    def get(self, record_type: RecordType, ignition_id: str) -> RecordMapping | None: ...

    def owner_of(self, record_type: RecordType, xero_id: str) -> str | None: ...

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None: ...

    def audit(self, entry: AuditEntry) -> None: ...


FORWARD_PREFIX = "map#"
REVERSE_PREFIX = "xref#"
AUDIT_PREFIX = "audit#"
# A reverse item may be written only by the Ignition record it names (``:me``): the claim on a
# Xero record that keeps two Ignition records from mapping to it.
CLAIM_CONDITION = "attribute_not_exists(pk) OR ignition_id = :me"

# DynamoDB's own limits: 100 keys per BatchGetItem, 25 items per BatchWriteItem.
GET_BATCH = 100
WRITE_BATCH = 25
_MAX_ROUNDS = 8


def forward_key(record_type: RecordType, ignition_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{FORWARD_PREFIX}{record_type}#{ignition_id}"}, "sk": {"S": "ignition"}}


def reverse_key(record_type: RecordType, xero_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{REVERSE_PREFIX}{record_type}#{xero_id}"}, "sk": {"S": "xero"}}


def _id_in_key(item: dict[str, Any]) -> str:
    """The id a forward or reverse item is keyed by (``<prefix><type>#<id>``)."""
    return str(item["pk"]["S"].split("#", 2)[2])


def forward_item(mapping: RecordMapping) -> dict[str, Any]:
    """The forward item of ``mapping``, its key included."""
    item: dict[str, Any] = {
        **forward_key(mapping.record_type, mapping.ignition_id),
        "xero_id": {"S": mapping.xero_id},
        "ignition_updated_at": {"S": mapping.ignition_updated_at.isoformat()},
        "synced_at": {"S": mapping.synced_at.isoformat()},
        "last_event_id": {"S": mapping.last_event_id},
        "match_method": {"S": mapping.match_method},
        "version": {"N": str(mapping.version)},
    }
    if mapping.ignition_created_at is not None:
        item["ignition_created_at"] = {"S": mapping.ignition_created_at.isoformat()}
    if mapping.xero_amount_due is not None:
        item["xero_amount_due"] = {"S": str(mapping.xero_amount_due)}
    for name in ("xero_status", "xero_currency", "xero_body_sha256"):
        if (value := getattr(mapping, name)) is not None:
            item[name] = {"S": value}
    return item


def reverse_item(mapping: RecordMapping) -> dict[str, Any]:
    """The reverse item of ``mapping``: its Xero record claimed by its Ignition record."""
    return {**reverse_key(mapping.record_type, mapping.xero_id), "ignition_id": {"S": mapping.ignition_id}}


def claim_values(mapping: RecordMapping) -> dict[str, Any]:
    """The ``ExpressionAttributeValues`` of :data:`CLAIM_CONDITION` for ``mapping``."""
    return {":me": {"S": mapping.ignition_id}}


def mapped_xero_id(item: dict[str, Any]) -> str:
    """The Xero id a forward item maps to."""
    return str(item["xero_id"]["S"])


def mapping_from_item(record_type: RecordType, ignition_id: str, item: dict[str, Any]) -> RecordMapping:
    """A forward mapping item as a :class:`RecordMapping`."""
    return RecordMapping(
        record_type=record_type,
        ignition_id=ignition_id,
        xero_id=mapped_xero_id(item),
        ignition_created_at=item["ignition_created_at"]["S"] if "ignition_created_at" in item else None,
        ignition_updated_at=item["ignition_updated_at"]["S"],
        synced_at=item["synced_at"]["S"],
        last_event_id=item["last_event_id"]["S"],
        match_method=item["match_method"]["S"],
        version=int(item["version"]["N"]),
        xero_amount_due=Decimal(item["xero_amount_due"]["S"]) if "xero_amount_due" in item else None,
        xero_status=item["xero_status"]["S"] if "xero_status" in item else None,
        xero_currency=item["xero_currency"]["S"] if "xero_currency" in item else None,
        xero_body_sha256=item["xero_body_sha256"]["S"] if "xero_body_sha256" in item else None,
    )


def audit_item(entry: AuditEntry, *, expires_at: int) -> dict[str, Any]:
    """The audit item of ``entry``, kept until ``expires_at`` (epoch seconds: the table's TTL)."""
    return {
        "pk": {"S": f"{AUDIT_PREFIX}{entry.record_type}#{entry.ignition_id}"},
        "sk": {"S": f"{entry.at.isoformat()}#{entry.event_id}"},
        "entry": {"S": entry.model_dump_json()},
        "expires_at": {"N": str(expires_at)},
    }


def audit_expiry() -> int:
    """When an audit item written now expires."""
    return int(time.time()) + AUDIT_RETENTION_SECONDS


def until_processed(
    send: Callable[..., dict[str, Any]], request: dict[str, Any], *, leftover: str, what: str
) -> list[dict[str, Any]]:
    """The answers to the batch ``request``, which ``send`` (``batch_get_item`` or
    ``batch_write_item``) sends again for what DynamoDB left out when throttled (``leftover``:
    ``UnprocessedKeys`` or ``UnprocessedItems``), backing off between rounds."""
    answers: list[dict[str, Any]] = []
    for attempt in range(_MAX_ROUNDS):
        answers.append(send(RequestItems=request))
        request = answers[-1].get(leftover) or {}
        if not request:
            return answers
        time.sleep(min(2.0, 0.05 * 2**attempt))
    raise RuntimeError(f"DynamoDB left {what} after retries")


class BatchMappingReader:
    """Mappings read 100 keys a call (BatchGetItem), so joining 100,000 records costs 1,000 reads
    of just those items instead of a scan of the whole table (which also holds the audit trail).
    Used by the jobs that handle thousands of records at once (reconciliation, backfill)."""

    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def forward(self, record_type: RecordType, ignition_ids: Iterable[str]) -> dict[str, RecordMapping]:
        """Ignition id -> its mapping, for those among ``ignition_ids`` that are mapped."""
        keys = [forward_key(record_type, ignition_id) for ignition_id in dict.fromkeys(ignition_ids)]
        found: dict[str, RecordMapping] = {}
        for item in self._batch_get(keys):
            ignition_id = _id_in_key(item)
            found[ignition_id] = mapping_from_item(record_type, ignition_id, item)
        return found

    def reverse(self, record_type: RecordType, xero_ids: Iterable[str]) -> dict[str, str]:
        """Xero id -> the Ignition id it is mapped to, for those among ``xero_ids`` that are."""
        keys = [reverse_key(record_type, xero_id) for xero_id in dict.fromkeys(xero_ids)]
        return {_id_in_key(item): item["ignition_id"]["S"] for item in self._batch_get(keys)}

    def _batch_get(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        ddb = aws.client("dynamodb")
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), GET_BATCH):
            request = {self._table: {"Keys": list(keys[start : start + GET_BATCH]), "ConsistentRead": True}}
            for answer in until_processed(
                ddb.batch_get_item, request, leftover="UnprocessedKeys", what="keys unprocessed"
            ):
                items.extend(answer.get("Responses", {}).get(self._table, []))
        return items


class DynamoMappingStore:
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def get(self, record_type: RecordType, ignition_id: str) -> RecordMapping | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=forward_key(record_type, ignition_id), ConsistentRead=True)
            .get("Item")
        )
        if item is None:
            return None
        return mapping_from_item(record_type, ignition_id, item)

    def owner_of(self, record_type: RecordType, xero_id: str) -> str | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=reverse_key(record_type, xero_id), ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else str(item["ignition_id"]["S"])

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None:
        if previous is None:
            forward_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            forward_condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(previous.version)}},
            }
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": forward_item(mapping), **forward_condition}}
        ]
        if previous is None or previous.xero_id != mapping.xero_id:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": reverse_item(mapping),
                        "ConditionExpression": CLAIM_CONDITION,
                        "ExpressionAttributeValues": claim_values(mapping),
                    }
                }
            )
        try:
            aws.client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
            ):
                raise MappingConflict(
                    f"mapping for {mapping.record_type} {mapping.ignition_id} changed concurrently "
                    f"or {mapping.xero_id} belongs to another record"
                ) from exc
            raise

    def audit(self, entry: AuditEntry) -> None:
        aws.client("dynamodb").put_item(
            TableName=self._table, Item=audit_item(entry, expires_at=audit_expiry())
        )
