"""Xero's refusals become typed errors in one place, and tax types come from the organisation's own
rates: an NZ or UK organisation needs no tax configuration."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.models.xero import TaxRate
from shared.xero import rules


def _rates(*rows: tuple[str, str, bool]) -> list[TaxRate]:
    return [
        TaxRate(TaxType=t, EffectiveRate=Decimal(r), CanApplyToRevenue=revenue, Status="ACTIVE")
        for t, r, revenue in rows
    ]


NZ = _rates(("OUTPUT2", "15", True), ("ZERORATED", "0", True), ("INPUT2", "15", False), ("NONE", "0", True))
UK = _rates(
    ("OUTPUT2", "20", True),
    ("RROUTPUT", "5", True),
    ("EXEMPTOUTPUT", "0", True),
    ("ZERORATEDOUTPUT", "0", True),
    ("INPUT2", "20", False),
    ("NONE", "0", True),
)


def test_given_an_nz_organisation_when_rates_resolved_then_its_own_gst_types_without_configuration() -> None:
    taxes = rules.OrganisationTaxTypes(lambda: NZ)
    assert (taxes.for_rate("15"), taxes.for_rate("0"), taxes.untaxed()) == ("OUTPUT2", "ZERORATED", "NONE")


def test_given_a_uk_organisation_when_rates_resolved_then_standard_reduced_and_zero_rated_vat() -> None:
    taxes = rules.OrganisationTaxTypes(lambda: UK)
    assert [taxes.for_rate(r) for r in ("20", "5", "0")] == ["OUTPUT2", "RROUTPUT", "ZERORATEDOUTPUT"]


def test_given_a_rate_the_organisation_lacks_when_resolved_then_the_message_names_the_available_rates() -> (
    None
):
    with pytest.raises(rules.UnknownTaxRate) as raised:
        rules.OrganisationTaxTypes(lambda: NZ).for_rate("10")
    assert "no sales tax rate of 10% (its sales rates: 15% (OUTPUT2), 0% (ZERORATED))" in str(raised.value)


def test_given_an_override_and_an_archived_rate_when_resolved_then_override_wins_archived_ignored() -> None:
    rates = [
        *NZ,
        TaxRate(TaxType="TAX001", EffectiveRate=Decimal("9"), CanApplyToRevenue=True, Status="DELETED"),
    ]
    loads: list[int] = []

    def load() -> list[TaxRate]:
        loads.append(1)
        return rates

    taxes = rules.OrganisationTaxTypes(load, {"15": "TAX002"})
    assert taxes.for_rate("15") == "TAX002" and loads == []  # an override needs no read
    with pytest.raises(rules.UnknownTaxRate):
        taxes.for_rate("9")
    taxes.for_rate("0")
    assert loads == [1]  # read once per resolver


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("The document date cannot be before the end of year lock date", rules.XeroPeriodLocked),
        ("The document date cannot be before the period lock date", rules.XeroPeriodLocked),
        ("The currency EUR is not enabled for this organisation.", rules.XeroCurrencyNotEnabled),
        (
            "The TaxType code OUTPUT does not exist or cannot be used for this type of transaction.",
            rules.XeroTaxTypeRefused,
        ),
        ("Invoice not of valid status for modification", rules.XeroDocumentLocked),
        ("Invoice # must be unique.", rules.XeroDuplicateNumber),
    ],
)
def test_given_xeros_message_when_classified_then_the_typed_refusal(message: str, kind: type) -> None:
    assert type(rules.refusal([message])) is kind


def test_given_lock_and_currency_refusals_when_classified_then_which_lock_and_which_currency_are_kept() -> (
    None
):
    year_end = rules.refusal(["The document date cannot be before the end of year lock date"])
    assert isinstance(year_end, rules.XeroPeriodLocked) and year_end.lock == "end_of_year"
    period = rules.refusal(["The document date cannot be before the period lock date"])
    assert isinstance(period, rules.XeroPeriodLocked) and period.lock == "period"
    currency = rules.refusal(["The currency EUR is not enabled for this organisation."])
    assert isinstance(currency, rules.XeroCurrencyNotEnabled) and currency.currency == "EUR"
    tax = rules.refusal(["The TaxType code 'INPUT' cannot be used with account code '200'."])
    assert isinstance(tax, rules.XeroTaxTypeRefused) and tax.tax_type == "INPUT"


def test_given_an_element_without_errors_when_checked_then_nothing_is_raised() -> None:
    rules.raise_for_element(None)
    rules.raise_for_element([])
    with pytest.raises(rules.XeroPeriodLocked):
        rules.raise_for_element([{"Message": "The document date cannot be before the period lock date"}])


def test_given_cached_rates_without_the_rate_when_resolved_then_reread_once_and_found() -> None:
    # The firm added a 9% rate in Xero after the rates were cached.
    fresh = [
        *NZ,
        TaxRate(TaxType="TAX001", EffectiveRate=Decimal("9"), CanApplyToRevenue=True, Status="ACTIVE"),
    ]
    reads = [NZ, fresh]
    refreshed: list[int] = []
    taxes = rules.OrganisationTaxTypes(lambda: reads[len(refreshed)], refresh=lambda: refreshed.append(1))
    assert taxes.for_rate("9") == "TAX001" and refreshed == [1]
    with pytest.raises(rules.UnknownTaxRate):
        taxes.for_rate("7")  # re-read once only
    assert refreshed == [1]
