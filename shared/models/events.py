"""The normalised event that travels from the ingest function to the sync function over SQS."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import RecordType

EventSource = Literal["webhook", "poll", "reconcile", "replay", "backfill"]


class SyncEvent(BaseModel):
    """A hint that one Ignition record changed. The sync works from the newest state of the record:
    ``record`` when the webhook carried the whole record, otherwise the Reporting API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, description="The producer's id (Ignition's)")
    event_type: str = Field(min_length=1, max_length=100, description='e.g. "client.updated"')
    record_type: RecordType
    record_id: str = Field(min_length=1, max_length=100, description="Ignition slug, e.g. cli_123")
    group_id: str = Field(min_length=1, max_length=128, description="FIFO group: the client slug")
    occurred_at: datetime
    received_at: datetime
    source: EventSource = "webhook"
    record: dict[str, Any] | None = Field(
        default=None, description="The full record when the payload carried it, else None"
    )
    payload_sha256: str = Field(min_length=64, max_length=64, description="Hash of the raw body")
    archive_key: str | None = Field(default=None, description="S3 key of the archived raw body")
    correlation_id: str = Field(min_length=1, max_length=128)
    force: bool = Field(
        default=False,
        description="Re-apply even if not newer than the mapping (reconciliation repairing drift in Xero)",
    )
