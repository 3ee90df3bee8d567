"""The organisation itself: its country profile (tax rates, chart of accounts, base currency),
enabled currencies and lock dates, served as ``GET /Organisation`` and ``GET /Currencies`` and
enforced on every invoice and payment write.

Profiles follow Xero's own per-country setups (integration-facts.md, "Tax types are per country"):
AU GST (OUTPUT 10%, EXEMPTOUTPUT, EXEMPTEXPORT, BASEXCLUDED), NZ GST (OUTPUT2 15%, ZERORATED,
NONE) and UK VAT (OUTPUT2 20%, RROUTPUT 5%, ZERORATEDOUTPUT, EXEMPTOUTPUT, NONE), each with the
input types of the same country. The sandbox default is AU with AUD, NZD, USD and GBP enabled
and no lock dates. The caller (the emulator) holds its lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime

from . import responses
from .routing import SETTINGS_READ, Route, route

# (TaxType, Name, rate %, report type, account classes it applies to)
TaxRow = tuple[str, str, str, str, tuple[str, ...]]
# (Code or None, Name, Type, TaxType, extra fields)
AccountRow = tuple[str | None, str, str, str, dict[str, Any]]

_ALL = ("REVENUE", "EXPENSE", "ASSET", "LIABILITY", "EQUITY")


@dataclass(frozen=True)
class CountryProfile:
    country: str  # what the admin endpoint takes: AU | NZ | UK
    country_code: str  # ISO 3166 as the spec's CountryCode enum spells it (UK is GB)
    version: str  # Organisation.Version
    base_currency: str
    timezone: str
    tax_label: str
    tax_rates: tuple[TaxRow, ...]
    accounts: tuple[AccountRow, ...]


def _accounts(
    output: str, exempt_output: str, input_: str, no_tax: str, currency: str
) -> tuple[AccountRow, ...]:
    # Xero's default charts share these codes across AU/NZ/UK closely enough for the sync's needs
    # (2nd-hand, from memory); a bank account without a Code is common (spec: "not all accounts
    # have a code value"), so every profile has one.
    bank = {"CurrencyCode": currency}
    return (
        ("090", "Ignition Clearing", "BANK", no_tax, {"EnablePaymentsToAccount": True, **bank}),
        ("091", "Business Bank Account", "BANK", no_tax, {"BankAccountNumber": "062000 12345678", **bank}),
        (None, "Stripe Payouts", "BANK", no_tax, {"BankAccountNumber": "STRIPE-001", **bank}),
        ("200", "Sales", "REVENUE", output, {}),
        ("260", "Other Revenue", "REVENUE", output, {}),
        ("270", "Interest Income", "REVENUE", exempt_output, {}),
        ("400", "Advertising", "EXPENSE", input_, {}),
        ("610", "Accounts Receivable", "CURRENT", no_tax, {"SystemAccount": "DEBTORS"}),
        ("800", "Accounts Payable", "CURRLIAB", no_tax, {"SystemAccount": "CREDITORS"}),
        # Xero's default charts file Rounding under current liabilities (2nd-hand, from memory).
        ("860", "Rounding", "CURRLIAB", no_tax, {"SystemAccount": "ROUNDING"}),
    )


PROFILES: dict[str, CountryProfile] = {
    "AU": CountryProfile(
        "AU",
        "AU",
        "AU",
        "AUD",
        "AUSEASTERNSTANDARDTIME",
        "GST",
        (
            ("OUTPUT", "GST on Income", "10", "OUTPUT", ("REVENUE",)),
            ("EXEMPTOUTPUT", "GST Free Income", "0", "EXEMPTOUTPUT", ("REVENUE",)),
            ("EXEMPTEXPORT", "GST Free Exports", "0", "EXEMPTEXPORT", ("REVENUE",)),
            ("BASEXCLUDED", "BAS Excluded", "0", "BASEXCLUDED", _ALL),
            ("INPUT", "GST on Expenses", "10", "INPUT", ("EXPENSE",)),
            ("EXEMPTEXPENSES", "GST Free Expenses", "0", "EXEMPTEXPENSES", ("EXPENSE",)),
            ("INPUTTAXED", "Input Taxed", "0", "INPUTTAXED", ("EXPENSE",)),
            ("CAPEXINPUT", "GST on Capital", "10", "CAPEXINPUT", ("EXPENSE", "ASSET")),
        ),
        _accounts("OUTPUT", "EXEMPTOUTPUT", "INPUT", "BASEXCLUDED", "AUD"),
    ),
    "NZ": CountryProfile(
        "NZ",
        "NZ",
        "NZ",
        "NZD",
        "NEWZEALANDSTANDARDTIME",
        "GST",
        (
            ("OUTPUT2", "15% GST on Income", "15", "OUTPUT", ("REVENUE",)),
            ("ZERORATED", "Zero Rated", "0", "ZERORATED", ("REVENUE", "EXPENSE")),
            ("INPUT2", "15% GST on Expenses", "15", "INPUT", ("EXPENSE", "ASSET")),
            ("GSTONIMPORTS", "GST on Imports", "0", "GSTONIMPORTS", ("EXPENSE",)),
            ("NONE", "No GST", "0", "NONE", _ALL),
        ),
        _accounts("OUTPUT2", "ZERORATED", "INPUT2", "NONE", "NZD"),
    ),
    "UK": CountryProfile(
        "UK",
        "GB",
        "UK",
        "GBP",
        "GMTSTANDARDTIME",
        "VAT",
        (
            ("OUTPUT2", "20% (VAT on Income)", "20", "OUTPUT", ("REVENUE",)),
            ("RROUTPUT", "5% (VAT on Income)", "5", "OUTPUT", ("REVENUE",)),
            ("ZERORATEDOUTPUT", "Zero Rated Income", "0", "OUTPUT", ("REVENUE",)),
            ("EXEMPTOUTPUT", "Exempt Income", "0", "EXEMPTOUTPUT", ("REVENUE",)),
            ("INPUT2", "20% (VAT on Expenses)", "20", "INPUT", ("EXPENSE", "ASSET")),
            ("RRINPUT", "5% (VAT on Expenses)", "5", "INPUT", ("EXPENSE",)),
            ("ZERORATEDINPUT", "Zero Rated Expenses", "0", "INPUT", ("EXPENSE",)),
            ("EXEMPTINPUT", "Exempt Expenses", "0", "EXEMPTINPUT", ("EXPENSE",)),
            ("NONE", "No VAT", "0", "NONE", _ALL),
        ),
        _accounts("OUTPUT2", "EXEMPTOUTPUT", "INPUT2", "NONE", "GBP"),
    ),
}
DEFAULT_COUNTRY = "AU"
DEFAULT_CURRENCIES = ("AUD", "NZD", "USD", "GBP")
CURRENCY_NAMES = {
    "AUD": "Australian Dollar",
    "NZD": "New Zealand Dollar",
    "USD": "United States Dollar",
    "GBP": "British Pound",
    "EUR": "Euro",
    "CAD": "Canadian Dollar",
    "SGD": "Singapore Dollar",
    "JPY": "Japanese Yen",
}
ADMIN_KEYS = frozenset(
    {"country", "base_currency", "currencies", "period_lock_date", "end_of_year_lock_date"}
)

# Lock-date wording: the end-of-year message is quoted in waynerobinson/xeroizer#92; the period
# one is not published and follows it (guessed). Xero refuses a date on or before the lock date.
MSG_END_OF_YEAR_LOCK = "The document date cannot be before the end of year lock date"
MSG_PERIOD_LOCK = "The document date cannot be before the period lock date"


def currency_message(code: str) -> str:
    # Wording not published (guessed); the rule is (integration-facts.md): a document's
    # CurrencyCode must be enabled in the organisation (GET /Currencies).
    return f"The currency {code} is not enabled for this organisation. Add it in Xero under Currencies."


class OrganisationError(ValueError):
    """An admin request the emulator refuses (unknown key, bad value)."""


@dataclass
class Organisation:
    tenant_id: str
    name: str
    now: Callable[[], datetime]
    profile: CountryProfile = field(default_factory=lambda: PROFILES[DEFAULT_COUNTRY])
    base_currency: str = "AUD"
    currencies: list[str] = field(default_factory=lambda: list(DEFAULT_CURRENCIES))
    period_lock_date: date | None = None
    end_of_year_lock_date: date | None = None

    def reset(self, country: str = DEFAULT_COUNTRY) -> None:
        self.profile = PROFILES[country]
        self.base_currency = self.profile.base_currency
        self.currencies = _with_base(list(DEFAULT_CURRENCIES), self.base_currency)
        self.period_lock_date = None
        self.end_of_year_lock_date = None

    @property
    def no_tax_type(self) -> str:
        """The country's "not reported" rate: BAS Excluded in AU, No GST / No VAT elsewhere."""
        return "BASEXCLUDED" if self.profile.country == "AU" else "NONE"

    # -- rules the invoice and payment writes enforce ------------------------------------
    def currency_error(self, code: str) -> str | None:
        return None if code.upper() in self.currencies else currency_message(code.upper())

    def lock_error(self, when: date) -> str | None:
        """Xero's message when ``when`` falls on or before a lock date (the stricter reading:
        both locks apply to the API user, as if it were not an adviser)."""
        if self.end_of_year_lock_date is not None and when <= self.end_of_year_lock_date:
            return MSG_END_OF_YEAR_LOCK
        if self.period_lock_date is not None and when <= self.period_lock_date:
            return MSG_PERIOD_LOCK
        return None

    # -- admin -----------------------------------------------------------------------------
    def configure(self, body: dict[str, Any]) -> bool:
        """Apply ``POST /_emulator/organisation``; True when the country changed (the caller
        re-seeds tax rates and accounts)."""
        unknown = sorted(set(body) - ADMIN_KEYS)
        if unknown:
            raise OrganisationError(
                f"unknown keys: {', '.join(unknown)} (allowed: {', '.join(sorted(ADMIN_KEYS))})"
            )
        country = body.get("country")
        if country is not None and (not isinstance(country, str) or country.upper() not in PROFILES):
            raise OrganisationError(f"country must be one of {', '.join(PROFILES)}")
        base = body.get("base_currency")
        if base is not None and not _is_code(base):
            raise OrganisationError("base_currency must be a 3-letter currency code")
        currencies = body.get("currencies")
        if currencies is not None and (
            not isinstance(currencies, list) or not all(_is_code(c) for c in currencies)
        ):
            raise OrganisationError("currencies must be a list of 3-letter currency codes")
        locks = {k: _parse_lock(body, k) for k in ("period_lock_date", "end_of_year_lock_date") if k in body}
        changed = country is not None and country.upper() != self.profile.country
        if country is not None:
            self.reset(country.upper())
        if base is not None:
            self.base_currency = base.upper()
        if currencies is not None:
            self.currencies = [c.upper() for c in currencies]
        self.currencies = _with_base(self.currencies, self.base_currency)
        for key, value in locks.items():
            setattr(self, key, value)
        return changed

    def admin_view(self) -> dict[str, Any]:
        return {
            "country": self.profile.country,
            "base_currency": self.base_currency,
            "currencies": list(self.currencies),
            "period_lock_date": self.period_lock_date.isoformat() if self.period_lock_date else None,
            "end_of_year_lock_date": (
                self.end_of_year_lock_date.isoformat() if self.end_of_year_lock_date else None
            ),
            "Organisation": self.render(),
        }

    # -- API -------------------------------------------------------------------------------
    def render(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "OrganisationID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-emulator/org/{self.tenant_id}")),
            "APIKey": "",
            "Name": self.name,
            "LegalName": self.name,
            "PaysTax": True,
            "Version": self.profile.version,
            "OrganisationType": "ACCOUNTING_PRACTICE",
            "BaseCurrency": self.base_currency,
            "CountryCode": self.profile.country_code,
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 30 if self.profile.country == "AU" else 31,
            "FinancialYearEndMonth": {"AU": 6, "NZ": 3, "UK": 3}[self.profile.country],
            "SalesTaxBasis": "ACCRUALS" if self.profile.country == "NZ" else "ACCRUAL",
            "SalesTaxPeriod": "QUARTERLY",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Inclusive",
            "CreatedDateUTC": format_xero_datetime(datetime(2020, 1, 1, tzinfo=UTC)),
            "Timezone": self.profile.timezone,
            "OrganisationEntityType": "COMPANY",
            "ShortCode": "!sbx01",
            "Class": "STANDARD",
            "Edition": "BUSINESS",
            "Addresses": [],
            "Phones": [],
            "ExternalLinks": [],
        }
        for key, value in (
            ("PeriodLockDate", self.period_lock_date),
            ("EndOfYearLockDate", self.end_of_year_lock_date),
        ):
            if value is not None:  # the spec: "Shown if set"
                record[key] = format_xero_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
        return record

    def routes(self) -> list[Route]:
        return [
            route("GET", "Organisation", self._get_organisation, SETTINGS_READ),
            route("GET", "Currencies", self._get_currencies, SETTINGS_READ),
        ]

    def _get_organisation(self, _request: Request, _params: dict[str, str]) -> Response:
        return responses.json_response(responses.envelope("Organisations", [self.render()], self.now()))

    def _get_currencies(self, _request: Request, _params: dict[str, str]) -> Response:
        items = [{"Code": code, "Description": CURRENCY_NAMES.get(code, code)} for code in self.currencies]
        return responses.json_response(responses.envelope("Currencies", items, self.now()))


def _is_code(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha()


def _with_base(currencies: list[str], base: str) -> list[str]:
    # The base currency is always enabled in Xero.
    return [base, *(c for c in currencies if c != base)]


def _parse_lock(body: dict[str, Any], key: str) -> date | None:
    value = body[key]
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise OrganisationError(f"{key} must be YYYY-MM-DD or null") from error
