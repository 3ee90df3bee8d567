"""The small interfaces the reconciliation is written against. The Lambda wires the real adapters
(``shared.reconcile.adapters``, the Xero and Ignition clients); unit tests wire in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from shared.config import RecordType
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Invoice, Payment
from shared.reconcile.model import Discrepancy
from shared.store.dead_letter_queue import DeadLetterInfo
from shared.store.mappings import RecordMapping


class XeroReader(Protocol):
    """The Xero reads the reconciliation makes: pages of each listing, or records by id
    (``shared.xero.client.XeroClient`` offers more filters; fakes need only these)."""

    def find_contacts(
        self,
        *,
        ids: Sequence[str] = (),
        page: int | None = None,
        page_size: int | None = None,
        include_archived: bool = False,
        summary_only: bool = False,
    ) -> list[Contact]: ...

    def find_invoices(
        self,
        *,
        ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
        page: int | None = None,
        page_size: int | None = None,
        summary_only: bool = False,
    ) -> list[Invoice]: ...

    def find_payments(
        self, *, ids: Sequence[str] = (), page: int | None = None, page_size: int | None = None
    ) -> list[Payment]: ...


class IgnitionReader(Protocol):
    def iter_clients(self, updated_from: datetime | None = None) -> Iterator[IgnitionClient]: ...

    def iter_invoices(self, updated_from: datetime | None = None) -> Iterator[IgnitionInvoice]: ...

    def iter_payments(self, updated_from: datetime | None = None) -> Iterator[IgnitionPayment]: ...

    def get_client(self, slug: str) -> IgnitionClient | None: ...

    def get_invoice(self, slug: str) -> IgnitionInvoice | None: ...


class MappingLookup(Protocol):
    def forward(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]:
        """Mappings of these Ignition ids (absent ids have none)."""
        ...

    def reverse(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]:
        """Xero id -> Ignition id for the Xero ids that are mapped."""
        ...


class EventQueue(Protocol):
    def send(self, event: SyncEvent) -> None: ...


class DeadLetterSource(Protocol):
    def read(self, limit: int) -> list[DeadLetterInfo]: ...


@dataclass(frozen=True)
class XeroEventItem:
    category: str  # CONTACT | INVOICE
    resource_id: str
    event_type: str
    event_date_utc: str


class RunStore(Protocol):
    """The state table's reconcile items: checkpoints, the latest run, Xero webhook events."""

    def load_checkpoint(self, kind: str) -> dict[str, Any] | None: ...

    def save_checkpoint(self, kind: str, body: dict[str, Any]) -> None: ...

    def clear_checkpoint(self, kind: str) -> None: ...

    def save_latest(self, body: dict[str, Any]) -> None: ...

    def xero_events(self, category: str, limit: int) -> list[XeroEventItem]: ...

    def delete_xero_events(self, category: str, resource_ids: Sequence[str]) -> None: ...


class Artifacts(Protocol):
    """The archive bucket: reports, and the working set of a run that stopped early."""

    def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    def get_file(self, key: str, path: Path) -> bool: ...

    def delete(self, key: str) -> None: ...


class ReportLinks(Protocol):
    """A link to a stored report that opens without AWS access (an S3 presigned GET)."""

    def link(self, key: str, seconds: int) -> str: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


class DraftCheck(Protocol):
    """Xero -> Ignition's findings (shared/xero_to_ignition/safety_net.py)."""

    def findings(self, now: datetime) -> list[Discrepancy]: ...
