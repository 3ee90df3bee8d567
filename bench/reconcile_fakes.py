"""The reconciliation engine at 100,000 records a side without the sandbox's servers: the same
``Reconciler`` (SQLite working set, comparison, report writers) behind in-memory ports that
generate each page on demand and count the calls. Measures what the function itself costs in
CPU time and memory; network latency is added from the call counts (see the report's figures).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Invoice, Payment
from shared.reconcile.model import RunCounters
from shared.reconcile.ports import XeroEventItem
from shared.store.dead_letter_queue import DeadLetterInfo
from shared.store.mappings import RecordMapping

AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
LOST = 10  # clients never written to Xero (lost webhooks)
CENT_OFF = 10  # invoices whose Xero total is one cent more


def contact_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"contact-{i}"))


def invoice_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"invoice-{i}"))


class Books:
    def __init__(self, clients: int, invoices: int, counters: RunCounters) -> None:
        self.clients, self.invoices, self.counters = clients, invoices, counters
        self.page_limit = 500
        self.sent: list[SyncEvent] = []

    def client_of(self, invoice: int) -> int:
        return LOST + invoice % (self.clients - LOST)

    # -- Xero ---------------------------------------------------------------------------------
    def find_contacts(self, where: str | None = None, *, ids: Sequence[str] = (), page: int | None = None,
                      page_size: int | None = None, **_: Any) -> list[Contact]:  # fmt: skip
        return [
            Contact(ContactID=contact_id(i), ContactNumber=f"cli_{i:06d}", Name=f"Client {i:06d}",
                    EmailAddress=f"c{i}@example.test", ContactStatus="ACTIVE", UpdatedDateUTC=AN_HOUR_AGO)
            for i in self._page(ids, page, page_size, LOST, self.clients)
        ]  # fmt: skip

    def find_invoices(self, where: str | None = None, *, ids: Sequence[str] = (), page: int | None = None,
                      page_size: int | None = None, **_: Any) -> list[Invoice]:  # fmt: skip
        return [
            Invoice(InvoiceID=invoice_id(i), Type="ACCREC", Status="AUTHORISED", InvoiceNumber=f"IGN-{i}",
                    Reference=f"inv_{i:06d}", CurrencyCode="AUD",
                    Total=Decimal("100.01") if i < CENT_OFF else Decimal("100.00"), AmountPaid=Decimal(0),
                    UpdatedDateUTC=AN_HOUR_AGO)
            for i in self._page(ids, page, page_size, 0, self.invoices)
        ]  # fmt: skip

    def _page(
        self, ids: Sequence[str], page: int | None, page_size: int | None, first: int, end: int
    ) -> range:
        """One Xero call: the record indexes of one page of a listing from ``first`` to ``end``; a
        lookup by ids finds nothing (no record of this bench is in Xero by id)."""
        self.counters.xero_calls += 1
        if ids:
            return range(0)
        assert page is not None and page_size is not None
        return range(first + (page - 1) * page_size, min(end, first + page * page_size))

    def find_payments(self, where: str | None = None, **_: Any) -> list[Payment]:
        self.counters.xero_calls += 1
        return []

    # -- Ignition -----------------------------------------------------------------------------
    def _paged(self, count: int, make: Any) -> Iterator[Any]:
        for i in range(count):
            if i % self.page_limit == 0:
                self.counters.ignition_requests += 1
            yield make(i)

    def iter_clients(self, updated_from: datetime | None = None) -> Iterator[IgnitionClient]:
        return self._paged(
            self.clients,
            lambda i: IgnitionClient(slug=f"cli_{i:06d}", name=f"Client {i:06d}", email=f"c{i}@example.test",
                                     created_at=AN_HOUR_AGO, updated_at=AN_HOUR_AGO),
        )  # fmt: skip

    def iter_invoices(self, updated_from: datetime | None = None) -> Iterator[IgnitionInvoice]:
        price = {"amount": "100.00", "currency": "AUD"}
        return self._paged(
            self.invoices,
            lambda i: IgnitionInvoice.model_validate(
                {"slug": f"inv_{i:06d}", "reference_number": f"IGN-{i}",
                 "client": {"slug": f"cli_{self.client_of(i):06d}"},
                 "amount": {"total": "100.00", "currency": "AUD"}, "date": "2026-11-02",
                 "items": [{"description": "Fees", "unit_price": price}],
                 "created_at": AN_HOUR_AGO, "updated_at": AN_HOUR_AGO}
            ),
        )  # fmt: skip

    def iter_payments(self, updated_from: datetime | None = None) -> Iterator[IgnitionPayment]:
        self.counters.ignition_requests += 1
        return iter(())

    def get_client(self, slug: str) -> IgnitionClient | None:
        return None

    def get_invoice(self, slug: str) -> IgnitionInvoice | None:
        return None

    # -- DynamoDB / SQS / S3 ----------------------------------------------------------------------
    def forward(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]:
        found = {}
        for slug in ignition_ids:
            index = int(slug.split("_")[1])
            if record_type == RecordType.CLIENT and index < LOST:
                continue
            xero = contact_id(index) if record_type == RecordType.CLIENT else invoice_id(index)
            found[slug] = RecordMapping(record_type=record_type, ignition_id=slug, xero_id=xero,
                                        ignition_updated_at=AN_HOUR_AGO, synced_at=AN_HOUR_AGO,
                                        last_event_id="bench", match_method="created", version=1)  # fmt: skip
        return found

    def reverse(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def send(self, event: SyncEvent) -> None:
        self.sent.append(event)

    def read(self, limit: int) -> list[DeadLetterInfo]:
        return []


class Runs:
    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def load_checkpoint(self, kind: str) -> dict[str, Any] | None:
        return self.items.get(kind)

    def save_checkpoint(self, kind: str, body: dict[str, Any]) -> None:
        self.items[kind] = body

    def clear_checkpoint(self, kind: str) -> None:
        self.items.pop(kind, None)

    def save_latest(self, body: dict[str, Any]) -> None:
        self.items["latest"] = body

    def xero_events(self, category: str, limit: int) -> list[XeroEventItem]:
        return []

    def delete_xero_events(self, category: str, resource_ids: Sequence[str]) -> None:
        pass


class Files:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sizes: dict[str, int] = {}

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.sizes[key] = path.stat().st_size

    def get_file(self, key: str, path: Path) -> bool:
        return False

    def delete(self, key: str) -> None:
        pass
