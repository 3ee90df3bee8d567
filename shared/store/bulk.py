"""Bulk reads and writes of the state table for jobs that handle thousands of records at once
(backfill, replay reports, status). Same item layout as :mod:`shared.store.mappings`; writes of
mappings still go through ``DynamoMappingStore.save`` (one conditional transaction each), only the
reads and the audit entries are batched here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

from shared import aws
from shared.config import RecordType
from shared.store.mappings import (
    AUDIT_RETENTION_SECONDS,
    AuditEntry,
    MappingConflict,
    RecordMapping,
    mapping_from_item,
)

# DynamoDB's own limits: 100 keys per BatchGetItem, 25 items per BatchWriteItem.
_GET_BATCH = 100
_WRITE_BATCH = 25
_MAX_ROUNDS = 8


class BulkMappingReader:
    def __init__(self, table_name: str) -> None:
        self._table = table_name

    def mappings(self, record_type: RecordType, ignition_ids: Iterable[str]) -> dict[str, RecordMapping]:
        """The stored mappings among ``ignition_ids`` (missing ones are simply absent)."""
        keys = [
            {"pk": {"S": f"map#{record_type}#{ignition_id}"}, "sk": {"S": "ignition"}}
            for ignition_id in dict.fromkeys(ignition_ids)
        ]
        found: dict[str, RecordMapping] = {}
        for item in self._batch_get(keys):
            mapping = mapping_from_item(record_type, item["pk"]["S"].split("#", 2)[2], item)
            found[mapping.ignition_id] = mapping
        return found

    def owners(self, record_type: RecordType, xero_ids: Iterable[str]) -> dict[str, str]:
        """Xero id -> the Ignition id it is mapped to, for those among ``xero_ids`` that are."""
        keys = [
            {"pk": {"S": f"xref#{record_type}#{xero_id}"}, "sk": {"S": "xero"}}
            for xero_id in dict.fromkeys(xero_ids)
        ]
        return {item["pk"]["S"].split("#", 2)[2]: item["ignition_id"]["S"] for item in self._batch_get(keys)}

    def _batch_get(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        ddb = aws.client("dynamodb")
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), _GET_BATCH):
            request: dict[str, Any] = {
                self._table: {"Keys": list(keys[start : start + _GET_BATCH]), "ConsistentRead": True}
            }
            for attempt in range(_MAX_ROUNDS):
                response = ddb.batch_get_item(RequestItems=request)
                items.extend(response.get("Responses", {}).get(self._table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise RuntimeError("DynamoDB left keys unprocessed after retries")
        return items


def write_audit_entries(table_name: str, entries: Sequence[AuditEntry]) -> None:
    """The same audit items ``DynamoMappingStore.audit`` writes, 25 per request."""
    ddb = aws.client("dynamodb")
    expires = str(int(time.time()) + AUDIT_RETENTION_SECONDS)
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "pk": {"S": f"audit#{entry.record_type}#{entry.ignition_id}"},
                    "sk": {"S": f"{entry.at.isoformat()}#{entry.event_id}"},
                    "entry": {"S": entry.model_dump_json()},
                    "expires_at": {"N": expires},
                }
            }
        }
        for entry in entries
    ]
    for start in range(0, len(requests), _WRITE_BATCH):
        pending: dict[str, Any] = {table_name: requests[start : start + _WRITE_BATCH]}
        for attempt in range(_MAX_ROUNDS):
            response = ddb.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(min(2.0, 0.05 * 2**attempt))
        else:
            raise RuntimeError("DynamoDB left audit entries unwritten after retries")


def _forward_item(mapping: RecordMapping) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"map#{mapping.record_type}#{mapping.ignition_id}"},
        "sk": {"S": "ignition"},
        "xero_id": {"S": mapping.xero_id},
        "ignition_updated_at": {"S": mapping.ignition_updated_at.isoformat()},
        "synced_at": {"S": mapping.synced_at.isoformat()},
        "last_event_id": {"S": mapping.last_event_id},
        "match_method": {"S": mapping.match_method},
        "version": {"N": str(mapping.version)},
    }
    if mapping.ignition_created_at is not None:
        item["ignition_created_at"] = {"S": mapping.ignition_created_at.isoformat()}
    return item


def put_new_mapping(table_name: str, mapping: RecordMapping) -> None:
    """Map a record that has no mapping yet, with the same guarantees as
    ``DynamoMappingStore.save(previous=None)`` but two conditional puts instead of a transaction
    (cheaper for thousands of records, and moto copies the whole table per transaction).

    The reverse item is claimed first: a crash between the two puts leaves the Xero record claimed
    by this very Ignition record, which a rerun completes. Raises ``MappingConflict`` when the Xero
    record belongs to another Ignition record or this one is already mapped.
    """
    ddb = aws.client("dynamodb")
    me = {":me": {"S": mapping.ignition_id}}
    reverse_key = {"pk": {"S": f"xref#{mapping.record_type}#{mapping.xero_id}"}, "sk": {"S": "xero"}}
    try:
        ddb.put_item(
            TableName=table_name,
            Item={**reverse_key, "ignition_id": {"S": mapping.ignition_id}},
            ConditionExpression="attribute_not_exists(pk) OR ignition_id = :me",
            ExpressionAttributeValues=me,
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise MappingConflict(f"{mapping.xero_id} belongs to another {mapping.record_type}") from None
    try:
        ddb.put_item(
            TableName=table_name, Item=_forward_item(mapping), ConditionExpression="attribute_not_exists(pk)"
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        current = ddb.get_item(
            TableName=table_name,
            Key={"pk": {"S": f"map#{mapping.record_type}#{mapping.ignition_id}"}, "sk": {"S": "ignition"}},
            ConsistentRead=True,
        ).get("Item")
        if current is None or current["xero_id"]["S"] != mapping.xero_id:
            # Mapped elsewhere meanwhile: give back the claim on this Xero record.
            with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
                ddb.delete_item(
                    TableName=table_name,
                    Key=reverse_key,
                    ConditionExpression="ignition_id = :me",
                    ExpressionAttributeValues=me,
                )
        raise MappingConflict(f"{mapping.record_type} {mapping.ignition_id} is already mapped") from None
