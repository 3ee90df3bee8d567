"""The newest state of an Ignition record, the one a sync writes: the webhook's payload when it is
the whole record, otherwise what Ignition's Reporting API says now; timestamps from the future
capped so they cannot block later updates."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.models.events import SyncEvent

logger = logging.getLogger(__name__)
RecordT = TypeVar("RecordT", bound=BaseModel)

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
