"""A worker that dies after writing to Xero but before saving the mapping must not cause a
duplicate when the event comes again: the external keys (InvoiceNumber, payment Reference) find
what was written."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.record_sync import RecordSync
from shared.store.mappings import MappingStore, RecordMapping
from tests import ignition_records
from tests.ignition_records import line
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


RecordSyncT = TypeVar("RecordSyncT", bound=RecordSync[Any, Any, Any])


class CrashBeforeMapping(Exception):
    pass


class DiesOnSave:
    """The real store, except that saving a mapping of ``record_type`` kills the 'worker'."""

    def __init__(self, store: MappingStore, record_type: RecordType) -> None:
        self._store = store
        self._record_type = record_type

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None:
        if mapping.record_type is self._record_type:
            raise CrashBeforeMapping(mapping.ignition_id)
        self._store.save(mapping, previous=previous)


def dies_before_mapping(sync: RecordSyncT) -> RecordSyncT:
    """The sandbox's own use case, whose worker dies right before it saves its record's mapping."""
    crashing = copy.copy(sync)
    crashing.store = DiesOnSave(sync.store, sync.record_type)
    return crashing


def event(record_type: RecordType, record: dict[str, Any], group: str) -> SyncEvent:
    return SyncEvent(
        event_id=f"evt_{uuid.uuid4().hex}",
        event_type=f"{record_type}.created",
        record_type=record_type,
        record_id=record["slug"],
        group_id=group,
        occurred_at=datetime.now(UTC),
        received_at=datetime.now(UTC),
        record=record,
        payload_sha256="0" * 64,
        correlation_id="crash-test",
    )


def test_given_invoice_written_then_worker_died_when_event_redelivered_then_one_invoice(world: World) -> None:
    client = world.slug()
    world.put_client(world.client(client))
    world.settle()
    slug = f"inv_{world.tag}"
    record = world.invoice(slug, client, [line("100.00")], "110.00", updated_at="2026-11-02T09:00:00Z")
    service = world.sandbox.sync.service()  # type: ignore[union-attr]
    crashing = dies_before_mapping(service.invoices)

    with pytest.raises(CrashBeforeMapping):
        crashing.handle(event(RecordType.INVOICE, record, client))
    assert len(world.xero_invoices(Reference=slug)) == 1

    world.put_record("invoices", record)  # the redelivered event, through the normal path
    world.settle()

    (invoice,) = world.xero_invoices(Reference=slug)
    assert world.mapping_of(RecordType.INVOICE, slug) == invoice["InvoiceID"]
    assert world.dead_letters_for(slug) == []


def test_given_payment_written_then_worker_died_when_event_redelivered_then_applied_once(
    world: World,
) -> None:
    client = world.slug()
    world.put_client(world.client(client))
    invoice, _ = world.synced_invoice(client)
    payment = ignition_records.payment(f"pypay_{world.tag}", client, "50.00", invoice)
    service = world.sandbox.sync.service()  # type: ignore[union-attr]
    crashing = dies_before_mapping(service.payments)

    with pytest.raises(CrashBeforeMapping):
        crashing.handle(event(RecordType.PAYMENT, payment, client))
    (xero_invoice,) = world.xero_invoices(Reference=invoice)
    assert len(world.xero_payments_for(xero_invoice["InvoiceID"])) == 1

    world.put_and_settle("payments", payment)

    payments = world.xero_payments_for(xero_invoice["InvoiceID"])
    assert [Decimal(str(p["Amount"])) for p in payments] == [Decimal("50.00")]
    assert world.mapping_of(RecordType.PAYMENT, f"{payment['slug']}:{invoice}") == payments[0]["PaymentID"]
