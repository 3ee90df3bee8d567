"""Money: ``Decimal`` with its currency, and Xero's rounding rules, in one place.

Xero (developer.xero.com "Rounding in Xero"): tax is calculated per line and rounded to 2 dp, then
summed; ``UnitAmount`` has 2 dp unless the request opts into ``unitdp=4``; ``LineAmount`` and all
totals have 2 dp. Which way a midpoint goes is not stated by Xero; third-party write-ups disagree
(half-up vs half-even). ``XERO_ROUNDING`` is that one assumption, used by the sync's prediction and
by the emulator alike, and the sync compares Xero's own returned totals, so a wrong guess shows up
as a reported difference, never as a silent one.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

XERO_ROUNDING = ROUND_HALF_UP
CENT = Decimal("0.01")
UNIT_4DP = Decimal("0.0001")

AmountUnit = Literal["major", "cents"]


class MoneyError(ValueError):
    """An amount that cannot be read as money."""


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def _finite_decimal(value: object) -> Decimal:
    """``value``'s text as a finite Decimal, or a MoneyError naming it."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"amount {value!r} is not a number") from exc
    if not amount.is_finite():
        raise MoneyError(f"amount {value!r} is not a finite number")
    return amount


def format_money(amount: Decimal | int | str, currency: str) -> str:
    """An amount as every person-facing output shows it (the sandbox's story, the CLI, reports):
    two decimals rounded as Xero rounds, thousands separated, and the currency: ``1,234.50 AUD``."""
    return f"{round_money(_finite_decimal(amount)):,.2f} {currency.upper()}"


def parse_amount(value: object, unit: AmountUnit) -> Decimal:
    """Ignition's amount in the configured unit -> a Decimal in major units. Floats are refused:
    an amount that already went through binary floating point may be off by a fraction of a cent."""
    if isinstance(value, bool | float):
        raise MoneyError(f"amount {value!r} must be a decimal string or an integer, not a float")
    if not isinstance(value, str | int | Decimal):
        raise MoneyError(f"amount {value!r} is not a number")
    amount = _finite_decimal(value)
    if unit == "cents":
        if amount != amount.to_integral_value():
            raise MoneyError(f"amount {value!r} is configured as cents but has a fraction")
        return amount / 100
    return amount


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=XERO_ROUNDING)


def line_amount(quantity: Decimal, unit_amount: Decimal, discount_rate: Decimal | None = None) -> Decimal:
    gross = quantity * unit_amount
    if discount_rate:
        gross = gross * (Decimal(100) - discount_rate) / Decimal(100)
    return round_money(gross)


def line_tax(amount: Decimal, rate_percent: Decimal, *, inclusive: bool) -> Decimal:
    """Tax on one line, rounded per line as Xero does."""
    if inclusive:
        return round_money(amount - amount * Decimal(100) / (Decimal(100) + rate_percent))
    return round_money(amount * rate_percent / Decimal(100))


def rate_key(rate: Decimal | str) -> str:
    """A tax-rate percentage as a lookup key: "10", "10.0" and "10.00" are all "10"."""
    try:
        value = Decimal(str(rate).strip()).normalize()
    except InvalidOperation as exc:
        raise MoneyError(f"tax rate {rate!r} is not a percentage") from exc
    return format(value, "f")
