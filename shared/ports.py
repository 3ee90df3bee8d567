"""Every port the use cases (``shared/contacts.py``, ``shared/invoices.py``, ``shared/payments.py``)
depend on, in one place: what they need from Xero, from Ignition and from each other. The Lambda
wires the real adapters (``shared/xero/client.py``, ``shared/ignition/reporting.py``,
``shared/store/mappings.py``); unit tests wire in-memory fakes. The mapping table's port is
``shared.store.mappings.MappingStore``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Currency, Invoice, Organisation, Payment, TaxRate
from shared.xero.client import HistoryResource, ReferenceResource
from shared.xero.finders import ContactQuery

# --- Xero -------------------------------------------------------------------------------------


class XeroContactsPort(Protocol):
    def find_contact_candidates(self, query: ContactQuery) -> list[Contact]: ...

    def find_contacts_by_name_text(self, name: str) -> list[Contact]: ...

    def save_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]: ...


class HistoryPort(Protocol):
    def add_history(self, resource: HistoryResource, record_id: str, details: str) -> None: ...


class OrganisationPort(Protocol):
    """The organisation's settings, cached by the client (``GET /TaxRates``, ``/Organisation``,
    ``/Currencies``); invalidated when Xero refuses a document for one of them."""

    def tax_rates(self) -> list[TaxRate]: ...

    def organisation(self) -> Organisation: ...

    def currencies(self) -> list[Currency]: ...

    def invalidate_reference_data(self, *resources: ReferenceResource) -> None: ...


class XeroInvoicesPort(HistoryPort, OrganisationPort, Protocol):
    def find_invoices_by_id(self, invoice_ids: Sequence[str]) -> list[Invoice]: ...

    def find_invoices_by_number(self, number: str) -> list[Invoice]: ...

    def find_invoices_by_reference(self, reference: str, *, ending: str) -> list[Invoice]: ...

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]: ...

    def create_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]: ...


class XeroPaymentsPort(HistoryPort, OrganisationPort, Protocol):
    def find_invoices_by_id(self, invoice_ids: Sequence[str]) -> list[Invoice]: ...

    def find_payments_by_reference(self, reference: str, *, ending: str) -> list[Payment]: ...

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]: ...


# --- Ignition ---------------------------------------------------------------------------------


class IgnitionClientsPort(Protocol):
    def get_client(self, slug: str) -> IgnitionClient | None: ...


class IgnitionInvoicesPort(IgnitionClientsPort, Protocol):
    def get_invoice(self, slug: str) -> IgnitionInvoice | None: ...


class IgnitionPaymentsPort(Protocol):
    def get_payment(self, slug: str) -> IgnitionPayment | None: ...


# --- one use case for another -----------------------------------------------------------------


class ContactEnsurer(Protocol):
    """The Xero ContactID for a client, synced first when it has none yet (``ContactSync``)."""

    def ensure(self, client_slug: str, event: SyncEvent) -> str: ...


class InvoiceEnsurer(Protocol):
    """The Xero InvoiceID for an Ignition invoice, synced first when needed (``InvoiceSync``)."""

    def ensure(self, invoice_slug: str, event: SyncEvent) -> str: ...
