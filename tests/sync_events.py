"""A queued sync event for the unit tests: what the ingest or the poller would send for one
Ignition record, with the whole record as payload or, without one, as a hint."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from shared.config import RecordType
from shared.models.events import SyncEvent

AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def sync_event(
    record_id: str = "cli_1",
    record: dict[str, Any] | None = None,
    *,
    record_type: RecordType = RecordType.CLIENT,
    event_id: str = "evt_1",
    at: datetime = AT,
    group_id: str | None = None,
) -> SyncEvent:
    """Occurred and received at ``at``; grouped by the record, as the queue orders them, unless
    ``group_id`` says otherwise (the client a batch orders its invoices and payments under)."""
    return SyncEvent(
        event_id=event_id,
        event_type=f"{record_type}.updated",
        record_type=record_type,
        record_id=record_id,
        group_id=group_id or record_id,
        occurred_at=at,
        received_at=at,
        record=record,
        payload_sha256=hashlib.sha256(event_id.encode()).hexdigest(),
        correlation_id="corr",
    )
