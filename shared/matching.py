"""Which Xero contact is an Ignition client's, and what a second client with a taken name is called.

Pure rules, no I/O: the live contact sync (``shared/contacts.py``), the backfill (``shared/backfill/``)
and reconciliation (``shared/reconcile/engine.py``, ``shared/reconcile/compare.py``) all decide with
these, so a client links to the same contact whichever path reaches it first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.config import ContactRules
from shared.contact_fields import XERO_NAME_MAX
from shared.errors import PermanentSyncError
from shared.models.ignition import IgnitionClient
from shared.models.xero import Contact


@dataclass
class ContactMatch:
    contact: Contact | None
    method: str
    name_taken_by_other: bool
    decisions: list[str]


def same_text(a: str | None, b: str | None) -> bool:
    """Equal ignoring surrounding spaces and case, as Xero compares names and e-mails."""
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def choose_contact(
    client: IgnitionClient,
    candidates: Sequence[Contact],
    *,
    rules: ContactRules,
    slug_prefix: str,
    owner_of: Callable[[str], str | None],
) -> ContactMatch:
    """The matching rules, without I/O: which of ``candidates`` (Xero contacts that share the
    client's ContactNumber, xero_contact_id, email or name) is this client's contact, if any.
    Used per event by the sync and in bulk by backfill and reconciliation."""
    decisions: list[str] = []

    def owned_by_other(contact: Contact) -> bool:
        number = contact.ContactNumber or ""
        if number.startswith(slug_prefix) and number != client.slug:
            return True
        owner = owner_of(contact.ContactID or "")
        return owner is not None and owner != client.slug

    def active(contact: Contact) -> bool:
        return contact.ContactStatus in (None, "ACTIVE")

    name_taken = any(same_text(c.Name, client.name) and active(c) and owned_by_other(c) for c in candidates)

    by_number = [c for c in candidates if c.ContactNumber == client.slug]
    if by_number:
        return ContactMatch(by_number[0], "contact_number", name_taken, decisions)
    if client.xero_contact_id:
        by_id = [
            c
            for c in candidates
            if c.ContactID == client.xero_contact_id.lower() or c.ContactID == client.xero_contact_id
        ]
        if by_id and not owned_by_other(by_id[0]):
            return ContactMatch(by_id[0], "xero_contact_id", name_taken, decisions)
        if by_id:
            decisions.append(f"Ignition's xero_contact_id {client.xero_contact_id} belongs to another client")
    if client.email and rules.match_by_email:
        by_email = [c for c in candidates if same_text(c.EmailAddress, client.email)]
        usable = [c for c in by_email if active(c) and not owned_by_other(c)]
        if len(by_email) > len(usable):
            decisions.append(
                f"{len(by_email) - len(usable)} contact(s) with this email are archived "
                "or belong to another client; not matched"
            )
        if len(usable) > 1:
            same_name = [c for c in usable if same_text(c.Name, client.name)]
            if len(same_name) != 1:
                raise PermanentSyncError(
                    f"{len(usable)} active Xero contacts share the email {client.email!r} "
                    f"({', '.join(str(c.ContactID) for c in usable)}) and none is uniquely named "
                    f"{client.name!r}: merge or archive the duplicates in Xero, then replay",
                    category="ambiguous_match",
                )
            decisions.append("several contacts share the email; chose the one with the same name")
            usable = same_name
        if usable:
            return ContactMatch(usable[0], "email", name_taken, decisions)
    if rules.match_by_name:
        by_name = [
            c for c in candidates if same_text(c.Name, client.name) and active(c) and not owned_by_other(c)
        ]
        if by_name:
            return ContactMatch(by_name[0], "name", name_taken, decisions)
    return ContactMatch(None, "created", name_taken, decisions)


def disambiguated_name(name: str, suffix: str) -> str:
    """A name for a second client whose exact name another client already holds in Xero
    (Xero names must be unique among active contacts)."""
    tail = f" ({suffix})"
    return name[: XERO_NAME_MAX - len(tail)].rstrip() + tail


def disambiguated_client_name(client: IgnitionClient, rules: ContactRules) -> str:
    """The name the sync and the backfill give a client whose name another client's contact holds:
    ``"<name> (<slug>)"``, or the external client id in the brackets when the rules say so."""
    suffix = client.slug
    if rules.duplicate_name_suffix == "external_client_id" and client.external_client_id:
        suffix = client.external_client_id
    return disambiguated_name(client.name, suffix)
