"""What a sync did with one record, and the one way it is recorded (audit entry + log line)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel, ValidationError

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.store.mappings import AuditEntry, MappingStore

logger = logging.getLogger(__name__)
RecordT = TypeVar("RecordT", bound=BaseModel)

SyncAction = Literal[
    "created",
    "updated",
    "voided",
    "applied",
    "skipped_stale",
    "skipped_state",
    "skipped_missing",
    "skipped_duplicate",
]


@dataclass
class SyncOutcome:
    action: SyncAction
    ignition_id: str
    xero_id: str | None = None
    match_method: str | None = None
    decisions: list[str] = field(default_factory=list)
    record_type: RecordType = RecordType.CLIENT
    # Set when Xero's total differs from Ignition's after the write: reported, never hidden.
    total_mismatch: str | None = None


def record_outcome(
    store: MappingStore,
    event: SyncEvent,
    outcome: SyncOutcome,
    *,
    at: datetime,
    ignition_updated_at: datetime | None = None,
    changed: list[str] | None = None,
) -> SyncOutcome:
    decisions = outcome.decisions + ([outcome.total_mismatch] if outcome.total_mismatch else [])
    store.audit(
        AuditEntry(
            record_type=outcome.record_type,
            ignition_id=outcome.ignition_id,
            event_id=event.event_id,
            action=outcome.action,
            at=at,
            xero_id=outcome.xero_id,
            ignition_updated_at=ignition_updated_at,
            changed_fields=changed or [],
            decisions=decisions,
        )
    )
    log = logger.error if outcome.total_mismatch else logger.info
    log(
        "sync outcome",
        extra={
            "record_type": str(outcome.record_type),
            "ignition_id": outcome.ignition_id,
            "action": outcome.action,
            "xero_id": outcome.xero_id,
            "match_method": outcome.match_method,
            "event_id": event.event_id,
            "total_mismatch": outcome.total_mismatch,
        },
    )
    return outcome


# How far past its receipt a record's own timestamps may lie (clocks differ a little).
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)


def newest_state(
    event: SyncEvent,
    model: type[RecordT],
    fetch: Callable[[str], RecordT | None],
    *,
    now: datetime,
    max_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> RecordT | None:
    """The record to sync: the webhook's payload when it is the whole record, otherwise what
    Ignition's Reporting API says now (a hint, or a payload that does not validate). Its
    timestamps are capped at its receipt plus ``max_skew`` (see :func:`cap_future_timestamps`)."""
    if event.record is not None:
        try:
            record = model.model_validate(event.record)
        except ValidationError:
            logger.info(
                "payload is not a complete record; reading the Reporting API",
                extra={"record_type": str(event.record_type), "ignition_id": event.record_id},
            )
        else:
            return cap_future_timestamps(record, event.received_at + max_skew, event)
    fetched = fetch(event.record_id)
    return None if fetched is None else cap_future_timestamps(fetched, now + max_skew, event)


def cap_future_timestamps(record: RecordT, latest: datetime, event: SyncEvent) -> RecordT:
    """``created_at``/``updated_at`` later than ``latest`` become ``latest``. The mapping keeps the
    written ``updated_at`` and skips anything not newer, so a record dated in the future (a wrong
    clock, a hand-edited payload) would otherwise block every later update until that date."""
    capped = {
        name: latest
        for name in ("created_at", "updated_at")
        if isinstance(value := getattr(record, name, None), datetime) and value > latest
    }
    if not capped:
        return record
    logger.warning(
        "record timestamp in the future: capped at its receipt plus the allowed skew",
        extra={
            "record_type": str(event.record_type),
            "ignition_id": event.record_id,
            "event_id": event.event_id,
            "fields": sorted(capped),
            "capped_at": latest.isoformat(),
        },
    )
    return record.model_copy(update=capped)
