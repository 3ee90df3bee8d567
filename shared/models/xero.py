"""Xero Accounting API records, with Xero's own field names (PascalCase), per the official spec
(``xero_accounting.yaml``, components.schemas.Contact/Phone/Address/ContactPerson).

Outgoing payloads are dumped with ``exclude_none=True``: Xero keeps fields that are omitted from a
POST, so leaving a field out never erases data in Xero.
Xero serialises dates as ``/Date(1573755038314+0000)/`` (x-is-msdate-time); ``parse_xero_datetime``
and ``format_xero_datetime`` are the one conversion.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


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


class Contact(XeroModel):
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
    UpdatedDateUTC: datetime | None = None
    ValidationErrors: list[ValidationMessage] | None = None
    HasValidationErrors: bool | None = None
    StatusAttributeString: str | None = None

    @field_validator("UpdatedDateUTC", mode="before")
    @classmethod
    def _parse_ms_date(cls, value: Any) -> Any:
        return parse_xero_datetime(value) if isinstance(value, str) else value

    def to_xero(self) -> dict[str, Any]:
        body = super().to_xero()
        # Server-set fields never go back to Xero.
        for key in ("UpdatedDateUTC", "ValidationErrors", "HasValidationErrors", "StatusAttributeString"):
            body.pop(key, None)
        return body
