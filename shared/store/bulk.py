"""Bulk writes of the state table for jobs that handle thousands of records at once (backfill).
The item layout is :mod:`shared.store.mappings`' (batched reads: its ``BatchMappingReader``);
updates of mappings still go through ``DynamoMappingStore.save`` (one conditional transaction
each), only new mappings and the audit entries are written more cheaply here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from shared import aws
from shared.store.mappings import (
    CLAIM_CONDITION,
    WRITE_BATCH,
    AuditEntry,
    MappingConflict,
    RecordMapping,
    audit_expiry,
    audit_item,
    claim_values,
    forward_item,
    forward_key,
    mapped_xero_id,
    reverse_item,
    reverse_key,
    until_processed,
)


def write_audit_entries(table_name: str, entries: Sequence[AuditEntry]) -> None:
    """The same audit items ``DynamoMappingStore.audit`` writes, 25 per request."""
    ddb = aws.client("dynamodb")
    expires_at = audit_expiry()
    requests = [{"PutRequest": {"Item": audit_item(entry, expires_at=expires_at)}} for entry in entries]
    for start in range(0, len(requests), WRITE_BATCH):
        until_processed(
            ddb.batch_write_item,
            {table_name: requests[start : start + WRITE_BATCH]},
            leftover="UnprocessedItems",
            what="audit entries unwritten",
        )


def put_new_mapping(table_name: str, mapping: RecordMapping) -> None:
    """Map a record that has no mapping yet, with the same guarantees as
    ``DynamoMappingStore.save(previous=None)`` but two conditional puts instead of a transaction
    (cheaper for thousands of records, and moto copies the whole table per transaction).

    The reverse item is claimed first: a crash between the two puts leaves the Xero record claimed
    by this very Ignition record, which a rerun completes. Raises ``MappingConflict`` when the Xero
    record belongs to another Ignition record or this one is already mapped.
    """
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(
            TableName=table_name,
            Item=reverse_item(mapping),
            ConditionExpression=CLAIM_CONDITION,
            ExpressionAttributeValues=claim_values(mapping),
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise MappingConflict(f"{mapping.xero_id} belongs to another {mapping.record_type}") from None
    try:
        ddb.put_item(
            TableName=table_name, Item=forward_item(mapping), ConditionExpression="attribute_not_exists(pk)"
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        current = ddb.get_item(
            TableName=table_name,
            Key=forward_key(mapping.record_type, mapping.ignition_id),
            ConsistentRead=True,
        ).get("Item")
        if current is None or mapped_xero_id(current) != mapping.xero_id:
            # Mapped elsewhere meanwhile: give back the claim on this Xero record.
            with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
                ddb.delete_item(
                    TableName=table_name,
                    Key=reverse_key(mapping.record_type, mapping.xero_id),
                    ConditionExpression="ignition_id = :me",
                    ExpressionAttributeValues=claim_values(mapping),
                )
        raise MappingConflict(f"{mapping.record_type} {mapping.ignition_id} is already mapped") from None
