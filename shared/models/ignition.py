"""Ignition records as the Reporting API returns them (and as webhooks carry them).

Ignition's API is not publicly documented; these shapes come from integrators' code (see
docs/integration-facts). Unknown fields are kept (``extra="allow"``) so custom field mappings can
reach them, and so a new field never breaks the sync.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class IgnitionModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class PersonRef(IgnitionModel):
    name: str | None = None
    email: str | None = None


class IgnitionAddress(IgnitionModel):
    kind: Literal["street", "postal"] = "street"
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class IgnitionContactPerson(IgnitionModel):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    primary: bool = False


ClientState = Literal["lead", "active", "inactive", "archived"]


class IgnitionClient(IgnitionModel):
    slug: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    state: ClientState = "active"
    # "person" or "organisation"; people get FirstName/LastName in Xero.
    kind: Literal["person", "organisation"] = "organisation"
    external_client_id: str | None = None
    xero_contact_id: str | None = None
    manager: PersonRef | None = None
    partner: PersonRef | None = None
    tags: list[str] = Field(default_factory=list)
    addresses: list[IgnitionAddress] = Field(default_factory=list)
    contacts: list[IgnitionContactPerson] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    def field(self, dotted_path: str) -> Any:
        """Value at a dotted path such as ``external_client_id`` or ``custom_fields.abn``."""
        value: Any = self.model_dump(mode="json")
        for part in dotted_path.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


# --- billing ------------------------------------------------------------------------------------
# Ignition's invoice line items are not publicly documented: this is the shape the adapter and the
# emulator agree on, kept here so the real one can replace it. Amounts stay as received;
# shared.money.parse_amount reads them in the configured unit (major units or cents).

RawAmount = Decimal | int | str


class IgnitionAmount(IgnitionModel):
    """``{"total": ..., "currency": ...}`` on invoices, ``{"amount": ...}`` on prices and payments."""

    total: RawAmount | None = None
    amount: RawAmount | None = None
    currency: str = Field(min_length=3, max_length=3)

    @property
    def raw(self) -> RawAmount:
        value = self.total if self.total is not None else self.amount
        if value is None:
            raise ValueError("amount has neither 'total' nor 'amount'")
        return value


class RecordRef(IgnitionModel):
    slug: str = Field(min_length=1)


class IgnitionService(IgnitionModel):
    slug: str | None = None
    name: str | None = None


class IgnitionInvoiceItem(IgnitionModel):
    description: str = ""
    quantity: Decimal = Decimal(1)
    unit_price: IgnitionAmount
    # Percentage as a string: "10" for GST, "0" for GST-free; absent when the line carries no tax.
    tax_rate: Decimal | None = None
    service: IgnitionService | None = None


class IgnitionInvoice(IgnitionModel):
    slug: str = Field(min_length=1)
    reference_number: str | None = None
    state: str = "awaiting_payment"
    client: RecordRef
    amount: IgnitionAmount
    date: dt.date
    due_date: dt.date | None = None
    reference: str | None = None
    payment_state: Literal["unpaid", "partially_paid", "paid"] | None = None
    tax_inclusive: bool = False
    items: list[IgnitionInvoiceItem] = Field(min_length=1)
    created_at: datetime
    updated_at: datetime


class IgnitionPaymentAllocation(IgnitionModel):
    slug: str = Field(min_length=1)
    # Present when Ignition says how much of the payment went to this invoice.
    amount: IgnitionAmount | None = None


class IgnitionPayment(IgnitionModel):
    slug: str = Field(min_length=1)
    state: str = "succeeded"
    client: RecordRef
    amount: IgnitionAmount
    invoices: list[IgnitionPaymentAllocation] = Field(min_length=1)
    paid_on: dt.date | None = None
    created_at: datetime
    updated_at: datetime | None = None

    @property
    def version_at(self) -> datetime:
        """Payments may carry no updated_at; they then only change by being created."""
        return self.updated_at or self.created_at
