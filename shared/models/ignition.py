"""Ignition records as the Reporting API returns them (and as webhooks carry them).

Ignition's API is not publicly documented; these shapes come from integrators' code (see
docs/integration-facts). Unknown fields are kept (``extra="allow"``) so custom field mappings can
reach them, and so a new field never breaks the sync.
"""

from __future__ import annotations

from datetime import datetime
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
