"""Ignition invoices and payments -> Xero payloads. Pure functions: no I/O.

The money rule: for every invoice, Xero's total must equal Ignition's to the cent, or the
difference must be reported. Xero rounds tax per line, so a total computed another way (Ignition
may round once on the sum) can differ by a cent or two. ``plan_invoice`` predicts Xero's total
with Xero's rules and, when it differs by no more than rounding can explain, adds a rounding line
(Xero's own advice); a larger difference is a data problem and stops for a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from shared.config import InvoiceRules, PaymentRules
from shared.errors import PermanentSyncError
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import (
    AccountRef,
    AmountTypes,
    ContactRef,
    Invoice,
    InvoiceRef,
    LineItem,
    LineItemTracking,
    Payment,
)
from shared.money import (
    CENT,
    UNIT_4DP,
    AmountUnit,
    Money,
    MoneyError,
    format_money,
    line_amount,
    line_tax,
    parse_amount,
    rate_key,
    round_money,
)

ROUNDING_DESCRIPTION = "Rounding (Xero rounds tax per line)"


class TaxTypes(Protocol):
    """The organisation's Xero tax types (``shared.xero.rules.OrganisationTaxTypes``)."""

    def for_rate(self, rate: str) -> str:
        """The TaxType for an Ignition rate key ("10", "15"); LookupError naming what exists."""
        ...

    def untaxed(self) -> str:
        """The no-tax TaxType, for lines without a rate and the rounding line (it then moves the
        total by exactly its amount)."""
        ...


class TotalsOnlyTaxTypes:
    """For predicting Xero's totals without the organisation (the reconciliation): the rate alone
    decides the tax amount, so any rate is accepted and the names are placeholders."""

    def for_rate(self, rate: str) -> str:
        return f"RATE{rate}"

    def untaxed(self) -> str:
        return "NONE"


@dataclass(frozen=True)
class InvoicePlan:
    invoice: Invoice
    ignition_total: Money
    predicted_total: Money
    rounding_adjustment: Decimal
    unitdp4: bool
    notes: list[str] = field(default_factory=list)


def _amount(raw: object, unit: AmountUnit, what: str) -> Decimal:
    try:
        return parse_amount(raw, unit)
    except MoneyError as exc:
        raise PermanentSyncError(f"{what}: {exc}", category="invalid_amount") from exc


def owner_option(client: IgnitionClient | None, rules: InvoiceRules) -> str | None:
    """The Xero option/group name for the client's owner (manager or partner), matched by e-mail."""
    if client is None or rules.owner is None:
        return None
    person = client.manager if rules.owner.source == "manager" else client.partner
    if person is None or not person.email:
        return None
    return rules.owner.by_email.get(person.email.strip().lower())


def plan_invoice(
    invoice: IgnitionInvoice,
    *,
    contact_id: str,
    client: IgnitionClient | None,
    rules: InvoiceRules,
    unit: AmountUnit,
    taxes: TaxTypes,
) -> InvoicePlan:
    currency = invoice.amount.currency.upper()
    notes: list[str] = []
    taxed = [item for item in invoice.items if item.tax_rate is not None]
    amount_types: AmountTypes = (
        "NoTax" if not taxed else ("Inclusive" if invoice.tax_inclusive else "Exclusive")
    )

    tracking = [LineItemTracking(Name=t.category, Option=t.option) for t in rules.tracking]
    owner = owner_option(client, rules)
    if owner and rules.owner and rules.owner.tracking_category:
        tracking.append(LineItemTracking(Name=rules.owner.tracking_category, Option=owner))
    if len(tracking) > 2:
        raise PermanentSyncError(
            "Xero allows 2 tracking categories per line; invoices.tracking and invoices.owner name "
            f"{len(tracking)}: remove one in the client configuration, then replay",
            category="mapping_rule",
        )

    lines: list[LineItem] = []
    predicted_subtotal = predicted_tax = Decimal(0)
    unitdp4 = False
    for index, item in enumerate(invoice.items, start=1):
        if item.unit_price.currency.upper() != currency:
            raise PermanentSyncError(
                f"line {index} is in {item.unit_price.currency}, the invoice in {currency}: Xero invoices "
                "have one currency",
                category="invalid_amount",
            )
        quantity = item.quantity
        unit_amount = _amount(item.unit_price.raw, unit, f"line {index} unit price")
        description = item.description or (
            item.service.name if item.service and item.service.name else "Services"
        )
        if unit_amount != unit_amount.quantize(UNIT_4DP) or quantity != quantity.quantize(UNIT_4DP):
            # Beyond Xero's 4 dp: one unit of the line total, the detail kept in the text (Xero's advice).
            description = f"{description} ({quantity} x {unit_amount})"
            unit_amount, quantity = round_money(quantity * unit_amount), Decimal(1)
            notes.append(f"line {index}: more than 4 decimal places, sent as 1 x the line total")
        if unit_amount != unit_amount.quantize(CENT):
            unitdp4 = True

        try:
            if item.tax_rate is None:
                tax_type, rate = taxes.untaxed(), Decimal(0)
            else:
                key = rate_key(item.tax_rate)
                tax_type, rate = taxes.for_rate(key), Decimal(key)
        except LookupError as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise PermanentSyncError(
                f"invoice {invoice.slug} line {index}: {message}", category="mapping_rule"
            ) from exc

        service = item.service
        account = rules.default_account_code
        if service is not None:
            account = (
                rules.account_codes_by_service.get(service.slug or "")
                or rules.account_codes_by_service.get(service.name or "")
                or account
            )

        amount = line_amount(quantity, unit_amount)
        tax = (
            Decimal(0)
            if amount_types == "NoTax"
            else line_tax(amount, rate, inclusive=amount_types == "Inclusive")
        )
        predicted_subtotal += amount
        predicted_tax += tax
        lines.append(
            LineItem(
                Description=description[:4000],
                Quantity=quantity,
                UnitAmount=unit_amount,
                AccountCode=account,
                TaxType=tax_type,
                Tracking=tracking or None,
            )
        )

    predicted = predicted_subtotal if amount_types == "Inclusive" else predicted_subtotal + predicted_tax
    ignition_total = _amount(invoice.amount.raw, unit, "invoice total")
    difference = ignition_total - predicted
    adjustment = Decimal(0)
    if difference:
        # Rounding the amount and the tax of each line moves a total by just over a cent per line
        # at worst, and rounding Ignition's total once by half a cent more.
        tolerance = CENT * (len(invoice.items) + 1)
        if abs(difference) > tolerance:
            raise PermanentSyncError(
                f"Ignition's total {format_money(ignition_total, currency)} differs from the lines' total "
                f"{format_money(predicted, currency)} by {format_money(difference, currency)}: more than "
                "rounding explains; check the invoice in Ignition "
                "(discounts, tax rates) and the tax mapping, then replay",
                category="total_mismatch",
            )
        if rules.rounding_account_code:
            adjustment = difference
            lines.append(
                LineItem(
                    Description=ROUNDING_DESCRIPTION,
                    Quantity=Decimal(1),
                    UnitAmount=difference,
                    AccountCode=rules.rounding_account_code,
                    TaxType=taxes.untaxed(),
                )
            )
            notes.append(
                f"added a rounding line of {format_money(difference, currency)} so Xero's total matches "
                "Ignition's"
            )
        else:
            notes.append(
                f"Xero's total will differ from Ignition's by {format_money(difference, currency)} "
                "(no rounding account)"
            )

    number = invoice.reference_number or invoice.slug
    if rules.number_field == "InvoiceNumber":
        invoice_number, reference = number, invoice.slug
    else:
        invoice_number, reference = None, f"{number} [{invoice.slug}]"
    due = invoice.due_date or (invoice.date + timedelta(days=rules.payment_terms_days))
    if invoice.due_date is None:
        notes.append(f"no due date in Ignition: {rules.payment_terms_days} days' terms applied")
    xero_invoice = Invoice(
        Type="ACCREC",
        Contact=ContactRef(ContactID=contact_id),
        Date=invoice.date,
        DueDate=max(due, invoice.date),
        LineAmountTypes=amount_types,
        LineItems=lines,
        InvoiceNumber=invoice_number,
        Reference=reference,
        CurrencyCode=currency,
        BrandingThemeID=rules.branding_theme_id,
        Status=rules.status,
    )
    return InvoicePlan(
        invoice=xero_invoice,
        ignition_total=Money(amount=ignition_total, currency=currency),
        predicted_total=Money(amount=predicted + adjustment, currency=currency),
        rounding_adjustment=adjustment,
        unitdp4=unitdp4,
        notes=notes,
    )


def financial_signature(invoice: Invoice) -> tuple[object, ...]:
    """What Xero refuses to change once payments are allocated: lines, amounts, currency."""
    lines = tuple(
        (li.Description, li.Quantity, li.UnitAmount, li.AccountCode, li.TaxType)
        for li in invoice.LineItems or []
    )
    return (invoice.CurrencyCode, invoice.LineAmountTypes, lines)


@dataclass(frozen=True)
class Allocation:
    invoice_slug: str
    xero_invoice_id: str
    amount: Decimal


@dataclass(frozen=True)
class AllocationPlan:
    allocations: list[Allocation]
    unapplied: Decimal
    notes: list[str]


def allocate_payment(
    payment: IgnitionPayment,
    *,
    due_by_invoice: dict[str, tuple[str, Decimal]],
    unit: AmountUnit,
) -> AllocationPlan:
    """Split one Ignition payment over its invoices, never above any invoice's amount due.

    ``due_by_invoice``: Ignition invoice slug -> (Xero InvoiceID, Xero AmountDue). Amounts Ignition
    assigns per invoice are used as given (capped at the amount due); otherwise the payment fills
    the invoices in the order Ignition lists them.
    """
    total = _amount(payment.amount.raw, unit, "payment amount")
    if total <= 0:
        raise PermanentSyncError(
            f"payment {payment.slug} has amount {format_money(total, payment.amount.currency)}: "
            "nothing to apply",
            category="invalid_amount",
        )
    remaining = total
    currency = payment.amount.currency
    notes: list[str] = []
    allocations: list[Allocation] = []
    for target in payment.invoices:
        xero_id, due = due_by_invoice[target.slug]
        wanted = (
            _amount(target.amount.raw, unit, f"payment amount for {target.slug}")
            if target.amount
            else remaining
        )
        amount = min(wanted, due, remaining)
        if amount < wanted:
            notes.append(
                f"{target.slug}: {format_money(wanted, currency)} asked, {format_money(due, currency)} "
                f"due in Xero; applied {format_money(amount, currency)}"
            )
        if amount > 0:
            allocations.append(Allocation(target.slug, xero_id, round_money(amount)))
            remaining -= amount
    if remaining > 0:
        notes.append(
            f"{format_money(remaining, currency)} of {payment.slug} is more than is due; not applied"
        )
    return AllocationPlan(allocations=allocations, unapplied=remaining, notes=notes)


def payment_reference(payment: IgnitionPayment, rules: PaymentRules) -> str:
    """Carries the Ignition slug, so a payment written just before a crash is found again."""
    return f"{rules.reference_prefix}{payment.slug}"


def xero_payment(allocation: Allocation, payment: IgnitionPayment, rules: PaymentRules) -> Payment:
    paid_on: date = payment.paid_on or payment.created_at.date()
    return Payment(
        Invoice=InvoiceRef(InvoiceID=allocation.xero_invoice_id),
        Account=AccountRef(AccountID=rules.account_id)
        if rules.account_id
        else AccountRef(Code=rules.account_code),
        Date=paid_on,
        Amount=allocation.amount,
        Reference=payment_reference(payment, rules),
    )
