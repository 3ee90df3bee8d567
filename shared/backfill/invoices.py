"""Backfill, second phase: every Ignition invoice linked to the Xero invoice already holding its
number (or Reference), or created with the live sync's ``plan_invoice``; one Xero would refuse for a
lock date or a currency is reported with the reason, without a write."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from shared.backfill import batch
from shared.backfill.results import Failure
from shared.billing import InvoicePlan, plan_invoice
from shared.config import RecordType
from shared.errors import PermanentSyncError
from shared.invoices import InvoiceSync
from shared.models.ignition import IgnitionClient, IgnitionInvoice
from shared.models.xero import Currency, Invoice, Organisation
from shared.refusals import currency_reason, locked_lock_kind, period_locked_reason
from shared.store.checkpoints import PhaseCounts
from shared.store.mappings import RecordMapping
from shared.xero.rules import OrganisationTaxTypes


@dataclass
class _Known:
    """What the phase reads once before deciding: the clients' Xero contacts, the invoices Xero
    holds, and the organisation's rules."""

    contact_ids: dict[str, str]
    clients: dict[str, IgnitionClient]
    by_number: dict[str, Invoice]
    by_reference: dict[str, Invoice]
    taxes: OrganisationTaxTypes
    organisation: Organisation
    enabled: list[Currency]

    def existing(self, invoice: Invoice) -> Invoice | None:
        if invoice.InvoiceNumber:
            return self.by_number.get(invoice.InvoiceNumber)
        return self.by_reference.get(invoice.Reference or "")


class InvoicesPhase(batch.BackfillPhase[IgnitionInvoice]):
    name = "invoices"

    def __init__(self, run: batch.BackfillRun) -> None:
        super().__init__(run)
        self._rules = run.config.invoices

    def _pending(self, counts: PhaseCounts) -> list[IgnitionInvoice]:
        skip = {*self._rules.skip_states, *self._rules.void_states}
        return self._run.unmapped(
            counts, RecordType.INVOICE, self._run.ignition.iter_invoices(), lambda i: i.state.lower() in skip
        )

    def _sync(self, pending: list[IgnitionInvoice], counts: PhaseCounts) -> None:
        known = self._known(pending)
        writes = [write for invoice in pending if (write := self._decide(invoice, known, counts)) is not None]

        self._run.planned["invoices"] = {"create": len(writes)}
        if self._run.dry_run:
            for write in writes:
                placeholder = f"{batch.PLANNED_ID_PREFIX}{write.ignition_id}"
                self._run.would_map[RecordType.INVOICE][write.ignition_id] = placeholder
                self._run.would_hold[placeholder] = write.body.model_copy(
                    update={"InvoiceID": placeholder, "AmountDue": write.extra["total"]}
                )
            counts.created += len(writes)
            return
        settle = functools.partial(self._settle, known)
        done = 0
        # Xero takes unit prices to four decimals only when the call asks for them.
        for dp4 in (False, True):
            group = [w for w in writes if w.extra["dp4"] is dp4]
            save = functools.partial(self._save, unitdp4=dp4)
            done = self._run.write_batches(group, save, settle, counts, done=done, total=len(writes))

    def _known(self, pending: list[IgnitionInvoice]) -> _Known:
        run, xero = self._run, self._run.xero
        contacts = run.mappings.mappings(RecordType.CLIENT, sorted({i.client.slug for i in pending}))
        contact_ids = {slug: m.xero_id for slug, m in contacts.items()}
        contact_ids.update(run.would_map[RecordType.CLIENT])
        clients: dict[str, IgnitionClient] = {}
        if self._rules.owner is not None:
            clients = {c.slug: c for c in run.ignition.iter_clients()}
        existing = [
            inv
            for inv in run.read(lambda: xero.iter_invoices(page_size=batch.XERO_PAGE_SIZE))
            if inv.Type == "ACCREC" and inv.Status not in ("DELETED", "VOIDED")
        ]
        # The organisation's rules, read once: an invoice Xero would refuse for a lock date or a
        # currency is reported with the reason and the backfill goes on, without a write.
        taxes = OrganisationTaxTypes(
            lambda: run.retrying("reading", xero.tax_rates),
            self._rules.tax_types_by_rate,
            self._rules.untaxed_tax_type,
        )
        return _Known(
            contact_ids=contact_ids,
            clients=clients,
            by_number={inv.InvoiceNumber: inv for inv in existing if inv.InvoiceNumber},
            by_reference={inv.Reference: inv for inv in existing if inv.Reference},
            taxes=taxes,
            organisation=run.retrying("reading", xero.organisation),
            enabled=run.retrying("reading", xero.currencies),
        )

    def _decide(self, invoice: IgnitionInvoice, known: _Known, counts: PhaseCounts) -> batch.Write | None:
        """The write for one invoice; None when it is linked without one, or failed."""
        contact_id = known.contact_ids.get(invoice.client.slug)
        if contact_id is None:
            reason = f"client {invoice.client.slug} is not in Xero yet (not synced or failed above)"
            self._run.fail(Failure(RecordType.INVOICE, invoice.slug, "missing_client", reason), counts)
            return None
        try:
            plan = plan_invoice(
                invoice,
                contact_id=contact_id,
                client=known.clients.get(invoice.client.slug),
                rules=self._rules,
                unit=self._run.config.ignition.amount_unit,
                taxes=known.taxes,
            )
            found = known.existing(plan.invoice)
            if found is not None and plan.invoice.InvoiceNumber and found.Reference != invoice.slug:
                raise PermanentSyncError(
                    f"Xero invoice number {plan.invoice.InvoiceNumber} already belongs to another "
                    f"invoice ({found.InvoiceID}): set invoices.number_field to 'Reference' or renumber",
                    category="duplicate_number",
                )
            if found is None:
                self._check_writable(invoice, plan, known)
        except PermanentSyncError as exc:
            self._run.fail(Failure(RecordType.INVOICE, invoice.slug, exc.category, str(exc)), counts)
            return None
        if found is not None:
            assert found.InvoiceID is not None
            self._run.link(self._mapping(invoice, found.InvoiceID, "invoice_number"), counts)
            return None
        return batch.Write(
            invoice.slug,
            plan.invoice,
            "created",
            extra={"invoice": invoice, "dp4": plan.unitdp4, "total": plan.predicted_total.amount},
        )

    @staticmethod
    def _check_writable(invoice: IgnitionInvoice, plan: InvoicePlan, known: _Known) -> None:
        """Raise the reason Xero would refuse a new invoice for (a lock date, a currency)."""
        what = InvoiceSync.describe(invoice)
        lock = locked_lock_kind(known.organisation, invoice.date)
        if lock is not None:
            raise period_locked_reason(what, invoice.date.isoformat(), lock, known.organisation)
        currency = (plan.invoice.CurrencyCode or "").upper()
        enabled_codes = {c.Code.upper() for c in known.enabled}
        if enabled_codes and currency not in enabled_codes:
            raise currency_reason(what, currency, known.enabled)

    def _save(self, bodies: list[Invoice], key: str, *, unitdp4: bool) -> list[Invoice]:
        return self._run.xero.save_invoices(bodies, idempotency_key=key, unitdp4=unitdp4)

    def _settle(self, known: _Known, write: batch.Write, saved: Invoice) -> batch.Settled:
        invoice: IgnitionInvoice = write.extra["invoice"]
        errors = [e.Message for e in saved.ValidationErrors or []]
        if errors:
            what = InvoiceSync.describe(invoice)
            return batch.refusal_failure(
                RecordType.INVOICE,
                write.ignition_id,
                what,
                write.body,
                errors,
                known.organisation,
                known.enabled,
            )
        assert saved.InvoiceID is not None
        return self._mapping(invoice, saved.InvoiceID, "created")

    def _mapping(self, invoice: IgnitionInvoice, xero_id: str, method: str) -> RecordMapping:
        return self._run.mapping(
            RecordType.INVOICE, invoice.slug, xero_id, method, invoice.created_at, invoice.updated_at
        )
