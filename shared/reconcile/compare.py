"""The reconciliation's rules, without I/O: compact rows of each side, and what counts as a
disagreement between an Ignition record and the Xero record joined to it.

Rows keep only what the comparison needs (a few short strings), so 100,000 of them stay small on
disk and nothing holds a whole side's records in memory. Money travels as ``Decimal`` text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.billing import TotalsOnlyTaxTypes, plan_invoice
from shared.config import ContactRules, InvoiceRules, PaymentRules, RecordType
from shared.errors import PermanentSyncError
from shared.matching import disambiguated_name
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Invoice, Payment
from shared.money import AmountUnit, MoneyError, parse_amount
from shared.reconcile.model import Discrepancy, FieldDifference
from shared.store.mappings import RecordMapping

# A ContactID no contact has: plan_invoice needs one, the comparison only wants the total.
_NO_CONTACT = "00000000-0000-0000-0000-000000000000"
_BRACKETED = re.compile(r"\[([^\[\]\s]+)\]\s*$")
GONE_INVOICE = ("VOIDED", "DELETED")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _key(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


# --- rows -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class MappingInfo:
    xero_id: str | None = None
    ignition_updated_at: str | None = None
    synced_at: str | None = None

    @classmethod
    def of(cls, mapping: RecordMapping | None) -> MappingInfo:
        if mapping is None:
            return cls()
        return cls(mapping.xero_id, iso(mapping.ignition_updated_at), iso(mapping.synced_at))


@dataclass(slots=True)
class ClientRow:
    slug: str
    name: str
    email: str | None
    state: str
    external_client_id: str | None
    xero_contact_id: str | None
    updated_at: str
    mapping: MappingInfo
    raw: str | None = None  # kept only when the record may be re-queued (unmapped or newer)

    @classmethod
    def of(cls, client: IgnitionClient, mapping: RecordMapping | None) -> ClientRow:
        return cls(
            client.slug,
            client.name,
            client.email,
            client.state,
            client.external_client_id,
            client.xero_contact_id,
            client.updated_at.isoformat(),
            MappingInfo.of(mapping),
        )


@dataclass(slots=True)
class ContactRow:
    contact_id: str
    number: str | None
    name: str | None
    email: str | None
    status: str
    updated: str | None

    @classmethod
    def of(cls, contact: Contact) -> ContactRow:
        return cls(
            str(contact.ContactID),
            contact.ContactNumber,
            contact.Name,
            contact.EmailAddress,
            contact.ContactStatus or "ACTIVE",
            iso(contact.UpdatedDateUTC),
        )

    def as_contact(self) -> Contact:
        return Contact(
            ContactID=self.contact_id,
            ContactNumber=self.number,
            Name=self.name,
            EmailAddress=self.email,
            ContactStatus=self.status,
        )


@dataclass(slots=True)
class InvoiceRow:
    slug: str
    client_slug: str
    number: str | None
    state: str
    payment_state: str | None
    currency: str
    total: str | None
    expected_total: str | None  # what Xero's total should be (Xero's rounding, rounding line)
    updated_at: str
    mapping: MappingInfo
    raw: str | None = None

    @classmethod
    def of(
        cls, invoice: IgnitionInvoice, mapping: RecordMapping | None, rules: InvoiceRules, unit: AmountUnit
    ) -> InvoiceRow:
        try:
            total: Decimal | None = parse_amount(invoice.amount.raw, unit)
        except (MoneyError, ValueError):
            total = None
        expected = total
        try:
            plan = plan_invoice(
                invoice,
                contact_id=_NO_CONTACT,
                client=None,
                rules=rules,
                unit=unit,
                taxes=TotalsOnlyTaxTypes(),
            )
            expected = plan.predicted_total.amount
        except PermanentSyncError:
            pass  # the sync cannot write it either; compare with Ignition's own total
        return cls(
            invoice.slug,
            invoice.client.slug,
            invoice.reference_number,
            invoice.state,
            invoice.payment_state,
            invoice.amount.currency.upper(),
            None if total is None else str(total),
            None if expected is None else str(expected),
            invoice.updated_at.isoformat(),
            MappingInfo.of(mapping),
        )


@dataclass(slots=True)
class XeroInvoiceRow:
    invoice_id: str
    key_slug: str | None
    number: str | None
    status: str | None
    currency: str | None
    total: str | None
    amount_paid: str | None
    updated: str | None

    @classmethod
    def of(cls, invoice: Invoice, slug_prefix: str) -> XeroInvoiceRow:
        return cls(
            str(invoice.InvoiceID),
            invoice_key(invoice.Reference, slug_prefix),
            invoice.InvoiceNumber,
            invoice.Status,
            (invoice.CurrencyCode or "").upper() or None,
            None if invoice.Total is None else str(invoice.Total),
            None if invoice.AmountPaid is None else str(invoice.AmountPaid),
            iso(invoice.UpdatedDateUTC),
        )


@dataclass(slots=True)
class AllocationRow:
    """One Ignition payment applied to one invoice: the unit the sync maps (``<payment>:<invoice>``)."""

    alloc_id: str
    payment_slug: str
    invoice_slug: str
    client_slug: str
    state: str
    amount: str | None  # None when Ignition does not say how much went to this invoice
    currency: str
    updated_at: str
    mapping: MappingInfo
    raw: str | None = None

    @classmethod
    def of_payment(
        cls, payment: IgnitionPayment, mappings: dict[str, RecordMapping], unit: AmountUnit
    ) -> list[AllocationRow]:
        rows = []
        single = len(payment.invoices) == 1
        for target in payment.invoices:
            raw_amount = target.amount.raw if target.amount else (payment.amount.raw if single else None)
            try:
                amount = None if raw_amount is None else str(parse_amount(raw_amount, unit))
            except (MoneyError, ValueError):
                amount = None
            alloc_id = f"{payment.slug}:{target.slug}"
            rows.append(
                cls(
                    alloc_id,
                    payment.slug,
                    target.slug,
                    payment.client.slug,
                    payment.state,
                    amount,
                    payment.amount.currency.upper(),
                    payment.version_at.isoformat(),
                    MappingInfo.of(mappings.get(alloc_id)),
                )
            )
        return rows


@dataclass(slots=True)
class XeroPaymentRow:
    payment_id: str
    key_slug: str | None
    invoice_id: str | None
    amount: str | None
    status: str | None
    updated: str | None

    @classmethod
    def of(cls, payment: Payment, rules: PaymentRules, slug_prefix: str) -> XeroPaymentRow:
        return cls(
            str(payment.PaymentID),
            payment_key(payment.Reference, rules, slug_prefix),
            payment.Invoice.InvoiceID if payment.Invoice else None,
            None if payment.Amount is None else str(payment.Amount),
            payment.Status,
            iso(payment.UpdatedDateUTC),
        )


# --- our keys on Xero records ----------------------------------------------------------------------


def invoice_key(reference: str | None, slug_prefix: str) -> str | None:
    """The Ignition slug the sync puts in an invoice's Reference: ``inv_1`` or ``"INV-7 [inv_1]"``."""
    text = (reference or "").strip()
    match = _BRACKETED.search(text)
    candidate = match.group(1) if match else text
    return candidate if candidate.startswith(slug_prefix) and " " not in candidate else None


def payment_key(reference: str | None, rules: PaymentRules, slug_prefix: str) -> str | None:
    """The Ignition payment slug in a payment's Reference (``"Ignition pypay_1"``)."""
    text = (reference or "").strip()
    if not text.startswith(rules.reference_prefix):
        return None
    candidate = text[len(rules.reference_prefix) :].strip()
    return candidate if candidate.startswith(slug_prefix) and " " not in candidate else None


# --- the rules ------------------------------------------------------------------------------------


def _newer(updated_at: str, mapping: MappingInfo) -> bool:
    return mapping.ignition_updated_at is not None and datetime.fromisoformat(
        updated_at
    ) > datetime.fromisoformat(mapping.ignition_updated_at)


def _unlinked(base: dict[str, Any], xero_id: str | None, *, missing: str, not_linked: str) -> Discrepancy:
    """An Ignition record the sync has not linked: missing in Xero, or there but not linked."""
    if xero_id is None:
        return Discrepancy(category="missing_in_xero", detail=missing, **base)
    return Discrepancy(category="not_mapped", xero_id=xero_id, detail=not_linked, **base)


def _linked(
    base: dict[str, Any], kind: str, updated_at: str | None, mapping: MappingInfo, *, found: bool
) -> Discrepancy | None:
    """A linked record the sync has not brought up to date (``updated_at``: Ignition's, when the
    record has one), or whose Xero record is gone."""
    if updated_at is not None and _newer(updated_at, mapping):
        detail = f"Ignition updated {updated_at}; the sync last wrote {mapping.ignition_updated_at}"
        return Discrepancy(category="not_applied", xero_id=mapping.xero_id, detail=detail, **base)
    if not found:
        detail = f"the linked Xero {kind} does not exist"
        return Discrepancy(category="mapped_missing_in_xero", xero_id=mapping.xero_id, detail=detail, **base)
    return None


def _drift(
    base: dict[str, Any], xero_id: str, differences: list[FieldDifference], detail: str
) -> Discrepancy | None:
    """Xero's record differs from Ignition's: sent again in full (``force``)."""
    if not differences:
        return None
    return Discrepancy(
        category="field_drift", xero_id=xero_id, differences=differences, detail=detail, force=True, **base
    )


def compare_client(client: ClientRow, contact: ContactRow | None, rules: ContactRules) -> Discrepancy | None:
    base = {"record_type": RecordType.CLIENT, "ignition_id": client.slug, "group_id": client.slug}
    mapping = client.mapping
    if mapping.xero_id is None:
        if client.state in rules.skip_client_states:
            return None
        return _unlinked(
            base,
            contact.contact_id if contact else None,
            missing="no Xero contact for this client",
            not_linked=f"Xero contact has ContactNumber {client.slug} but is not linked",
        )
    behind = _linked(base, "contact", client.updated_at, mapping, found=contact is not None)
    if behind is not None or contact is None:
        return behind
    if contact.status != "ACTIVE" and client.state != "archived":
        return Discrepancy(
            category="archived_in_xero",
            xero_id=contact.contact_id,
            differences=[FieldDifference(field="status", ignition=client.state, xero=contact.status)],
            detail=f"the Xero contact is {contact.status}",
            force=True,
            **base,
        )
    differences = contact_differences(client, contact)
    return _drift(base, contact.contact_id, differences, "Xero's contact differs from Ignition's client")


def contact_differences(client: ClientRow, contact: ContactRow) -> list[FieldDifference]:
    differences = []
    # The sync names a second client with the same name "<name> (<slug or external id>)".
    names = {client.name.strip(), disambiguated_name(client.name, client.slug).strip()}
    if client.external_client_id:
        names.add(disambiguated_name(client.name, client.external_client_id).strip())
    if (contact.name or "").strip() not in names:
        differences.append(FieldDifference(field="name", ignition=client.name, xero=contact.name))
    if client.email and _key(client.email) != _key(contact.email):
        differences.append(FieldDifference(field="email", ignition=client.email, xero=contact.email))
    return differences


def expected_statuses(invoice: InvoiceRow, rules: InvoiceRules) -> tuple[str, ...]:
    if invoice.state.lower() in rules.void_states:
        return GONE_INVOICE
    if rules.status == "DRAFT":  # the firm approves drafts in Xero: any later status is theirs
        return ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID")
    return ("AUTHORISED", "PAID")


def compare_invoice(
    invoice: InvoiceRow,
    xero: XeroInvoiceRow | None,
    rules: InvoiceRules,
    *,
    payments_in_question: bool,
) -> Discrepancy | None:
    """``payments_in_question``: a payment of this invoice is itself reported, which already
    explains a different amount paid."""
    base = {"record_type": RecordType.INVOICE, "ignition_id": invoice.slug, "group_id": invoice.client_slug}
    mapping = invoice.mapping
    state = invoice.state.lower()
    if mapping.xero_id is None:
        if state in rules.skip_states or state in rules.void_states:
            return None
        number = xero.number if xero else None
        return _unlinked(
            base,
            None if xero is None or xero.status in GONE_INVOICE else xero.invoice_id,
            missing="no Xero invoice for this invoice",
            not_linked=f"Xero invoice {number or ''} carries {invoice.slug} but is not linked",
        )
    behind = _linked(base, "invoice", invoice.updated_at, mapping, found=xero is not None)
    if behind is not None or xero is None:
        return behind
    expected = expected_statuses(invoice, rules)
    if xero.status in GONE_INVOICE and expected != GONE_INVOICE:
        return Discrepancy(
            category="archived_in_xero",
            xero_id=xero.invoice_id,
            differences=[FieldDifference(field="status", ignition=invoice.state, xero=xero.status)],
            detail=f"the Xero invoice is {xero.status}; Ignition's is {invoice.state}",
            **base,
        )
    differences = invoice_differences(invoice, xero, expected, payments_in_question=payments_in_question)
    return _drift(base, xero.invoice_id, differences, "Xero's invoice differs from Ignition's")


def invoice_differences(
    invoice: InvoiceRow, xero: XeroInvoiceRow, expected: tuple[str, ...], *, payments_in_question: bool
) -> list[FieldDifference]:
    differences = []
    if xero.status not in expected:
        differences.append(FieldDifference(field="status", ignition=invoice.state, xero=xero.status))
    if expected == GONE_INVOICE:
        return differences
    if xero.currency and xero.currency != invoice.currency:
        differences.append(FieldDifference(field="currency", ignition=invoice.currency, xero=xero.currency))
    wanted, total = _decimal(invoice.expected_total), _decimal(xero.total)
    if wanted is not None and total is not None and wanted != total:
        differences.append(
            FieldDifference(
                field="total", ignition=f"{wanted} {invoice.currency}", xero=f"{total} {xero.currency}"
            )
        )
    paid = _decimal(xero.amount_paid) or Decimal(0)
    ignition_total = _decimal(invoice.total)
    if not payments_in_question and ignition_total is not None:
        should = {"paid": ignition_total, "unpaid": Decimal(0)}.get(invoice.payment_state or "")
        partial_wrong = invoice.payment_state == "partially_paid" and not Decimal(0) < paid < ignition_total
        if (should is not None and paid != should) or partial_wrong:
            differences.append(
                FieldDifference(
                    field="amount_paid",
                    ignition=f"{invoice.payment_state} ({should if should is not None else 'part'} "
                    f"{invoice.currency})",
                    xero=f"{paid} {xero.currency or invoice.currency}",
                )
            )
    return differences


def compare_allocation(
    allocation: AllocationRow, xero: XeroPaymentRow | None, rules: PaymentRules
) -> Discrepancy | None:
    base = {
        "record_type": RecordType.PAYMENT,
        "ignition_id": allocation.alloc_id,
        "group_id": allocation.client_slug,
    }
    mapping = allocation.mapping
    applied = allocation.state.lower() in rules.applied_states
    if not applied:
        if mapping.xero_id is not None and xero is not None and xero.status != "DELETED":
            return Discrepancy(
                category="field_drift",
                xero_id=xero.payment_id,
                differences=[FieldDifference(field="status", ignition=allocation.state, xero=xero.status)],
                detail="Ignition no longer counts this payment as received, Xero still has it",
                **base,
            )
        return None
    if mapping.xero_id is None:
        return _unlinked(
            base,
            xero.payment_id if xero else None,
            missing="payment not applied in Xero",
            not_linked="a Xero payment carries this Ignition payment but is not linked",
        )
    if xero is None:
        return _linked(base, "payment", None, mapping, found=False)
    if xero.status == "DELETED":
        return Discrepancy(
            category="archived_in_xero",
            xero_id=xero.payment_id,
            differences=[FieldDifference(field="status", ignition=allocation.state, xero="DELETED")],
            detail="the Xero payment was deleted",
            **base,
        )
    wanted, amount = _decimal(allocation.amount), _decimal(xero.amount)
    if wanted is not None and amount is not None and wanted != amount:
        return Discrepancy(
            category="field_drift",
            xero_id=xero.payment_id,
            differences=[
                FieldDifference(
                    field="amount",
                    ignition=f"{wanted} {allocation.currency}",
                    xero=f"{amount} {allocation.currency}",
                )
            ],
            detail="the Xero payment's amount differs",
            **base,
        )
    return None
