"""What the full reconciliation reports for Xero -> Ignition (nothing here is ever repaired):

- ``ignition_draft``, no draft: a Xero invoice marked for Ignition (a sales DRAFT with the mark)
  that has no Ignition draft: no webhook brought it, the draft was refused (the reason is quoted),
  or Ignition answered without making it and the worker has not tried again;
- ``ignition_draft``, unconfirmed (the detail starts with ``DRAFT_UNCONFIRMED``): the request that
  makes the draft was sent and its answer is not recorded, so a draft may exist that Ignition's
  lookup does not show; the worker parks such an event rather than make a second draft, and the
  detail says what to check in Ignition;
- ``ignition_draft``, waiting (the detail starts with ``DRAFT_WAITING``): a draft nobody has
  finished in Ignition for longer than ``xero_to_ignition.waiting_draft_days``.

One category for both: the discrepancy alarm sums one metric per category, at most 10.

The marked invoices come from one listing of Xero's DRAFT sales invoices (pages of 100, with their
lines so a tracking mark counts); the drafts from the records (one Query).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.config import IntegrationConfig, ReconcileCategory, RecordType, XeroToIgnitionRules
from shared.models.xero import Invoice
from shared.money import Money
from shared.reconcile.compare import invoice_key
from shared.reconcile.model import DRAFT_UNCONFIRMED, DRAFT_WAITING, Discrepancy
from shared.reconcile.ports import MappingLookup
from shared.xero_to_ignition.records import DraftRecord, DynamoDraftRecordStore
from shared.xero_to_ignition.service import ignition_link, unconfirmed_reason
from shared.xero_to_ignition.trigger import is_marked, marker_of

XERO_PAGE_SIZE = 100
# A report category (shared/reconcile/model.py), never a dead letter's.
IGNITION_DRAFT: ReconcileCategory = "ignition_draft"


class DraftInvoicesReader(Protocol):
    def find_invoices(self, *, statuses: Sequence[str] = (), page: int | None = None) -> list[Invoice]: ...


class DraftRecordsReader(Protocol):
    def all(self) -> list[DraftRecord]: ...


def _amount(invoice: Invoice) -> Money | None:
    if invoice.Total is None or not invoice.CurrencyCode:
        return None
    return Money(amount=invoice.Total, currency=invoice.CurrencyCode)


def findings(
    marked: Iterable[Invoice],
    records: Iterable[DraftRecord],
    rules: XeroToIgnitionRules,
    *,
    now: datetime,
) -> list[Discrepancy]:
    """The report's lines, from the marked Xero drafts and the draft records (pure)."""
    by_marker = {record.marker: record for record in records}
    found: list[Discrepancy] = []
    for invoice in marked:
        assert invoice.InvoiceID is not None
        record = by_marker.get(marker_of(invoice.InvoiceID))
        if record is not None and record.state in ("drafted", "finalised"):
            continue
        if record is None:
            detail = "marked for Ignition, no draft asked for (no webhook brought it, or the feature was off)"
        elif record.state in ("refused", "held"):
            detail = f"marked for Ignition; no draft: {record.reason}"
        else:  # intent (the worker died, or is still at it) or unconfirmed (parked for a person)
            detail = f"{DRAFT_UNCONFIRMED}{record.reason or unconfirmed_reason(record)}"
        found.append(
            Discrepancy(
                category=IGNITION_DRAFT,
                record_type=RecordType.INVOICE,
                xero_id=invoice.InvoiceID,
                detail=detail,
                invoice_number=invoice.InvoiceNumber,
                amount=_amount(invoice),
            )
        )
    waited = timedelta(days=rules.waiting_draft_days)
    for record in by_marker.values():
        if record.state != "drafted" or record.drafted_at is None or now - record.drafted_at < waited:
            continue
        link = ignition_link(record.app_path, rules.app_url) if record.app_path else "no link"
        days = (now - record.drafted_at).days
        found.append(
            Discrepancy(
                category=IGNITION_DRAFT,
                record_type=RecordType.INVOICE,
                xero_id=record.xero_invoice_id,
                detail=f"{DRAFT_WAITING}{record.draft_id} for {record.client_slug} has waited {days} days "
                f"for a person to finish it ({link})",
                invoice_number=record.xero_number,
                amount=Money(amount=record.total, currency=record.currency)
                if record.total is not None and record.currency
                else None,
            )
        )
    return found


@dataclass(frozen=True)
class SafetyNet:
    """The reconciliation's check (shared/reconcile/engine.py, full runs where the feature is on)."""

    xero: DraftInvoicesReader
    records: DraftRecordsReader
    rules: XeroToIgnitionRules
    _: KW_ONLY
    owner_of: Callable[[Sequence[str]], dict[str, str]]
    invoice_slug_prefix: str

    def marked_drafts(self) -> list[Invoice]:
        """Xero's sales DRAFTs carrying the mark, not written by this product."""
        marked: list[Invoice] = []
        page = 1
        while True:
            batch = self.xero.find_invoices(statuses=["DRAFT"], page=page)
            marked.extend(
                invoice
                for invoice in batch
                if invoice.InvoiceID
                and is_marked(invoice, self.rules).marked
                and invoice_key(invoice.Reference, self.invoice_slug_prefix) is None
            )
            if len(batch) < XERO_PAGE_SIZE:
                break
            page += 1
        owned = self.owner_of([str(i.InvoiceID) for i in marked]) if marked else {}
        return [invoice for invoice in marked if str(invoice.InvoiceID) not in owned]

    def findings(self, now: datetime) -> list[Discrepancy]:
        return findings(self.marked_drafts(), self.records.all(), self.rules, now=now)


def safety_net(
    state_table: str, config: IntegrationConfig, xero: DraftInvoicesReader, mappings: MappingLookup
) -> SafetyNet:
    """The check as the reconcile function wires it (shared/reconcile/wiring.py)."""
    return SafetyNet(
        xero,
        DynamoDraftRecordStore(state_table),
        config.xero_to_ignition,
        owner_of=lambda ids: mappings.reverse(RecordType.INVOICE, ids),
        invoice_slug_prefix=config.reconcile.invoice_slug_prefix,
    )
