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
from datetime import UTC, datetime
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


def mapping_from_item(record_type: RecordType, ignition_id: str, item: dict[str, Any]) -> RecordMapping:
    """A forward mapping item (``pk=map#<type>#<slug>``) as a :class:`RecordMapping`."""
    return RecordMapping(
        record_type=record_type,
        ignition_id=ignition_id,
        xero_id=item["xero_id"]["S"],
        ignition_created_at=item["ignition_created_at"]["S"] if "ignition_created_at" in item else None,
        ignition_updated_at=item["ignition_updated_at"]["S"],
        synced_at=item["synced_at"]["S"],
        last_event_id=item["last_event_id"]["S"],
        match_method=item["match_method"]["S"],
        version=int(item["version"]["N"]),
    )


def _forward_key(record_type: RecordType, ignition_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"map#{record_type}#{ignition_id}"}, "sk": {"S": "ignition"}}


def _reverse_key(record_type: RecordType, xero_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"xref#{record_type}#{xero_id}"}, "sk": {"S": "xero"}}


class DynamoMappingStore:
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def get(self, record_type: RecordType, ignition_id: str) -> RecordMapping | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=_forward_key(record_type, ignition_id), ConsistentRead=True)
            .get("Item")
        )
        if item is None:
            return None
        return mapping_from_item(record_type, ignition_id, item)

    def owner_of(self, record_type: RecordType, xero_id: str) -> str | None:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=_reverse_key(record_type, xero_id), ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else str(item["ignition_id"]["S"])

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None:
        forward: dict[str, Any] = {
            **_forward_key(mapping.record_type, mapping.ignition_id),
            "xero_id": {"S": mapping.xero_id},
            "ignition_updated_at": {"S": mapping.ignition_updated_at.isoformat()},
            "synced_at": {"S": mapping.synced_at.isoformat()},
            "last_event_id": {"S": mapping.last_event_id},
            "match_method": {"S": mapping.match_method},
            "version": {"N": str(mapping.version)},
        }
        if mapping.ignition_created_at is not None:
            forward["ignition_created_at"] = {"S": mapping.ignition_created_at.isoformat()}
        if previous is None:
            forward_condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            forward_condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(previous.version)}},
            }
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self._table, "Item": forward, **forward_condition}}
        ]
        if previous is None or previous.xero_id != mapping.xero_id:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **_reverse_key(mapping.record_type, mapping.xero_id),
                            "ignition_id": {"S": mapping.ignition_id},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR ignition_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": mapping.ignition_id}},
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
            TableName=self._table,
            Item={
                "pk": {"S": f"audit#{entry.record_type}#{entry.ignition_id}"},
                "sk": {"S": f"{entry.at.isoformat()}#{entry.event_id}"},
                "entry": {"S": entry.model_dump_json()},
                "expires_at": {"N": str(int(time.time()) + AUDIT_RETENTION_SECONDS)},
            },
        )

    def audit_trail(self, record_type: RecordType, ignition_id: str) -> list[AuditEntry]:
        response = aws.client("dynamodb").query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"audit#{record_type}#{ignition_id}"}},
        )
        return [AuditEntry.model_validate_json(item["entry"]["S"]) for item in response.get("Items", [])]


def utcnow() -> datetime:
    return datetime.now(UTC)
