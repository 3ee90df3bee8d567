"""Lookups named for what they find, so the use cases never write a ``where`` clause.

Xero's query language has traps this module keeps in one place: ``==`` on text may be
case-sensitive (calcinai/xero-php#416), a ``"`` or ``\\`` cannot be put in a where literal at all
(XeroAPI/Xero-Java#347), and a URL over about 2,000 characters is refused. Each finder asks for a
superset when it must (``ToLower()``, ``EndsWith``, ``searchTerm``) and compares exactly here.

:class:`XeroFinders` is a mixin over the three generic list reads (``find_contacts``,
``find_invoices``, ``find_payments``): :class:`shared.xero.client.XeroClient` has it, and so can any
in-memory stand-in that implements those reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote_plus

from shared.models.xero import Contact, Invoice, Payment
from shared.xero.where import where_ends_with, where_eq, where_eq_ignore_case, where_safe

# Text whose percent-encoded form is longer than this is looked up with searchTerm instead of a where
# literal, so the one OR-ed lookup stays far inside Xero's 2,000-character URL (the client splits
# it anyway if it would not fit).
_MAX_WHERE_TEXT = 400
# A searchTerm is a contains-search: a long text is searched by its first part, which still finds
# the contact; the exact comparison is the caller's.
_MAX_SEARCH_TEXT = 1_200


@dataclass(frozen=True)
class ContactQuery:
    """How to ask Xero for the contacts that could be one client's: ``any_of`` clauses OR-ed in one
    call, plus one ``searchTerm`` call per text that cannot be a where literal. ``ignored_contact_id``
    is a given ContactID that is not a GUID, so cannot be one of Xero's."""

    any_of: tuple[str, ...]
    search_terms: tuple[str, ...]
    ignored_contact_id: str | None = None


def _encoded_length(text: str) -> int:
    return len(quote_plus(text))


def search_text(text: str) -> str:
    """The longest start of ``text`` whose encoded form fits a ``searchTerm``."""
    text = text.strip()
    while _encoded_length(text) > _MAX_SEARCH_TEXT:
        text = text[: max(1, len(text) * 3 // 4)]
    return text


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def contact_query(
    *, contact_number: str, name: str, email: str | None = None, contact_id: str | None = None
) -> ContactQuery:
    """A lookup that returns every contact with this ContactNumber (exactly), this name or e-mail
    (ignoring case) or this ContactID. Text that cannot be a where literal, or is very long, goes
    to ``searchTerm`` (case-insensitive, plain text). Both return a superset."""
    clauses: list[str] = []
    terms: list[str] = []

    def by_text(field: str, value: str, exact: bool) -> None:
        value = value.strip()
        if not value:
            return
        if where_safe(value) and _encoded_length(value) <= _MAX_WHERE_TEXT:
            clauses.append(where_eq(field, value) if exact else where_eq_ignore_case(field, value))
        else:
            terms.append(search_text(value))

    by_text("ContactNumber", contact_number, exact=True)
    by_text("Name", name, exact=False)
    if email:
        by_text("EmailAddress", email, exact=False)
    ignored = None
    if contact_id:
        if _is_guid(contact_id):
            clauses.append(where_eq("ContactID", uuid.UUID(contact_id)))
        else:
            ignored = contact_id
    return ContactQuery(tuple(clauses), tuple(dict.fromkeys(terms)), ignored)


def _reference_clause(reference: str, ending: str) -> str:
    """Reference equal to ``reference``, or ending with ``ending`` when ``reference`` holds text no
    where literal can (a superset the caller narrows)."""
    if where_safe(reference):
        return where_eq("Reference", reference)
    return where_ends_with("Reference", ending)


class _ContactReads(Protocol):
    def find_contacts(
        self,
        where: str | None = None,
        *,
        any_of: Sequence[str] = (),
        search_term: str | None = None,
        include_archived: bool = False,
    ) -> list[Contact]: ...


class _InvoiceReads(Protocol):
    def find_invoices(
        self, where: str | None = None, *, ids: Sequence[str] = (), invoice_numbers: Sequence[str] = ()
    ) -> list[Invoice]: ...


class _PaymentReads(Protocol):
    def find_payments(self, where: str | None = None) -> list[Payment]: ...


class XeroFinders:
    """Finders over the generic list reads; see the module docstring."""

    def find_contact_candidates(self: _ContactReads, query: ContactQuery) -> list[Contact]:
        """Every contact (archived ones too) that ``query`` describes, each once: one call, plus one
        per text that needs a ``searchTerm``."""
        found: dict[str, Contact] = {}
        if query.any_of:
            for contact in self.find_contacts(any_of=query.any_of, include_archived=True):
                found.setdefault(str(contact.ContactID).lower(), contact)
        for term in query.search_terms:
            for contact in self.find_contacts(search_term=term, include_archived=True):
                found.setdefault(str(contact.ContactID).lower(), contact)
        return list(found.values())

    def find_contacts_by_name_text(self: _ContactReads, name: str) -> list[Contact]:
        """Contacts (archived ones too) whose name, number or e-mail contains ``name`` as text: what
        Xero's own uniqueness rule may fold together (``STRASSE`` and ``Straße``)."""
        return self.find_contacts(search_term=search_text(name), include_archived=True)

    def find_invoices_by_number(self: _InvoiceReads, number: str) -> list[Invoice]:
        """Invoices with this InvoiceNumber (the ``InvoiceNumbers`` filter, any text)."""
        return self.find_invoices(invoice_numbers=[number])

    def find_invoices_by_id(self: _InvoiceReads, invoice_ids: Sequence[str]) -> list[Invoice]:
        """Invoices with these InvoiceIDs, in as many calls as Xero's size limits need."""
        return self.find_invoices(ids=invoice_ids)

    def find_invoices_by_reference(self: _InvoiceReads, reference: str, *, ending: str) -> list[Invoice]:
        """Invoices whose Reference is exactly ``reference``. A reference that cannot be a where
        literal is asked for by ``ending`` (a part of it that can) and compared here."""
        clause = (
            where_eq("Reference", reference)
            if where_safe(reference)
            else where_ends_with("Reference", ending)
        )
        return [invoice for invoice in self.find_invoices(clause) if invoice.Reference == reference]

    def find_payments_by_reference(self: _PaymentReads, reference: str, *, ending: str) -> list[Payment]:
        """Payments whose Reference is exactly ``reference``, asked for by ``ending`` when the
        reference cannot be a where literal."""
        clause = (
            where_eq("Reference", reference)
            if where_safe(reference)
            else where_ends_with("Reference", ending)
        )
        return [payment for payment in self.find_payments(clause) if payment.Reference == reference]
