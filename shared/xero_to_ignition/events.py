"""Xero's INVOICE webhook events as messages for the sync worker (when the feature is on).

The webhook must answer Xero within 5 seconds and holds no Xero token, so it cannot tell a marked
invoice from any other: every recorded INVOICE event becomes a message on the sync's FIFO queue,
grouped by the Xero InvoiceID (one invoice's events in order), and the worker reads the invoice.
The queue gives the retries, the delays for Ignition's rate limit and the DLQ with a reason.

Delivery: the event is recorded first (the reconciliation's hint), then queued; a failed send
raises, the webhook answers 5xx and Xero redelivers, so no marked invoice is acknowledged unseen.
A redelivery is the same message (event id = InvoiceID + Xero's event time): SQS drops it within
5 minutes, the sync's idempotency after that.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Protocol

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.xero.webhooks import XeroEventStore, XeroWebhookEvent

# The sync dispatches on this event type (shared/wiring.py): the record is a Xero InvoiceID.
XERO_INVOICE_EVENT = "xero_invoice.changed"


def is_xero_invoice_event(event: SyncEvent) -> bool:
    return event.event_type == XERO_INVOICE_EVENT


def record_log_keys(event: SyncEvent) -> dict[str, str | None]:
    """The log keys naming an event's record (shared/delivery.py appends them to every line): a Xero
    invoice event's record is a Xero InvoiceID, never an ``ignition_id``. A None drops the key the
    batch's previous message left (Powertools leaves out keys whose value is None)."""
    if is_xero_invoice_event(event):
        return {"ignition_id": None, "xero_invoice_id": event.record_id}
    return {"ignition_id": event.record_id, "xero_invoice_id": None}


def invoice_event(event: XeroWebhookEvent, received_at: datetime) -> SyncEvent:
    """The queue message for one Xero INVOICE event."""
    identity = f"xero:{event.resource_id}:{event.event_date_iso}"
    return SyncEvent(
        event_id=identity,
        event_type=XERO_INVOICE_EVENT,
        record_type=RecordType.INVOICE,
        record_id=event.resource_id,
        group_id=f"xero-invoice#{event.resource_id}",
        occurred_at=event.event_date_utc,
        received_at=received_at,
        source="webhook",
        payload_sha256=hashlib.sha256(identity.encode()).hexdigest(),
        correlation_id=identity,
    )


class EventQueue(Protocol):
    def send(self, event: SyncEvent) -> None: ...


class MarkedInvoiceRelay:
    """A :class:`XeroEventStore` that records as ``store`` does and then queues each INVOICE event
    for the sync worker (wired by functions/xero_webhook/handler.py only when the feature is on)."""

    def __init__(self, store: XeroEventStore, queue: EventQueue) -> None:
        self._store = store
        self._queue = queue

    def record(self, event: XeroWebhookEvent, received_at: datetime) -> bool:
        recorded = self._store.record(event, received_at)
        if recorded and event.event_category == "INVOICE":
            self._queue.send(invoice_event(event, received_at))
        return recorded
