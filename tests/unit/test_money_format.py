"""How amounts are shown to people: one helper, two decimals and the currency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import Money, MoneyError, format_money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (Decimal("550.0"), "AUD", "550.00 AUD"),
        ("550", "aud", "550.00 AUD"),
        (0, "NZD", "0.00 NZD"),
        (Decimal("1234.5"), "GBP", "1,234.50 GBP"),
        # Rounded as Xero rounds (half up), not as Python formats by default (half even).
        (Decimal("33.335"), "AUD", "33.34 AUD"),
        (Decimal("0.125"), "AUD", "0.13 AUD"),
        (Decimal("-12.5"), "AUD", "-12.50 AUD"),
    ],
)
def test_given_an_amount_when_formatted_then_two_decimals_and_its_currency(
    amount: Decimal | int | str, currency: str, shown: str
) -> None:
    assert format_money(amount, currency) == shown


def test_given_money_when_printed_then_it_reads_as_format_money_does() -> None:
    assert str(Money(amount=Decimal("360.1"), currency="aud")) == "360.10 AUD"


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity"])
def test_given_something_not_an_amount_when_formatted_then_money_error(amount: str) -> None:
    with pytest.raises(MoneyError):
        format_money(amount, "AUD")
