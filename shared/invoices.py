"""Use case: one Ignition invoice -> exactly one Xero sales invoice, to the cent.

Xero's rules decide what an update may do (see ``InvoiceSync._write``):
- DRAFT/SUBMITTED, or AUTHORISED without payments: the invoice is updated in place;
- with payments allocated (or PAID): Xero refuses changes to lines and amounts. Nothing is
  forced; the event stops for a person with Xero's message (credit or void by hand, then replay);
- VOIDED or DELETED in Xero: somebody did that on purpose; it is not resurrected.
An Ignition invoice in a void state is voided in Xero (DELETED while still a draft), unless it has
payments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from shared.audit import write_history
from shared.billing import InvoicePlan, financial_signature, plan_invoice
from shared.config import InvoiceRules, RecordType
from shared.errors import PermanentSyncError
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice
from shared.models.xero import Invoice
from shared.money import format_money
from shared.outcome import SyncOutcome
from shared.ports import ContactEnsurer, IgnitionInvoicesPort, XeroInvoicesPort
from shared.record_sync import LedgerSync, XeroState, written_body
from shared.refusals import currency_error, period_locked_error
from shared.store.mappings import RecordMapping
from shared.store.tax_rates import TaxRatesReader
from shared.xero.errors import XeroValidationError
from shared.xero.idempotency import idempotency_key
from shared.xero.rules import (
    OrganisationTaxTypes,
    XeroCurrencyNotEnabled,
    XeroDocumentLocked,
    XeroDuplicateNumber,
    XeroPeriodLocked,
    XeroTaxTypeRefused,
    raise_for_element,
)

logger = logging.getLogger(__name__)


# Decisions the Xero record itself shows (the due date is on it): no history note of their own
# when notes are written only for decisions (``xero.history_notes: decisions``).
# Nor does finding an invoice a failed call had written (found by its number and updated in place).
ROUTINE_DECISIONS = ("no due date in Ignition", "found Xero invoice")


class DuplicateNumber(PermanentSyncError):
    """Xero already has an invoice with this number: ours from before a crash, or somebody else's."""

    def __init__(self, reason: str, *, category: str = "duplicate_number") -> None:
        super().__init__(reason, category=category)


class _TaxTypeRefused(Exception):
    """Xero refused a tax type: worth one more try with freshly read tax rates."""

    def __init__(self, error: PermanentSyncError) -> None:
        super().__init__(error.reason)
        self.error = error


@dataclass(kw_only=True, eq=False)
class InvoiceSync(LedgerSync[XeroInvoicesPort, IgnitionInvoicesPort, InvoiceRules]):
    record_type = RecordType.INVOICE

    contacts: ContactEnsurer
    # The Xero invoice an Ignition invoice was drafted from (shared/xero_to_ignition), if any.
    drafted_from: Callable[[IgnitionInvoice], str | None] | None = None
    # The organisation's tax rates when its environments share them (shared/store/tax_rates.py);
    # None: the client's own cache.
    tax_rates: TaxRatesReader | None = None

    @property
    def _rates(self) -> TaxRatesReader:
        return self.tax_rates or self.xero

    def handle(self, event: SyncEvent) -> SyncOutcome:
        invoice = self._newest(event, IgnitionInvoice, self.ignition.get_invoice)
        if invoice is None:
            return self._skip(event, "skipped_missing", "invoice not found in Ignition's Reporting API")
        mapping = self.store.get(RecordType.INVOICE, invoice.slug)
        if (stale := self._skip_written(event, invoice, mapping)) is not None:
            return stale
        state = invoice.state.lower()
        if state in self.rules.void_states:
            return self._void(invoice, mapping, event)
        if state in self.rules.skip_states and mapping is None:
            return self._skip_state(event, invoice, f"invoice state {invoice.state!r} is not synced")
        return self._apply(invoice, mapping, event)

    def ensure(self, invoice_slug: str, event: SyncEvent) -> str:
        """The Xero InvoiceID for an Ignition invoice, syncing it first when needed (a payment can
        arrive before its invoice's webhook)."""
        missing = PermanentSyncError(
            f"invoice {invoice_slug} is not in Ignition's Reporting API", category="missing_invoice"
        )
        return self._ensure(invoice_slug, event, self.ignition.get_invoice, self._apply, missing)

    # -- steps ---------------------------------------------------------------------------------

    def _apply(
        self, invoice: IgnitionInvoice, mapping: RecordMapping | None, event: SyncEvent
    ) -> SyncOutcome:
        contact_id = self.contacts.ensure(invoice.client.slug, event)
        client = self.ignition.get_client(invoice.client.slug) if self.rules.owner else None
        plan = self._plan(invoice, contact_id, client)
        try:
            return self._apply_plan(invoice, plan, mapping, event)
        except _TaxTypeRefused as refused:
            # The organisation's tax rates may have changed since they were cached: read them again
            # once, and write again only when that changes what is sent.
            self._rates.invalidate_reference_data("TaxRates")
            retry = self._plan(invoice, contact_id, client)
            if financial_signature(retry.invoice) == financial_signature(plan.invoice):
                raise refused.error from None
            retry.notes.append(
                "Xero refused a tax type: re-read the organisation's tax rates and wrote again"
            )
            try:
                return self._apply_plan(invoice, retry, mapping, event)
            except _TaxTypeRefused as again:
                raise again.error from None

    def _plan(self, invoice: IgnitionInvoice, contact_id: str, client: IgnitionClient | None) -> InvoicePlan:
        taxes = OrganisationTaxTypes(
            self._rates.tax_rates,
            self.rules.tax_types_by_rate,
            self.rules.untaxed_tax_type,
            refresh=lambda: self._rates.invalidate_reference_data("TaxRates"),
        )
        return plan_invoice(
            invoice, contact_id=contact_id, client=client, rules=self.rules, unit=self.unit, taxes=taxes
        )

    def _apply_plan(
        self, invoice: IgnitionInvoice, plan: InvoicePlan, mapping: RecordMapping | None, event: SyncEvent
    ) -> SyncOutcome:
        decisions = list(plan.notes)
        if mapping is not None:
            xero_id: str | None = mapping.xero_id
            unchanged = self._skip_unchanged(event, invoice, mapping, self._written(plan, mapping.xero_id))
            if unchanged is not None:
                return unchanged
            mapping = self._writing(mapping)
            saved = self._write(invoice, plan, xero_id, decisions)
        elif self.drafted_from is not None and (xero_id := self.drafted_from(invoice)) is not None:
            # Finished from a draft made of a Xero invoice: that invoice is updated, never a second.
            decisions.append(f"drafted in Ignition from Xero invoice {xero_id}: updated it in place")
            saved = self._write(invoice, plan, xero_id, decisions)
        elif plan.invoice.InvoiceNumber:
            # Create-only first: the number is unique in Xero, so an invoice written before a crash
            # makes this fail instead of duplicating, and only then is it looked up (1 call, not 2).
            xero_id = None
            try:
                saved = self._write(invoice, plan, None, decisions, create_only=True)
            except DuplicateNumber:
                xero_id = self._find_existing(invoice, plan, decisions)
                if xero_id is None:
                    raise
                saved = self._write(invoice, plan, xero_id, decisions)
        else:
            xero_id = self._find_existing(invoice, plan, decisions)
            saved = self._write(invoice, plan, xero_id, decisions)
        assert saved.InvoiceID is not None

        mismatch = None
        if saved.Total is not None and saved.Total != plan.ignition_total.amount:
            mismatch = (
                "total mismatch: Xero "
                f"{format_money(saved.Total, saved.CurrencyCode or plan.ignition_total.currency)}, "
                f"Ignition {plan.ignition_total}"
            )
        self._map(
            event,
            ignition_id=invoice.slug,
            xero_id=saved.InvoiceID,
            created_at=invoice.created_at,
            updated_at=invoice.updated_at,
            match_method="mapping" if mapping else ("invoice_number" if xero_id else "created"),
            previous=mapping,
            xero_state=XeroState(saved.AmountDue, saved.Status, saved.CurrencyCode),
            written=self._written(plan, saved.InvoiceID),
        )
        action: Literal["created", "updated"] = "updated" if xero_id else "created"
        noteworthy = [d for d in decisions if not d.startswith(ROUTINE_DECISIONS)]
        note = self._history_note(
            f"{action.capitalize()} from Ignition invoice {invoice.reference_number or ''} "
            f"[{invoice.slug}] (Ignition updated {invoice.updated_at.isoformat()}) by the sync",
            noteworthy,
        )
        if note is not None:
            write_history(self.xero, "Invoices", saved.InvoiceID, note)
        return self._record(
            event,
            SyncOutcome(
                action,
                invoice.slug,
                saved.InvoiceID,
                "mapping" if mapping else "created",
                decisions,
                RecordType.INVOICE,
                mismatch,
            ),
            invoice.updated_at,
        )

    @staticmethod
    def _written(plan: InvoicePlan, xero_id: str) -> str:
        """What an update of ``xero_id`` sends Xero (``_write``'s body, at its unit precision)."""
        return written_body(plan.invoice.model_copy(update={"InvoiceID": xero_id}), plan.unitdp4)

    def _find_existing(self, invoice: IgnitionInvoice, plan: InvoicePlan, decisions: list[str]) -> str | None:
        """An invoice written before a crash, before its mapping was saved: found by our key."""
        if plan.invoice.InvoiceNumber:
            found = self.xero.find_invoices_by_number(plan.invoice.InvoiceNumber)
        else:
            # Ignition's own number can hold any text: the "[slug]" ending is what identifies it.
            reference = plan.invoice.Reference or ""
            found = self.xero.find_invoices_by_reference(reference, ending=f"[{invoice.slug}]")
        ours = [inv for inv in found if inv.Status not in ("DELETED", "VOIDED")]
        if not ours:
            return None
        existing = ours[0]
        if plan.invoice.InvoiceNumber and existing.Reference != invoice.slug:
            raise PermanentSyncError(
                f"Xero invoice number {plan.invoice.InvoiceNumber} already belongs to another invoice "
                f"({existing.InvoiceID}): set invoices.number_field to 'Reference' or renumber, then replay",
                category="duplicate_number",
            )
        decisions.append(f"found Xero invoice {existing.InvoiceID} written earlier; updating it")
        return existing.InvoiceID

    def _write(
        self,
        invoice: IgnitionInvoice,
        plan: InvoicePlan,
        xero_id: str | None,
        decisions: list[str],
        *,
        create_only: bool = False,
    ) -> Invoice:
        body = plan.invoice.model_copy(update={"InvoiceID": xero_id}) if xero_id else plan.invoice
        key = idempotency_key(
            invoice.slug, invoice.updated_at.isoformat(), body.model_dump_json(exclude_none=True)
        )
        write = self.xero.create_invoices if create_only else self.xero.save_invoices
        (saved,) = write([body], idempotency_key=key, unitdp4=plan.unitdp4)
        try:
            raise_for_element(saved.ValidationErrors, "/Invoices")
        except XeroPeriodLocked as refused:
            raise period_locked_error(
                self.describe(invoice), invoice.date.isoformat(), refused, self.xero
            ) from None
        except XeroCurrencyNotEnabled as refused:
            currency = refused.currency or plan.invoice.CurrencyCode or invoice.amount.currency
            raise currency_error(self.describe(invoice), currency, self.xero) from None
        except XeroTaxTypeRefused as refused:
            raise _TaxTypeRefused(
                PermanentSyncError(
                    f"Xero rejected invoice {invoice.slug}: {'; '.join(refused.messages)}: check "
                    "invoices.tax_types_by_rate and the account codes against the organisation's tax rates, "
                    "then replay",
                    category="xero_validation",
                )
            ) from None
        except XeroDocumentLocked as refused:
            if not xero_id:
                raise PermanentSyncError(
                    f"Xero rejected invoice {invoice.slug}: {'; '.join(refused.messages)}",
                    category="xero_validation",
                ) from None
            raise PermanentSyncError(
                f"Xero invoice {xero_id} can no longer change ({'; '.join(refused.messages)}); Ignition's "
                f"change to {invoice.slug} was not applied: credit or void it in Xero by hand, then replay",
                category="invoice_locked",
            ) from None
        except XeroDuplicateNumber as refused:
            raise DuplicateNumber(
                f"Xero refused invoice number {plan.invoice.InvoiceNumber}: {'; '.join(refused.messages)}",
                category="duplicate_number",
            ) from None
        except XeroValidationError as refused:
            raise PermanentSyncError(
                f"Xero rejected invoice {invoice.slug}: {'; '.join(refused.messages)}",
                category="xero_validation",
            ) from None
        return saved

    @staticmethod
    def describe(invoice: IgnitionInvoice) -> str:
        """How a bookkeeper knows the invoice: its number, and the Ignition slug."""
        number = invoice.reference_number
        return f"invoice {number} ({invoice.slug})" if number else f"invoice {invoice.slug}"

    def _void(self, invoice: IgnitionInvoice, mapping: RecordMapping | None, event: SyncEvent) -> SyncOutcome:
        if mapping is None:
            return self._skip(
                event,
                "skipped_state",
                "voided in Ignition before it reached Xero: nothing to void",
                ignition_id=invoice.slug,
                updated_at=invoice.updated_at,
            )
        found = self.xero.find_invoices_by_id([mapping.xero_id])
        current = found[0] if found else None
        if current is None or current.Status in ("VOIDED", "DELETED"):
            decision = "already voided or deleted in Xero"
        else:
            if current.AmountPaid:
                raise PermanentSyncError(
                    f"Ignition voided {invoice.slug} but Xero invoice {mapping.xero_id} has "
                    f"{format_money(current.AmountPaid, current.CurrencyCode or invoice.amount.currency)} "
                    "paid: remove the payments in Xero first, then replay",
                    category="invoice_locked",
                )
            status: Literal["VOIDED", "DELETED"] = (
                "VOIDED" if current.Status in ("AUTHORISED", "PAID") else "DELETED"
            )
            mapping = self._writing(mapping)
            (saved,) = self.xero.save_invoices(
                [Invoice(InvoiceID=mapping.xero_id, Status=status)],
                idempotency_key=idempotency_key(invoice.slug, "void", invoice.updated_at.isoformat()),
            )
            if saved.ValidationErrors:
                raise PermanentSyncError(
                    f"Xero refused to void {mapping.xero_id}: "
                    f"{'; '.join(e.Message for e in saved.ValidationErrors)}",
                    category="xero_validation",
                )
            decision = f"set to {status} in Xero"
        # Voided, or left as it was: a payment reads Xero either way, and a later change is not
        # compared with what was written before the void.
        self._advance(mapping, event, invoice.updated_at, xero_amount_due=None, xero_body_sha256=None)
        return self._record(
            event,
            SyncOutcome("voided", invoice.slug, mapping.xero_id, "mapping", [decision], RecordType.INVOICE),
            invoice.updated_at,
        )
