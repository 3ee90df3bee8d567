"""Backfill, third phase: every allocation of an Ignition payment to an invoice linked to the Xero
payment already holding its Reference on that invoice, or created with the live sync's
``allocate_payment``; an allocation to an invoice not in Xero, not approved, or in a locked period
is reported with the reason, without a write."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

from shared.backfill import batch
from shared.backfill.results import Failure
from shared.billing import allocate_payment, payment_reference, xero_payment
from shared.config import RecordType
from shared.errors import PermanentSyncError
from shared.models.ignition import IgnitionPayment
from shared.models.xero import Invoice, Organisation, Payment
from shared.payments import allocation_id
from shared.refusals import locked_lock_kind, period_locked_reason
from shared.store.checkpoints import PhaseCounts
from shared.store.mappings import RecordMapping


@dataclass
class _Known:
    """What the phase reads once before deciding: the invoices' Xero ids, the invoices and payments
    Xero holds, what is still due on each invoice (lowered as allocations are planned), and the
    organisation's lock dates."""

    invoice_ids: dict[str, str]  # Ignition invoice slug -> InvoiceID
    invoices: dict[str, Invoice]  # InvoiceID -> invoice
    existing: dict[tuple[str, str], Payment]  # (Reference, InvoiceID) -> payment
    due: dict[str, Decimal]  # InvoiceID -> amount due
    organisation: Organisation


class PaymentsPhase(batch.BackfillPhase[IgnitionPayment]):
    name = "payments"

    def _pending(self, counts: PhaseCounts) -> list[IgnitionPayment]:
        """The payments with allocations still to map, each narrowed to those allocations."""
        payments = list(self._run.ignition.iter_payments())
        allocation_ids = [allocation_id(p.slug, t.slug) for p in payments for t in p.invoices]
        mapped = self._run.mapped(counts, RecordType.PAYMENT, allocation_ids)
        pending: list[IgnitionPayment] = []
        for payment in payments:
            targets = [t for t in payment.invoices if allocation_id(payment.slug, t.slug) not in mapped]
            if not targets:
                continue
            if payment.state.lower() not in self._run.config.payments.applied_states:
                counts.skipped += len(targets)
                continue
            pending.append(payment.model_copy(update={"invoices": targets}))
        return pending

    def _sync(self, pending: list[IgnitionPayment], counts: PhaseCounts) -> None:
        known = self._known(pending)
        writes = [write for payment in pending for write in self._decide(payment, known, counts)]

        self._run.planned["payments"] = {"create": len(writes)}
        if self._run.dry_run:
            counts.created += len(writes)
            return
        settle = functools.partial(self._settle, known.organisation)
        self._run.write_batches(writes, self._save, settle, counts)

    def _known(self, pending: list[IgnitionPayment]) -> _Known:
        run, xero = self._run, self._run.xero
        slugs = sorted({t.slug for p in pending for t in p.invoices})
        invoice_ids = {
            slug: m.xero_id for slug, m in run.mappings.mappings(RecordType.INVOICE, slugs).items()
        }
        invoice_ids.update(run.would_map[RecordType.INVOICE])
        invoices = {
            inv.InvoiceID: inv
            for inv in run.read(lambda: xero.iter_invoices(page_size=batch.XERO_PAGE_SIZE))
            if inv.InvoiceID
        }
        invoices.update(run.would_hold)
        existing: dict[tuple[str, str], Payment] = {}
        for found in run.read(lambda: xero.iter_payments(page_size=batch.XERO_PAGE_SIZE)):
            if found.Status != "DELETED" and found.Reference and found.Invoice and found.Invoice.InvoiceID:
                existing[(found.Reference, found.Invoice.InvoiceID)] = found
        due = {xero_id: inv.AmountDue or Decimal(0) for xero_id, inv in invoices.items()}
        organisation = run.retrying("reading", xero.organisation)
        return _Known(invoice_ids, invoices, existing, due, organisation)

    def _decide(self, payment: IgnitionPayment, known: _Known, counts: PhaseCounts) -> list[batch.Write]:
        """The writes for one payment's allocations still to make (those found in Xero are linked)."""
        try:
            applicable = self._applicable(payment, known, counts)
            if not applicable:
                return []
            to_apply = payment.model_copy(
                update={"invoices": [t for t in payment.invoices if t.slug in applicable]}
            )
            plan = allocate_payment(
                to_apply, due_by_invoice=applicable, unit=self._run.config.ignition.amount_unit
            )
            paid_on = payment.paid_on or payment.created_at.date()
            lock = locked_lock_kind(known.organisation, paid_on)
            if lock is not None:
                raise period_locked_reason(
                    f"payment {payment.slug}", paid_on.isoformat(), lock, known.organisation
                )
        except PermanentSyncError as exc:
            self._run.fail(Failure(RecordType.PAYMENT, payment.slug, exc.category, str(exc)), counts)
            return []
        writes: list[batch.Write] = []
        for allocation in plan.allocations:
            xero_id = allocation.xero_invoice_id
            known.due[xero_id] = known.due.get(xero_id, Decimal(0)) - allocation.amount
            writes.append(
                batch.Write(
                    allocation_id(payment.slug, allocation.invoice_slug),
                    xero_payment(allocation, payment, self._run.config.payments),
                    "created",
                    extra={"payment": payment, "invoice_slug": allocation.invoice_slug},
                )
            )
        return writes

    def _applicable(
        self, payment: IgnitionPayment, known: _Known, counts: PhaseCounts
    ) -> dict[str, tuple[str, Decimal]]:
        """Invoice slug -> (InvoiceID, amount due) for the allocations to write; an allocation Xero
        already holds (same Reference on the same invoice) is linked instead."""
        reference = payment_reference(payment, self._run.config.payments)
        applicable: dict[str, tuple[str, Decimal]] = {}
        for target in payment.invoices:
            xero_id = known.invoice_ids.get(target.slug)
            if xero_id is None:
                raise PermanentSyncError(
                    f"invoice {target.slug} is not in Xero yet (not synced or failed above)",
                    category="missing_invoice",
                )
            adopted = known.existing.get((reference, xero_id))
            if adopted is not None and adopted.PaymentID:
                mapping = self._mapping(payment, target.slug, adopted.PaymentID, "reference")
                self._run.link(mapping, counts)
                continue
            current = known.invoices.get(xero_id)
            if current is None or current.Status not in ("AUTHORISED", "PAID"):
                raise PermanentSyncError(
                    f"Xero invoice {xero_id} ({target.slug}) is "
                    f"{current.Status if current else 'missing'}: Xero takes payments only on "
                    "approved invoices",
                    category="invoice_not_approved",
                )
            applicable[target.slug] = (xero_id, known.due.get(xero_id, Decimal(0)))
        return applicable

    def _save(self, bodies: list[Payment], key: str) -> list[Payment]:
        return self._run.xero.create_payments(bodies, idempotency_key=key)

    def _settle(self, organisation: Organisation, write: batch.Write, saved: Payment) -> batch.Settled:
        errors = [e.Message for e in saved.ValidationErrors or []]
        if errors:
            what = f"payment {write.ignition_id}"
            return batch.refusal_failure(
                RecordType.PAYMENT, write.ignition_id, what, write.body, errors, organisation, []
            )
        assert saved.PaymentID is not None
        return self._mapping(write.extra["payment"], write.extra["invoice_slug"], saved.PaymentID, "created")

    def _mapping(
        self, payment: IgnitionPayment, invoice_slug: str, xero_id: str, method: str
    ) -> RecordMapping:
        """The mapping of one allocation: a payment to one invoice is one Xero payment."""
        return self._run.mapping(
            RecordType.PAYMENT,
            allocation_id(payment.slug, invoice_slug),
            xero_id,
            method,
            payment.created_at,
            payment.version_at,
        )
