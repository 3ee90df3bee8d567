"""Xero Accounting API records, with Xero's own field names (PascalCase), per the official spec
(``xero_accounting.yaml``, components.schemas.Contact/Phone/Address/ContactPerson).

Outgoing payloads are dumped with ``exclude_none=True``: Xero keeps fields that are omitted from a
POST, so leaving a field out never erases data in Xero.
Xero serialises dates as ``/Date(1573755038314+0000)/`` (x-is-msdate-time); ``parse_xero_datetime``
and ``format_xero_datetime`` are the one conversion.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_xero_datetime(value: str | datetime | None) -> datetime | None:
    """Parse ``/Date(ms+zzzz)/`` or ISO-8601 into an aware UTC datetime."""
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value
    match = _MS_DATE.match(value)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_xero_datetime(value: datetime) -> str:
    epoch_ms = int((value - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    return f"/Date({epoch_ms}+0000)/"


class XeroModel(BaseModel):
    # Responses carry many fields we do not use; keep them rather than fail.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_xero(self) -> dict[str, Any]:
        body: dict[str, Any] = _wire(self.model_dump(mode="python", exclude_none=True, by_alias=True))
        return body


def _wire(value: Any) -> Any:
    """Python values -> what Xero's JSON carries (numbers for amounts, ISO strings for dates)."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, Decimal):
        as_float = float(value)
        # Money has 2-4 decimal places: the float's shortest repr is the same digits.
        if Decimal(repr(as_float)) != value:
            raise ValueError(f"{value} cannot be sent to Xero as a JSON number without changing it")
        return as_float
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


PhoneKind = Literal["DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE"]
AddressKind = Literal["POBOX", "STREET", "DELIVERY"]
ContactStatusValue = Literal["ACTIVE", "ARCHIVED", "GDPRREQUEST"]


class Phone(XeroModel):
    PhoneType: PhoneKind
    PhoneNumber: str | None = Field(default=None, max_length=50)
    PhoneAreaCode: str | None = Field(default=None, max_length=10)
    PhoneCountryCode: str | None = Field(default=None, max_length=20)


class Address(XeroModel):
    AddressType: AddressKind
    AddressLine1: str | None = Field(default=None, max_length=500)
    AddressLine2: str | None = Field(default=None, max_length=500)
    AddressLine3: str | None = Field(default=None, max_length=500)
    AddressLine4: str | None = Field(default=None, max_length=500)
    City: str | None = Field(default=None, max_length=255)
    Region: str | None = Field(default=None, max_length=255)
    PostalCode: str | None = Field(default=None, max_length=50)
    Country: str | None = Field(default=None, max_length=50)
    AttentionTo: str | None = Field(default=None, max_length=255)


class ContactPerson(XeroModel):
    FirstName: str | None = None
    LastName: str | None = None
    EmailAddress: str | None = None
    IncludeInEmails: bool | None = None


class ValidationMessage(XeroModel):
    Message: str


def _parse_ms_datetime(value: Any) -> Any:
    return parse_xero_datetime(value) if isinstance(value, str) else value


class XeroRecord(XeroModel):
    """A record Xero stores and answers with: the fields only Xero sets are read, never sent back."""

    # A record type's own server-set fields, left out of ``to_xero`` with the common ones below.
    _read_only: ClassVar[tuple[str, ...]] = ()

    UpdatedDateUTC: datetime | None = None
    ValidationErrors: list[ValidationMessage] | None = None
    StatusAttributeString: str | None = None

    _updated = field_validator("UpdatedDateUTC", mode="before")(_parse_ms_datetime)

    def to_xero(self) -> dict[str, Any]:
        body = super().to_xero()
        for key in ("UpdatedDateUTC", "ValidationErrors", "StatusAttributeString", *self._read_only):
            body.pop(key, None)
        return body


class Contact(XeroRecord):
    _read_only = ("HasValidationErrors",)

    ContactID: str | None = None
    ContactNumber: str | None = Field(default=None, max_length=50)
    AccountNumber: str | None = Field(default=None, max_length=50)
    ContactStatus: ContactStatusValue | None = None
    Name: str | None = Field(default=None, max_length=255)
    FirstName: str | None = Field(default=None, max_length=255)
    LastName: str | None = Field(default=None, max_length=255)
    CompanyNumber: str | None = Field(default=None, max_length=50)
    EmailAddress: str | None = Field(default=None, max_length=255)
    TaxNumber: str | None = Field(default=None, max_length=50)
    BankAccountDetails: str | None = None
    Website: str | None = None
    DefaultCurrency: str | None = None
    IsCustomer: bool | None = None
    Phones: list[Phone] | None = None
    Addresses: list[Address] | None = None
    ContactPersons: list[ContactPerson] | None = Field(default=None, max_length=5)
    HasValidationErrors: bool | None = None


# --- billing ------------------------------------------------------------------------------------
# Amounts are Decimal in our code. On the wire Xero wants JSON numbers: ``to_xero`` turns a Decimal
# into the float with the same shortest representation (exact for money's 2-4 decimal places), and
# the client parses responses with ``parse_float=Decimal`` so nothing passes through binary floats
# on the way in.

InvoiceStatus = Literal["DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"]
AmountTypes = Literal["Exclusive", "Inclusive", "NoTax"]


def _parse_ms_date(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("/Date("):
        parsed = parse_xero_datetime(value)
        return parsed.date() if parsed else None
    if isinstance(value, str) and "T" in value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    return value


_Contact = Contact


class ContactRef(XeroModel):
    ContactID: str


class LineItemTracking(XeroModel):
    Name: str
    Option: str
    TrackingCategoryID: str | None = None
    TrackingOptionID: str | None = None


class LineItem(XeroModel):
    LineItemID: str | None = None
    Description: str | None = Field(default=None, max_length=4000)
    Quantity: Decimal | None = None
    UnitAmount: Decimal | None = None
    ItemCode: str | None = None
    AccountCode: str | None = None
    TaxType: str | None = None
    TaxAmount: Decimal | None = None
    LineAmount: Decimal | None = None
    DiscountRate: Decimal | None = None
    Tracking: list[LineItemTracking] | None = Field(default=None, max_length=2)


class InvoicePaymentSummary(XeroModel):
    PaymentID: str | None = None
    Amount: Decimal | None = None


class Invoice(XeroRecord):
    _read_only = ("HasErrors", "Payments", "AmountDue", "AmountPaid", "SubTotal", "TotalTax")

    InvoiceID: str | None = None
    Type: Literal["ACCREC", "ACCPAY"] | None = None
    Contact: ContactRef | _Contact | None = None
    Date: date | None = None
    DueDate: date | None = None
    LineAmountTypes: AmountTypes | None = None
    LineItems: list[LineItem] | None = None
    InvoiceNumber: str | None = Field(default=None, max_length=255)
    Reference: str | None = None
    BrandingThemeID: str | None = None
    CurrencyCode: str | None = None
    CurrencyRate: Decimal | None = None
    Status: InvoiceStatus | None = None
    SubTotal: Decimal | None = None
    TotalTax: Decimal | None = None
    Total: Decimal | None = None
    AmountDue: Decimal | None = None
    AmountPaid: Decimal | None = None
    Payments: list[InvoicePaymentSummary] | None = None
    HasErrors: bool | None = None

    _dates = field_validator("Date", "DueDate", mode="before")(_parse_ms_date)


class InvoiceRef(XeroModel):
    InvoiceID: str | None = None
    InvoiceNumber: str | None = None


class AccountRef(XeroModel):
    Code: str | None = None
    AccountID: str | None = None


class Payment(XeroRecord):
    _read_only = ("HasValidationErrors",)

    PaymentID: str | None = None
    Invoice: InvoiceRef | None = None
    Account: AccountRef | None = None
    Date: date | None = None
    Amount: Decimal | None = None
    Reference: str | None = None
    CurrencyRate: Decimal | None = None
    Status: Literal["AUTHORISED", "DELETED"] | None = None
    PaymentType: str | None = None
    HasValidationErrors: bool | None = None

    _dates = field_validator("Date", mode="before")(_parse_ms_date)


class HistoryRecord(XeroModel):
    Details: str  # the client truncates what it sends to Xero's 2,500; what Xero returns is kept whole
    DateUTC: datetime | None = None
    User: str | None = None
    Changes: str | None = None

    _date = field_validator("DateUTC", mode="before")(_parse_ms_datetime)


class TaxRate(XeroModel):
    Name: str | None = None
    TaxType: str
    Status: str | None = None
    EffectiveRate: Decimal | None = None
    DisplayTaxRate: Decimal | None = None
    CanApplyToRevenue: bool | None = None
    ReportTaxType: str | None = None


class Account(XeroModel):
    AccountID: str | None = None
    Code: str | None = None
    Name: str | None = None
    Type: str | None = None
    Status: str | None = None
    TaxType: str | None = None
    Class: str | None = None
    EnablePaymentsToAccount: bool | None = None


class Organisation(XeroModel):
    """``GET /Organisation``: the country, base currency and lock dates the sync must respect."""

    OrganisationID: str | None = None
    Name: str | None = None
    CountryCode: str | None = None
    BaseCurrency: str | None = None
    # Documents dated on or before these are refused (integration-facts.md, "Lock dates").
    PeriodLockDate: date | None = None
    EndOfYearLockDate: date | None = None

    _dates = field_validator("PeriodLockDate", "EndOfYearLockDate", mode="before")(_parse_ms_date)


class Currency(XeroModel):
    """``GET /Currencies``: the currencies enabled in the organisation."""

    Code: str
    Description: str | None = None
