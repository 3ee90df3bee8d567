"""The two records of what the sync did: our audit entry (with its log line) and the history note
the accountant sees in Xero."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.models.events import SyncEvent
from shared.outcome import SyncOutcome
from shared.ports import HistoryPort
from shared.store.mappings import AuditEntry, MappingStore
from shared.xero.client import HistoryResource

logger = logging.getLogger(__name__)


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


def write_history(xero: HistoryPort, resource: HistoryResource, record_id: str, details: str) -> None:
    """The note the accountant sees in Xero. Best effort: the record itself is already written and
    mapped, so a failed note must not make the event run again."""
    try:
        xero.add_history(resource, record_id, details)
    except Exception as exc:  # noqa: BLE001 - logged; never worth a second write of the record
        # The type and status only: a Xero message (and so a traceback) can quote names.
        logger.warning(
            "history note not written",
            extra={
                "resource": resource,
                "xero_id": record_id,
                "error": type(exc).__name__,
                "status": getattr(exc, "status", None),
            },
        )
