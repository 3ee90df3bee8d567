"""The port through which the Xero -> Ignition feature writes invoice drafts into Ignition.

Ignition's public REST API is read-only; its only write path is its MCP server (integration-facts,
"MCP server"). This module holds our side of that boundary: the models the feature builds, the
Protocol it codes against, and the errors it classifies. ``shared/ignition/mcp.py`` implements the
Protocol over MCP; the mapping from these models to the tools' field names lives there and in
configuration, because the tools' input schemas are not public.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from shared.errors import LimitWait, PermanentSyncError, TransientSyncError


class DraftLine(BaseModel):
    """One invoice line as the feature wants it in Ignition."""

    model_config = ConfigDict(frozen=True)

    description: str
    quantity: Decimal
    unit_price: Decimal  # exclusive of tax, in the invoice currency
    tax_rate_id: str | None  # an Ignition tax rate id from list_tax_rates()
    service_id: str | None = None  # an Ignition service id from list_services(), when matched


class InvoiceDraftRequest(BaseModel):
    """Our model of a draft to create; the tool's own field names live in the adapter + config."""

    model_config = ConfigDict(frozen=True)

    client_slug: str
    currency: str
    reference: str  # carries the Xero invoice number and a marker we can find again
    issue_date: date
    due_date: date | None
    lines: list[DraftLine]
    expected_total: Decimal  # tax-inclusive total the Xero invoice shows, to the cent


class CreatedDraft(BaseModel):
    model_config = ConfigDict(frozen=True)

    draft_id: str
    app_path: str  # Ignition link for the history note
    total: Decimal | None  # as Ignition computed it, when the tool returns it


class IgnitionTaxRate(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    rate: Decimal  # percent, e.g. 10


class IgnitionService(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    code: str | None = None


class IgnitionDraftSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    draft_id: str
    reference: str | None
    client_slug: str | None
    state: str
    app_path: str | None


class IgnitionDraftsPort(Protocol):
    def list_tax_rates(self) -> list[IgnitionTaxRate]: ...

    def list_services(self) -> list[IgnitionService]: ...

    def find_drafts(self, reference: str) -> list[IgnitionDraftSummary]:
        """Drafts (and what they became) carrying ``reference``, read via list_invoices."""
        ...

    def create_invoice_draft(self, request: InvoiceDraftRequest) -> CreatedDraft:
        """Not idempotent (stricter reading): look with ``find_drafts`` first."""
        ...


class IgnitionMcpRateLimited(LimitWait):
    """Ignition answered RATE_LIMITED (or our shared budget is spent): retry after ``retry_after``
    seconds. A LimitWait, so waiting never counts against the event's attempts."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IgnitionMcpUnavailable(TransientSyncError):
    """The MCP server could not be reached or failed (transport fault, 5xx, timeout)."""


class IgnitionMcpRefused(PermanentSyncError):
    """Ignition refused the call (a tool error, or our arguments failed its published schema);
    ``reason`` carries Ignition's message. Retrying the same call cannot help."""

    def __init__(self, reason: str, *, category: str = "ignition_refused") -> None:
        super().__init__(reason, category=category)


class IgnitionMcpAuthError(PermanentSyncError):
    """The user's Ignition MCP authorisation is gone (revoked, refresh refused, never connected):
    a person must run ``python -m cli connect ignition-mcp`` again. Permanent and alarmed."""

    def __init__(self, reason: str, *, category: str = "ignition_mcp_not_connected") -> None:
        super().__init__(reason, category=category)
