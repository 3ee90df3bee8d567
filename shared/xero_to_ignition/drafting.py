"""The Ignition draft a marked Xero invoice becomes, to the cent, or the reason it cannot be (pure).

One draft line per Xero line: description, quantity, unit price exclusive of tax, the Ignition tax
rate of the same percentage as the line's Xero tax rate (``GET /TaxRates``), and the Ignition
service matched by account code or name where configured. The total is computed from those lines
as Xero computes it (each line's amount and tax rounded to the cent) and must equal the Xero
invoice's ``Total`` exactly; otherwise no draft is made and the reason says by how much.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from shared.config import XeroToIgnitionRules
from shared.errors import PermanentSyncError
from shared.ignition.drafts import DraftLine, IgnitionService, IgnitionTaxRate, InvoiceDraftRequest
from shared.models.xero import Invoice, LineItem, TaxRate
from shared.money import format_money, line_amount, line_tax
from shared.xero_to_ignition.trigger import draft_reference

UNIT_4DP = Decimal("0.0001")


class DraftRefused(PermanentSyncError):
    """The Xero invoice cannot become an exact Ignition draft; ``reason`` tells the bookkeeper what
    to change in Xero (or in the configuration) before the next edit brings it back. One category,
    ``draft_refused``, for the report's wording; the reason says which rule refused it."""

    def __init__(self, reason: str, *, category: str = "draft_refused") -> None:
        super().__init__(reason, category=category)


@dataclass
class DraftPlan:
    request: InvoiceDraftRequest
    notes: list[str] = field(default_factory=list)


def _percent(rate: TaxRate) -> Decimal | None:
    value = rate.EffectiveRate if rate.EffectiveRate is not None else rate.DisplayTaxRate
    return None if value is None else Decimal(value)


class TaxMatch:
    """Xero tax type -> the Ignition tax rate of the same percentage."""

    def __init__(self, xero: Sequence[TaxRate], ignition: Sequence[IgnitionTaxRate]) -> None:
        self._xero = {rate.TaxType: rate for rate in xero}
        self._ignition = sorted(ignition, key=lambda r: (r.name.casefold(), r.id))

    def percent_of(self, tax_type: str | None, line: int) -> Decimal:
        rate = self._xero.get(tax_type or "")
        percent = _percent(rate) if rate is not None else None
        if percent is None:
            raise DraftRefused(
                f"line {line}: Xero tax type {tax_type!r} is not among the organisation's tax rates",
            )
        return percent

    def ignition_rate(self, tax_type: str | None, percent: Decimal, line: int) -> str | None:
        same = [r for r in self._ignition if r.rate == percent]
        if not same:
            if percent == 0:
                return None  # a 0% line without a 0% rate in Ignition is simply untaxed there
            offered = ", ".join(f"{r.name} {r.rate}%" for r in self._ignition) or "none"
            raise DraftRefused(
                f"line {line}: no Ignition tax rate of {percent}% for Xero's {tax_type} (Ignition has: "
                f"{offered}); add it in Ignition, then edit the Xero invoice again",
            )
        xero_name = (self._xero[tax_type or ""].Name or "").casefold()
        named = [r for r in same if r.name.casefold() == xero_name]
        return (named or same)[0].id


def _service(
    item: LineItem, services: Sequence[IgnitionService], rules: XeroToIgnitionRules, line: int
) -> str | None:
    wanted = rules.services_by_account_code.get(item.AccountCode or "")
    if wanted is not None:
        for service in services:
            if wanted in (service.id, service.code) or service.name.casefold() == wanted.casefold():
                return service.id
        raise DraftRefused(
            f"line {line}: services_by_account_code sends account {item.AccountCode} to Ignition service "
            f"{wanted!r}, which Ignition does not list: fix xero_to_ignition.services_by_account_code",
        )
    if rules.match_services_by_name and item.Description:
        text = item.Description.strip().casefold()
        for service in services:
            if service.name.strip().casefold() == text:
                return service.id
    return None


def build_draft(
    invoice: Invoice,
    *,
    client_slug: str,
    xero_tax_rates: Sequence[TaxRate],
    ignition_tax_rates: Sequence[IgnitionTaxRate],
    services: Sequence[IgnitionService],
    rules: XeroToIgnitionRules,
) -> DraftPlan:
    """The draft for ``invoice``, or ``DraftRefused`` saying why it would not be exact."""
    currency = (invoice.CurrencyCode or "").upper()
    if not currency or invoice.Date is None or invoice.Total is None:
        raise DraftRefused("the Xero invoice has no currency, date or total")
    amount_types = invoice.LineAmountTypes or "Exclusive"
    taxes = TaxMatch(xero_tax_rates, ignition_tax_rates)
    notes: list[str] = []
    lines: list[DraftLine] = []
    subtotal = tax_total = Decimal(0)
    for index, item in enumerate(invoice.LineItems or [], start=1):
        if item.Quantity is None and item.UnitAmount is None:
            notes.append(f"line {index}: text only, not an invoice line in Ignition")
            continue
        if item.DiscountRate:
            raise DraftRefused(
                f"line {index} has a {item.DiscountRate}% discount, which an Ignition draft line cannot "
                "carry: put the discounted price on the line in Xero",
            )
        quantity = Decimal(item.Quantity if item.Quantity is not None else 1)
        unit = Decimal(item.UnitAmount if item.UnitAmount is not None else 0)
        tax_rate_id: str | None = None
        percent = Decimal(0)
        if amount_types != "NoTax":
            percent = taxes.percent_of(item.TaxType, index)
            tax_rate_id = taxes.ignition_rate(item.TaxType, percent, index)
            if tax_rate_id is None:
                percent = Decimal(0)
        if amount_types == "Inclusive" and percent:
            # Ignition's draft prices exclude tax: 4 decimal places, as Xero keeps unit prices.
            unit = (unit * 100 / (100 + percent)).quantize(UNIT_4DP, rounding=ROUND_HALF_UP)
            notes.append(f"line {index}: tax-inclusive price {item.UnitAmount} sent as {unit} before tax")
        amount = line_amount(quantity, unit)
        subtotal += amount
        tax_total += line_tax(amount, percent, inclusive=False)
        lines.append(
            DraftLine(
                description=(item.Description or item.ItemCode or "Services").strip()[:4000],
                quantity=quantity,
                unit_price=unit,
                tax_rate_id=tax_rate_id,
                service_id=_service(item, services, rules, index),
            )
        )
    if not lines:
        raise DraftRefused("the Xero invoice has no lines with an amount")
    total = subtotal + tax_total
    if total != invoice.Total:
        raise DraftRefused(
            f"the draft's lines come to {format_money(total, currency)} but the Xero invoice's total is "
            f"{format_money(invoice.Total, currency)} (a difference of "
            f"{format_money(invoice.Total - total, currency)}): no draft was made; make the lines add up "
            "in Xero (tax-exclusive prices avoid rounding differences), then edit it again",
        )
    request = InvoiceDraftRequest(
        client_slug=client_slug,
        currency=currency,
        reference=draft_reference(invoice),
        issue_date=invoice.Date,
        due_date=invoice.DueDate,
        lines=lines,
        expected_total=total,
    )
    return DraftPlan(request=request, notes=notes)
