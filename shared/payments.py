"""Use case: one Ignition payment -> Xero payments against the mapped invoices, exactly once.

One Ignition payment may cover several invoices: it becomes one Xero payment per invoice, each
mapped as ``<payment slug>:<invoice slug>``, none above the invoice's amount due. Each carries
the Ignition slug in its Reference, so a payment written just before a crash is found again
instead of applied twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from shared.audit import write_history
from shared.billing import Allocation, allocate_payment, payment_reference, xero_payment
from shared.config import PaymentRules, RecordType
from shared.errors import PermanentSyncError
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionPayment, IgnitionPaymentAllocation
from shared.models.xero import Invoice, Payment
from shared.money import format_money
from shared.outcome import SyncOutcome
from shared.ports import IgnitionPaymentsPort, InvoiceEnsurer, XeroPaymentsPort
from shared.record_sync import LedgerSync
from shared.refusals import period_locked_error
from shared.store.mappings import RecordMapping
from shared.xero.errors import XeroValidationError
from shared.xero.idempotency import idempotency_key
from shared.xero.rules import XeroPeriodLocked, raise_for_element

logger = logging.getLogger(__name__)


def allocation_id(payment_slug: str, invoice_slug: str) -> str:
    return f"{payment_slug}:{invoice_slug}"


@dataclass(kw_only=True, eq=False)
class PaymentSync(LedgerSync[XeroPaymentsPort, IgnitionPaymentsPort, PaymentRules]):
    record_type = RecordType.PAYMENT

    invoices: InvoiceEnsurer

    def handle(self, event: SyncEvent) -> SyncOutcome:
        payment = self._newest(event, IgnitionPayment, self.ignition.get_payment)
        if payment is None:
            return self._skip(event, "skipped_missing", "payment not found in Ignition's Reporting API")
        done = {
            target.slug: mapping
            for target in payment.invoices
            if (mapping := self.store.get(RecordType.PAYMENT, allocation_id(payment.slug, target.slug)))
        }
        if payment.state.lower() not in self.rules.applied_states:
            return self._not_applied(event, payment, done)
        pending = [target for target in payment.invoices if target.slug not in done]
        if not pending:
            return self._skip(
                event,
                "skipped_duplicate",
                "every allocation is already applied in Xero",
                ignition_id=payment.slug,
            )

        xero_ids = {target.slug: self.invoices.ensure(target.slug, event) for target in pending}
        decisions: list[str] = []
        known = self._known_invoices(payment, pending, xero_ids)
        invoices, written_before = self._invoices_now(payment, xero_ids, known, decisions)
        due = self._due(payment, xero_ids, invoices, written_before)

        to_apply = payment.model_copy(update={"invoices": [t for t in pending if t.slug in due]})
        plan = allocate_payment(to_apply, due_by_invoice=due, unit=self.unit) if due else None
        if known is not None and (plan is None or plan.notes or plan.unapplied):
            # Capped by what we believe is due: Xero may hold more (a payment removed there), so
            # read it rather than under-apply.
            return self.handle(event)
        created: dict[str, Payment] = dict(written_before)
        if plan:
            decisions.extend(plan.notes)
        if plan and plan.allocations:
            written = self._write_allocations(
                event, payment, plan.allocations, believed_due=known is not None
            )
            if written is None:
                return self.handle(event)
            created.update(written)

        self._map_allocations(event, payment, created, set(written_before))
        if known is not None and plan is not None:
            self._remember_due(known, plan.allocations, invoices)
        self._note_history(payment, created, set(written_before), decisions)
        ids = ", ".join(p.PaymentID or "" for p in created.values())
        unapplied = plan.unapplied if plan else Decimal(0)
        mismatch = (
            f"{format_money(unapplied, payment.amount.currency)} of the payment was not applied"
            if unapplied > 0
            else None
        )
        return self._record(
            event,
            SyncOutcome(
                "applied", payment.slug, ids or None, "created", decisions, RecordType.PAYMENT, mismatch
            ),
            payment.version_at,
        )

    def _not_applied(
        self, event: SyncEvent, payment: IgnitionPayment, done: dict[str, RecordMapping]
    ) -> SyncOutcome:
        """A payment in a state that is not applied: skipped, unless it already was applied in
        Xero (then a person reverses it there)."""
        if done:
            raise PermanentSyncError(
                f"payment {payment.slug} is now {payment.state!r} in Ignition but was applied in Xero "
                f"({', '.join(m.xero_id for m in done.values())}): reverse it in Xero by hand if it was "
                "refunded",
                category="payment_reversed",
            )
        return self._skip(
            event,
            "skipped_state",
            f"payment state {payment.state!r} is not applied",
            ignition_id=payment.slug,
        )

    def _invoices_now(
        self,
        payment: IgnitionPayment,
        xero_ids: dict[str, str],
        known: dict[str, RecordMapping] | None,
        decisions: list[str],
    ) -> tuple[dict[str, Invoice], dict[str, Payment]]:
        """The invoices by Xero id, and the allocations (by invoice slug) already in Xero."""
        if known is not None:
            # Our own last write says what is due: no read; marked unknown until the payment is
            # written and mapped, so a crash in between makes the next try read Xero (and find it).
            return self._unknown_while_writing(known), {}
        found = self.xero.find_invoices_by_id(sorted(set(xero_ids.values())))
        invoices = {inv.InvoiceID: inv for inv in found if inv.InvoiceID}
        # Only an invoice that already has payments can hold one we wrote before a crash.
        if any(invoices[i].Payments for i in xero_ids.values() if i in invoices):
            return invoices, self._already_in_xero(payment, xero_ids, decisions)
        return invoices, {}

    def _due(
        self,
        payment: IgnitionPayment,
        xero_ids: dict[str, str],
        invoices: dict[str, Invoice],
        written_before: dict[str, Payment],
    ) -> dict[str, tuple[str, Decimal]]:
        """Ignition invoice slug -> (Xero InvoiceID, AmountDue) for each allocation still to write."""
        due: dict[str, tuple[str, Decimal]] = {}
        for slug, xero_id in xero_ids.items():
            if slug in written_before:
                continue
            current = invoices.get(xero_id)
            if current is None:
                raise PermanentSyncError(
                    f"Xero invoice {xero_id} (for {slug}) is gone", category="missing_invoice"
                )
            self._check_payable(payment, slug, current)
            due[slug] = (xero_id, current.AmountDue or Decimal(0))
        return due

    def _write_allocations(
        self,
        event: SyncEvent,
        payment: IgnitionPayment,
        allocations: list[Allocation],
        *,
        believed_due: bool,
    ) -> dict[str, Payment] | None:
        """One Xero payment per allocation, by invoice slug; None when Xero refused one written on
        what we believed was due (the ones it took are mapped; the caller reads Xero again)."""
        bodies = [xero_payment(a, payment, self.rules) for a in allocations]
        key = idempotency_key(payment.slug, *(f"{a.invoice_slug}={a.amount}" for a in allocations))
        results = self.xero.create_payments(bodies, idempotency_key=key)
        if believed_due and any(r.ValidationErrors for r in results):
            # Refused on what we believed was due: read Xero (the mappings say unknown now).
            if any(not r.ValidationErrors for r in results):
                taken = {
                    a.invoice_slug: r
                    for a, r in zip(allocations, results, strict=True)
                    if not r.ValidationErrors
                }
                self._map_allocations(event, payment, taken, set())
            return None
        created: dict[str, Payment] = {}
        for allocation, body, result in zip(allocations, bodies, results, strict=True):
            try:
                raise_for_element(result.ValidationErrors, "/Payments")
            except XeroPeriodLocked as refused:
                raise period_locked_error(
                    f"payment {payment.slug} (on invoice {allocation.invoice_slug})",
                    body.Date,
                    refused,
                    self.xero,
                ) from None
            except XeroValidationError as refused:
                raise PermanentSyncError(
                    f"Xero refused payment {payment.slug} on {allocation.invoice_slug}: "
                    f"{'; '.join(refused.messages)}",
                    category="xero_validation",
                ) from None
            created[allocation.invoice_slug] = result
        return created

    def _note_history(
        self, payment: IgnitionPayment, created: dict[str, Payment], adopted: set[str], decisions: list[str]
    ) -> None:
        """A history note on each Xero payment this run wrote (not on one found already there)."""
        for slug, result in created.items():
            note = self._history_note(
                f"Applied from Ignition payment {payment.slug} (invoice {slug}) by the Ignition-Xero sync",
                decisions,
            )
            if note is not None and slug not in adopted and result.PaymentID:
                write_history(self.xero, "Payments", result.PaymentID, note)

    def _map_allocations(
        self, event: SyncEvent, payment: IgnitionPayment, created: dict[str, Payment], adopted: set[str]
    ) -> None:
        for slug, result in created.items():
            assert result.PaymentID is not None
            self._map(
                event,
                ignition_id=allocation_id(payment.slug, slug),
                xero_id=result.PaymentID,
                created_at=payment.created_at,
                updated_at=payment.version_at,
                match_method="reference" if slug in adopted else "created",
                previous=None,
            )

    def _known_invoices(
        self, payment: IgnitionPayment, pending: list[IgnitionPaymentAllocation], xero_ids: dict[str, str]
    ) -> dict[str, RecordMapping] | None:
        """The invoices' mappings when each holds what our own last write left in Xero (amount
        due, status, currency); None when any is unknown (then Xero is read)."""
        known: dict[str, RecordMapping] = {}
        for target in pending:
            mapping = self.store.get(RecordType.INVOICE, target.slug)
            if (
                mapping is None
                or mapping.xero_id != xero_ids[target.slug]
                or mapping.xero_amount_due is None
                or mapping.xero_status is None
            ):
                return None
            known[target.slug] = mapping
        return known

    def _unknown_while_writing(self, known: dict[str, RecordMapping]) -> dict[str, Invoice]:
        """The invoices as their mappings know them; each mapping then says unknown until
        :meth:`_remember_due` (a conditional write: a concurrent change makes this event retry)."""
        invoices: dict[str, Invoice] = {}
        for slug, mapping in known.items():
            invoices[mapping.xero_id] = Invoice(
                InvoiceID=mapping.xero_id,
                Status=mapping.xero_status,
                CurrencyCode=mapping.xero_currency,
                AmountDue=mapping.xero_amount_due,
            )
            # The version counts Ignition's changes written; the amount due is only our cache of Xero.
            unknown = mapping.model_copy(update={"xero_amount_due": None})
            self.store.save(unknown, previous=mapping)
            known[slug] = unknown
        return invoices

    def _remember_due(
        self, known: dict[str, RecordMapping], allocations: list[Allocation], invoices: dict[str, Invoice]
    ) -> None:
        """What is due after our payment, for the next payment (the mappings marked unknown before)."""
        applied = {a.invoice_slug: a.amount for a in allocations}
        for slug, mapping in known.items():
            before = invoices[mapping.xero_id].AmountDue
            if before is None:
                continue
            due = before - applied.get(slug, Decimal(0))
            status = "PAID" if due == 0 else mapping.xero_status
            updated = mapping.model_copy(update={"xero_amount_due": due, "xero_status": status})
            self.store.save(updated, previous=mapping)

    def _already_in_xero(
        self, payment: IgnitionPayment, xero_ids: dict[str, str], decisions: list[str]
    ) -> dict[str, Payment]:
        """Payments with our Reference that exist in Xero but not in the mapping (a crash between the
        write and the mapping): adopted, not applied again."""
        reference = payment_reference(payment, self.rules)
        # A configured prefix can hold any text: the slug ending is what identifies it.
        found = self.xero.find_payments_by_reference(reference, ending=payment.slug)
        by_invoice = {p.Invoice.InvoiceID: p for p in found if p.Invoice and p.Status != "DELETED"}
        adopted = {slug: by_invoice[xero_id] for slug, xero_id in xero_ids.items() if xero_id in by_invoice}
        if adopted:
            decisions.append(
                f"found {len(adopted)} Xero payment(s) written earlier for {payment.slug}; not re-applied"
            )
        return adopted

    def _check_payable(self, payment: IgnitionPayment, slug: str, invoice: Invoice) -> None:
        if invoice.Status not in ("AUTHORISED", "PAID"):
            raise PermanentSyncError(
                f"Xero invoice {invoice.InvoiceID} ({slug}) is {invoice.Status}: Xero takes payments only on "
                "approved invoices; approve it (or set invoices.status to AUTHORISED), then replay",
                category="invoice_not_approved",
            )
        currency = payment.amount.currency.upper()
        if invoice.CurrencyCode and invoice.CurrencyCode.upper() != currency:
            raise PermanentSyncError(
                f"payment {payment.slug} is in {currency}, "
                f"Xero invoice {invoice.InvoiceID} in {invoice.CurrencyCode}",
                category="invalid_amount",
            )
