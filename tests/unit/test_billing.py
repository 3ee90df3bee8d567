from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing import allocate_payment
from shared.billing import plan_invoice as _plan_invoice
from shared.config import InvoiceRules, OwnerRule, TrackingRule
from shared.errors import PermanentSyncError
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import TaxRate
from shared.xero.rules import OrganisationTaxTypes

NOW = datetime(2026, 11, 1, tzinfo=UTC)
# An AU organisation's revenue rates, as its GET /TaxRates lists them.
AU_RATES = [
    TaxRate(TaxType=t, EffectiveRate=Decimal(r), CanApplyToRevenue=True, Status="ACTIVE")
    for t, r in (("OUTPUT", "10"), ("EXEMPTOUTPUT", "0"), ("EXEMPTEXPORT", "0"), ("BASEXCLUDED", "0"))
]


def plan_invoice(*args: Any, **kwargs: Any) -> Any:
    """Every plan here is for that AU organisation, with the rules' overrides."""
    rules = kwargs["rules"]
    taxes = OrganisationTaxTypes(lambda: AU_RATES, rules.tax_types_by_rate, rules.untaxed_tax_type)
    return _plan_invoice(*args, taxes=taxes, **kwargs)


def invoice(items: list[dict[str, Any]], total: str, **overrides: Any) -> IgnitionInvoice:
    data: dict[str, Any] = {
        "slug": "inv_1",
        "reference_number": "IGN-1001",
        "client": {"slug": "cli_1"},
        "amount": {"total": total, "currency": "AUD"},
        "date": "2026-11-01",
        "items": items,
        "created_at": NOW,
        "updated_at": NOW,
    }
    data.update(overrides)
    return IgnitionInvoice.model_validate(data)


def item(price: str, quantity: str = "1", tax_rate: str | None = "10", **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "description": "Bookkeeping",
        "quantity": quantity,
        "unit_price": {"amount": price, "currency": "AUD"},
    }
    if tax_rate is not None:
        line["tax_rate"] = tax_rate
    line.update(extra)
    return line


def test_given_gst_exclusive_lines_when_planned_then_xero_lines_carry_output_tax_and_totals_match() -> None:
    plan = plan_invoice(
        invoice([item("100.00"), item("50.00", tax_rate="0")], "160.00"),
        contact_id="c-1",
        client=None,
        rules=InvoiceRules(),
        unit="major",
    )

    lines = plan.invoice.LineItems or []
    assert plan.invoice.LineAmountTypes == "Exclusive"
    assert [(li.TaxType, li.AccountCode) for li in lines] == [("OUTPUT", "200"), ("EXEMPTOUTPUT", "200")]
    assert plan.predicted_total.amount == Decimal("160.00") and plan.rounding_adjustment == 0
    assert (plan.invoice.InvoiceNumber, plan.invoice.Reference) == ("IGN-1001", "inv_1")
    assert plan.invoice.DueDate == date(2026, 11, 15)  # 14 days' terms when Ignition has no due date


def test_given_three_times_33_335_when_planned_then_xero_rounding_is_predicted_and_4dp_requested() -> None:
    # Xero: line amount round(100.005) = 100.01, tax 10.00, total 110.01; Ignition rounds once: 110.01.
    plan = plan_invoice(
        invoice([item("33.335", quantity="3")], "110.01"),
        contact_id="c",
        client=None,
        rules=InvoiceRules(),
        unit="major",
    )
    assert plan.unitdp4 is True
    assert plan.predicted_total.amount == Decimal("110.01")
    assert plan.rounding_adjustment == 0


def test_given_ignition_rounds_on_the_sum_when_planned_then_a_rounding_line_makes_totals_equal() -> None:
    # Three lines of 0.05 + 10% GST: Xero taxes each line 0.01 (0.005 rounded up) = 0.03; Ignition 0.02.
    plan = plan_invoice(
        invoice([item("0.05")] * 3, "0.17"), contact_id="c", client=None, rules=InvoiceRules(), unit="major"
    )
    assert plan.rounding_adjustment == Decimal("-0.01")
    rounding = (plan.invoice.LineItems or [])[-1]
    assert (rounding.UnitAmount, rounding.AccountCode, rounding.TaxType) == (
        Decimal("-0.01"),
        "860",
        "BASEXCLUDED",
    )
    assert plan.predicted_total.amount == Decimal("0.17")


def test_given_no_rounding_account_when_totals_differ_by_rounding_then_the_gap_is_noted() -> None:
    plan = plan_invoice(
        invoice([item("0.05")] * 3, "0.17"),
        contact_id="c",
        client=None,
        rules=InvoiceRules(rounding_account_code=None),
        unit="major",
    )
    assert plan.predicted_total.amount == Decimal("0.18")
    assert any("differ from Ignition's by -0.01 AUD" in note for note in plan.notes)


def test_given_total_far_from_lines_when_planned_then_it_stops_for_a_person() -> None:
    with pytest.raises(PermanentSyncError, match="more than rounding explains") as raised:
        plan_invoice(
            invoice([item("100.00")], "99.00"),
            contact_id="c",
            client=None,
            rules=InvoiceRules(),
            unit="major",
        )
    assert raised.value.category == "total_mismatch"
    # Shown to a person (status, replay, the report): two decimals and the currency.
    assert "total 99.00 AUD differs from the lines' total 110.00 AUD by -11.00 AUD" in str(raised.value)


def test_given_inclusive_and_gst_free_invoices_when_planned_then_amount_types_follow_the_data() -> None:
    inclusive = plan_invoice(
        invoice([item("110.00")], "110.00", tax_inclusive=True),
        contact_id="c",
        client=None,
        rules=InvoiceRules(),
        unit="major",
    )
    untaxed = plan_invoice(
        invoice([item("99.00", tax_rate=None)], "99.00"),
        contact_id="c",
        client=None,
        rules=InvoiceRules(),
        unit="major",
    )
    assert inclusive.invoice.LineAmountTypes == "Inclusive" and inclusive.predicted_total.amount == Decimal(
        "110.00"
    )
    assert untaxed.invoice.LineAmountTypes == "NoTax"
    assert (untaxed.invoice.LineItems or [])[0].TaxType == "BASEXCLUDED"


def test_given_amounts_in_cents_when_planned_then_the_unit_is_applied_once() -> None:
    plan = plan_invoice(
        invoice([item("12345")], "13580"), contact_id="c", client=None, rules=InvoiceRules(), unit="cents"
    )
    assert (plan.invoice.LineItems or [])[0].UnitAmount == Decimal("123.45")
    assert plan.ignition_total.amount == Decimal("135.80")


def test_given_a_rate_the_organisation_lacks_when_planned_then_it_and_the_available_ones_are_named() -> None:
    with pytest.raises(PermanentSyncError, match="tax_types_by_rate") as raised:
        plan_invoice(
            invoice([item("100", tax_rate="12.5")], "112.50"),
            contact_id="c",
            client=None,
            rules=InvoiceRules(),
            unit="major",
        )
    assert raised.value.category == "mapping_rule"
    assert "no sales tax rate of 12.5%" in raised.value.reason
    assert "10% (OUTPUT), 0% (EXEMPTOUTPUT), 0% (EXEMPTEXPORT)" in raised.value.reason


def test_given_a_configured_override_when_planned_then_it_wins_over_the_organisations_rate() -> None:
    plan = plan_invoice(
        invoice([item("100", tax_rate="0")], "100.00"),
        contact_id="c",
        client=None,
        rules=InvoiceRules(tax_types_by_rate={"0": "EXEMPTEXPORT"}),
        unit="major",
    )
    assert [li.TaxType for li in plan.invoice.LineItems or []] == ["EXEMPTEXPORT"]


def test_given_service_account_rule_and_owner_when_planned_then_account_and_tracking_are_set() -> None:
    rules = InvoiceRules(
        account_codes_by_service={"svc_tax": "260"},
        tracking=[TrackingRule(category="Region", option="Sydney")],
        owner=OwnerRule(by_email={"pat@firm.test": "Pat"}, tracking_category="Owner"),
    )
    client = IgnitionClient.model_validate(
        {
            "slug": "cli_1",
            "name": "A",
            "manager": {"name": "Pat", "email": "PAT@firm.test"},
            "created_at": NOW,
            "updated_at": NOW,
        }
    )
    plan = plan_invoice(
        invoice([item("10.00", service={"slug": "svc_tax", "name": "Tax return"})], "11.00"),
        contact_id="c",
        client=client,
        rules=rules,
        unit="major",
    )
    line = (plan.invoice.LineItems or [])[0]
    assert line.AccountCode == "260"
    assert [(t.Name, t.Option) for t in line.Tracking or []] == [("Region", "Sydney"), ("Owner", "Pat")]


def test_given_multi_currency_invoice_when_planned_then_currency_travels_with_it() -> None:
    data = invoice(
        [
            {
                "description": "Advice",
                "quantity": "2",
                "unit_price": {"amount": "50.00", "currency": "NZD"},
                "tax_rate": "0",
            }
        ],
        "100.00",
        amount={"total": "100.00", "currency": "NZD"},
    )
    plan = plan_invoice(data, contact_id="c", client=None, rules=InvoiceRules(), unit="major")
    assert plan.invoice.CurrencyCode == "NZD" and plan.ignition_total.currency == "NZD"


def payment(amount: str, invoices: list[dict[str, Any]]) -> IgnitionPayment:
    return IgnitionPayment.model_validate(
        {
            "slug": "pypay_1",
            "client": {"slug": "cli_1"},
            "amount": {"amount": amount, "currency": "AUD"},
            "invoices": invoices,
            "created_at": NOW,
        }
    )


def test_given_payment_over_two_invoices_when_allocated_then_each_gets_at_most_its_due_in_order() -> None:
    plan = allocate_payment(
        payment("150.00", [{"slug": "inv_a"}, {"slug": "inv_b"}]),
        due_by_invoice={"inv_a": ("A", Decimal("100.00")), "inv_b": ("B", Decimal("80.00"))},
        unit="major",
    )
    assert [(a.xero_invoice_id, a.amount) for a in plan.allocations] == [
        ("A", Decimal("100.00")),
        ("B", Decimal("50.00")),
    ]
    assert plan.unapplied == 0


def test_given_overpayment_when_allocated_then_the_excess_is_reported_and_never_applied() -> None:
    plan = allocate_payment(
        payment("120.00", [{"slug": "inv_a"}]),
        due_by_invoice={"inv_a": ("A", Decimal("100.00"))},
        unit="major",
    )
    assert [a.amount for a in plan.allocations] == [Decimal("100.00")]
    assert plan.unapplied == Decimal("20.00") and "not applied" in plan.notes[-1]
    assert plan.notes[-1].startswith("20.00 AUD of ")


# -- property: whatever the lines, Xero's total (per-line rounding) equals Ignition's to the cent ----

RATES = st.sampled_from([None, "0", "10"])
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=3)
QUANTITIES = st.decimals(min_value=Decimal("0.25"), max_value=Decimal("40"), places=2)


def ignition_style_total(lines: list[tuple[Decimal, Decimal, str | None]], inclusive: bool) -> Decimal:
    """How a system that rounds once on the sum would total the invoice."""
    cent = Decimal("0.01")
    net = sum((q * p for q, p, _ in lines), Decimal(0))
    if inclusive or all(rate is None for _, _, rate in lines):
        return net.quantize(cent, rounding=ROUND_HALF_UP)
    tax = sum((q * p * Decimal(rate or 0) / 100 for q, p, rate in lines), Decimal(0))
    return (net + tax).quantize(cent, rounding=ROUND_HALF_UP)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(QUANTITIES, PRICES, RATES), min_size=1, max_size=8), inclusive=st.booleans())
def test_property_given_any_invoice_when_planned_then_predicted_xero_total_equals_ignition_total(
    lines: list[tuple[Decimal, Decimal, str | None]], inclusive: bool
) -> None:
    total = ignition_style_total(lines, inclusive)
    data = invoice(
        [item(str(p), quantity=str(q), tax_rate=r) for q, p, r in lines], str(total), tax_inclusive=inclusive
    )

    plan = plan_invoice(data, contact_id="c", client=None, rules=InvoiceRules(), unit="major")

    assert plan.predicted_total.amount == total
