"""Xero's business-rule refusals as typed errors, and the organisation's own tax types by rate.

Writes go with ``summarizeErrors=false``, so a refused document comes back 200 with its
``ValidationErrors``. ``raise_for_element`` turns those messages into the error a use case can act
on; Xero's wording is read here and nowhere else (integration-facts.md, "Behaviour a first real
organisation shows"):

- lock dates: "The document date cannot be before the end of year lock date" (quoted in
  waynerobinson/xeroizer#92; the period lock's wording is not published, matched loosely);
- a currency the organisation has not enabled (wording not published: matched on "currency" and
  "not enabled"/"not valid"/"not set up");
- a TaxType that does not exist or does not fit ("The TaxType code X does not exist or cannot be
  used...", "The TaxType code 'X' cannot be used with account code 'Y'", XeroAPI/Xero-Java#336);
- a document that can no longer change (payments allocated, PAID, VOIDED);
- an invoice number already taken ("Invoice # must be unique.", XeroAPI/Xero-Net#236);
- a contact name another active contact holds ("The contact name X is already assigned to another
  contact. The contact name must be unique across all active contacts.").

``OrganisationTaxTypes`` picks, for an Ignition tax rate, the organisation's own revenue TaxType with
that EffectiveRate (``GET /TaxRates``): AU OUTPUT 10%, NZ OUTPUT2 15%, UK OUTPUT2 20% / RROUTPUT 5%,
with ``invoices.tax_types_by_rate`` as an override.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from shared.models.xero import TaxRate
from shared.money import MoneyError, rate_key
from shared.xero.errors import XeroValidationError

LockKind = Literal["period", "end_of_year"]
_TAX_TYPE = re.compile(r"TaxType code '?([A-Za-z0-9_]+)'?", re.IGNORECASE)
_CURRENCY = re.compile(r"\b([A-Z]{3})\b")
_LOCKED_DOCUMENT = (
    "not of valid status for modification",
    "cannot be edited",
    "has a payment",
    "allocated",
    "voided",
    "paid invoice",
    "cannot be modified",
)


class XeroRuleRefusal(XeroValidationError):
    """Xero refused one document for a rule of the organisation; ``messages`` are Xero's own."""


class XeroPeriodLocked(XeroRuleRefusal):
    """The document is dated on or before a lock date of the organisation."""

    def __init__(
        self, message: str, *, lock: LockKind, messages: Sequence[str], endpoint: str | None
    ) -> None:
        super().__init__(message, messages=messages, status=200, endpoint=endpoint)
        self.lock = lock


class XeroCurrencyNotEnabled(XeroRuleRefusal):
    def __init__(
        self, message: str, *, currency: str | None, messages: Sequence[str], endpoint: str | None
    ) -> None:
        super().__init__(message, messages=messages, status=200, endpoint=endpoint)
        self.currency = currency


class XeroTaxTypeRefused(XeroRuleRefusal):
    def __init__(
        self, message: str, *, tax_type: str | None, messages: Sequence[str], endpoint: str | None
    ) -> None:
        super().__init__(message, messages=messages, status=200, endpoint=endpoint)
        self.tax_type = tax_type


class XeroDocumentLocked(XeroRuleRefusal):
    """Payments allocated, PAID, VOIDED: the document can no longer change."""


class XeroDuplicateNumber(XeroRuleRefusal):
    """ "Invoice # must be unique." (XeroAPI/Xero-Net#236): the number is taken."""


class XeroNameTaken(XeroRuleRefusal):
    """Another active contact already has this name (Xero names are unique among active contacts,
    compared ignoring case more widely than ``ToLower()``)."""


_NAME_TAKEN = "is already assigned to another contact"


def refusal(messages: Sequence[str], endpoint: str | None = None) -> XeroValidationError:
    """The typed error for a document Xero refused with ``messages`` (the most actionable first)."""
    text = "; ".join(messages)
    lowered = text.lower()
    summary = f"Xero validation failed: {text}"
    if any(_NAME_TAKEN in message for message in messages):
        return XeroNameTaken(summary, messages=messages, status=200, endpoint=endpoint)
    if "lock date" in lowered:
        lock: LockKind = "end_of_year" if "end of year" in lowered else "period"
        return XeroPeriodLocked(summary, lock=lock, messages=messages, endpoint=endpoint)
    for message in messages:
        low = message.lower()
        if "currency" in low and any(
            m in low for m in ("not enabled", "not valid", "not set up", "not available")
        ):
            found = _CURRENCY.search(message)
            return XeroCurrencyNotEnabled(
                summary, currency=found.group(1) if found else None, messages=messages, endpoint=endpoint
            )
    for message in messages:
        if "taxtype" in message.lower().replace(" ", ""):
            found = _TAX_TYPE.search(message)
            return XeroTaxTypeRefused(
                summary, tax_type=found.group(1) if found else None, messages=messages, endpoint=endpoint
            )
    if "must be unique" in lowered:
        return XeroDuplicateNumber(summary, messages=messages, status=200, endpoint=endpoint)
    if any(marker in lowered for marker in _LOCKED_DOCUMENT):
        return XeroDocumentLocked(summary, messages=messages, status=200, endpoint=endpoint)
    return XeroValidationError(summary, messages=messages, status=200, endpoint=endpoint)


def raise_for_element(errors: Iterable[Any] | None, endpoint: str | None = None) -> None:
    """Raise the typed refusal of one element written with ``summarizeErrors=false``, if any."""
    messages = [
        str(getattr(e, "Message", None) or (e.get("Message") if isinstance(e, dict) else ""))
        for e in errors or []
    ]
    messages = [m for m in messages if m]
    if messages:
        raise refusal(messages, endpoint)


# --- tax types ------------------------------------------------------------------------------------

# For several revenue types at one rate, Xero's system types in this order, then custom ones
# (TAX001...) by name: the standard rate first, zero-rated before exempt (a 0% line from Ignition is
# a GST/VAT-free sale, not an out-of-scope one).
_PREFERRED = ("OUTPUT", "OUTPUT2", "RROUTPUT", "ZERORATEDOUTPUT", "ZERORATED", "EXEMPTOUTPUT", "EXEMPTEXPORT")
# "Not reported" rates: AU BAS Excluded, NZ No GST, UK No VAT. For lines without tax and the
# rounding line, never chosen for a rate Ignition gave.
NO_TAX_TYPES = ("BASEXCLUDED", "NONE")


class UnknownTaxRate(LookupError):
    """The organisation has no revenue tax type for a rate; the message names what it has."""

    def __init__(self, rate: str, available: Sequence[tuple[str, str]]) -> None:
        shown = ", ".join(f"{r}% ({t})" for r, t in available) or "none"
        super().__init__(
            f"the Xero organisation has no sales tax rate of {rate}% (its sales rates: {shown}): add the "
            "rate in Xero, or map it under invoices.tax_types_by_rate in the client configuration, "
            "then replay"
        )
        self.rate = rate
        self.available = list(available)


class OrganisationTaxTypes:
    """Ignition tax rate -> the organisation's TaxType, read lazily from ``load`` (``GET /TaxRates``,
    cached by the client), with configured overrides that win."""

    def __init__(
        self,
        load: Callable[[], Sequence[TaxRate]],
        overrides: Mapping[str, str] | None = None,
        untaxed_override: str | None = None,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self._load = load
        self._overrides = dict(overrides or {})
        self._untaxed_override = untaxed_override
        # Drops the cached rates: called once when a rate is missing, as the firm may have just
        # added it in Xero (the cache would otherwise hide it for up to its TTL).
        self._refresh = refresh
        self._rates: list[TaxRate] | None = None

    def _revenue(self) -> list[TaxRate]:
        if self._rates is None:
            self._rates = [
                r
                for r in self._load()
                if (r.Status or "ACTIVE").upper() == "ACTIVE" and r.CanApplyToRevenue is not False
            ]
        return self._rates

    def for_rate(self, rate: str) -> str:
        if rate in self._overrides:
            return self._overrides[rate]
        matching = self._matching(rate)
        if not matching and self._reread():
            matching = self._matching(rate)
        if not matching:
            raise UnknownTaxRate(rate, self.available())
        return min(matching, key=_preference).TaxType

    def _matching(self, rate: str) -> list[TaxRate]:
        return [r for r in self._revenue() if _key(r.EffectiveRate) == rate and r.TaxType not in NO_TAX_TYPES]

    def _reread(self) -> bool:
        if self._refresh is None:
            return False
        self._refresh()
        self._refresh = None
        self._rates = None
        return True

    def untaxed(self) -> str:
        if self._untaxed_override:
            return self._untaxed_override
        for tax_type in NO_TAX_TYPES:
            if any(r.TaxType == tax_type for r in self._revenue()):
                return tax_type
        zero = [r for r in self._revenue() if _key(r.EffectiveRate) == "0"]
        if not zero and self._reread():
            return self.untaxed()
        if not zero:
            raise UnknownTaxRate("0", self.available())
        return min(zero, key=_preference).TaxType

    def available(self) -> list[tuple[str, str]]:
        """(rate, TaxType) of every sales rate the organisation has, highest rate first."""
        seen = sorted(
            {(_key(r.EffectiveRate), r.TaxType) for r in self._revenue() if r.TaxType not in NO_TAX_TYPES},
            key=lambda item: (-Decimal(item[0]), _preference_of(item[1])),
        )
        return seen


def _key(value: Decimal | None) -> str:
    try:
        return rate_key(value if value is not None else Decimal(0))
    except MoneyError:
        return str(value)


def _preference_of(tax_type: str) -> tuple[int, str]:
    return (_PREFERRED.index(tax_type) if tax_type in _PREFERRED else len(_PREFERRED), tax_type)


def _preference(rate: TaxRate) -> tuple[int, str]:
    return _preference_of(rate.TaxType)
