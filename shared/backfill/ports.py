"""What the backfill needs from Xero, Ignition's Reporting API, the mapping table and its checkpoint.

Bulk reads (every record of a kind, ``page_size`` up to 1,000) and batched writes: the live sync's
per-record ports (``shared/contacts.py``, ``shared/invoices.py``) would cost two calls per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from shared.config import RecordType
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Currency, Invoice, Organisation, Payment, TaxRate
from shared.store.checkpoints import Checkpoint
from shared.store.mappings import AuditEntry, RecordMapping


class XeroPort(Protocol):
    def iter_contacts(
        self, where: str | None = None, *, page_size: int = 100, include_archived: bool = False
    ) -> Iterator[Contact]: ...

    def save_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]: ...

    def iter_invoices(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Invoice]: ...

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]: ...

    def iter_payments(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Payment]: ...

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]: ...

    def tax_rates(self) -> list[TaxRate]: ...

    def organisation(self) -> Organisation: ...

    def currencies(self) -> list[Currency]: ...


class IgnitionPort(Protocol):
    def iter_clients(self) -> Iterator[IgnitionClient]: ...

    def iter_invoices(self) -> Iterator[IgnitionInvoice]: ...

    def iter_payments(self) -> Iterator[IgnitionPayment]: ...


class MappingsPort(Protocol):
    def mappings(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]: ...

    def owners(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]: ...

    def save_many(self, mappings: Sequence[RecordMapping]) -> set[str]:
        """Map records that had no mapping (conditional writes); the Ignition ids that were mapped
        meanwhile, or whose Xero record belongs to another record, are returned, not written."""
        ...

    def audit(self, entries: Sequence[AuditEntry]) -> None: ...


class CheckpointPort(Protocol):
    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...
