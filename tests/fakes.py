"""In-memory fakes of the sync's ports, with the behaviour the sync relies on (fakes over mocks)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

from sandbox.clock import Clock
from shared.config import RecordType
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, ValidationMessage
from shared.store.mappings import AuditEntry, MappingConflict, RecordMapping
from shared.xero.finders import XeroFinders


class ManualClock(Clock):
    """Epoch-seconds clock that moves only when told to; ``sleep`` advances it and records the wait.
    A ``sandbox.clock.Clock``, so the emulators can run on it too."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        super().__init__()
        self._now = start
        self._moving = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._moving:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._moving:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class InMemoryMappingStore:
    def __init__(self) -> None:
        self.mappings: dict[tuple[RecordType, str], RecordMapping] = {}
        self.owners: dict[tuple[RecordType, str], str] = {}
        self.audits: list[AuditEntry] = []

    def get(self, record_type: RecordType, ignition_id: str) -> RecordMapping | None:
        return self.mappings.get((record_type, ignition_id))

    def owner_of(self, record_type: RecordType, xero_id: str) -> str | None:
        return self.owners.get((record_type, xero_id))

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None:
        key = (mapping.record_type, mapping.ignition_id)
        current = self.mappings.get(key)
        if (current is None) != (previous is None) or (
            current and previous and current.version != previous.version
        ):
            raise MappingConflict("version mismatch")
        owner = self.owners.get((mapping.record_type, mapping.xero_id))
        if owner is not None and owner != mapping.ignition_id:
            raise MappingConflict("xero record owned by another")
        self.mappings[key] = mapping
        self.owners[(mapping.record_type, mapping.xero_id)] = mapping.ignition_id

    def audit(self, entry: AuditEntry) -> None:
        self.audits.append(entry)


class InMemoryXeroContacts(XeroFinders):
    """Returns every contact as a search candidate (a superset of what a `where` would return:
    the sync filters candidates itself) and enforces Xero's unique-active-name rule on save."""

    def __init__(self, contacts: Sequence[Contact] = ()) -> None:
        self.contacts: dict[str, Contact] = {}
        self.calls = 0
        for contact in contacts:
            self._store(contact.model_copy(update={"ContactID": contact.ContactID or str(uuid.uuid4())}))

    def _store(self, contact: Contact) -> Contact:
        stored = contact.model_copy(update={"ContactStatus": contact.ContactStatus or "ACTIVE"})
        assert stored.ContactID is not None
        self.contacts[stored.ContactID] = stored
        return stored

    def find_contacts(
        self, where: str | None = None, *, include_archived: bool = False, **_filters: Any
    ) -> list[Contact]:
        self.calls += 1  # every contact, whatever the filters (any_of, search_term): a superset
        return [c for c in self.contacts.values() if include_archived or c.ContactStatus != "ARCHIVED"]

    def save_contacts(self, contacts: Sequence[Contact], idempotency_key: str | None = None) -> list[Contact]:
        self.calls += 1
        results = []
        for contact in contacts:
            current = self.contacts.get(contact.ContactID or "")
            merged = current.model_copy(update=contact.model_dump(exclude_none=True)) if current else contact
            clash = [
                c
                for c in self.contacts.values()
                if c.ContactID != merged.ContactID
                and c.ContactStatus == "ACTIVE"
                and (c.Name or "").casefold() == (merged.Name or "").casefold()
            ]
            if clash and (merged.ContactStatus or "ACTIVE") == "ACTIVE":
                message = (
                    f"The contact name {merged.Name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
                results.append(
                    contact.model_copy(update={"ValidationErrors": [ValidationMessage(Message=message)]})
                )
                continue
            results.append(
                self._store(merged.model_copy(update={"ContactID": merged.ContactID or str(uuid.uuid4())}))
            )
        return results

    def active(self) -> list[Contact]:
        return [c for c in self.contacts.values() if c.ContactStatus == "ACTIVE"]


class InMemoryIgnition:
    """Ignition's Reporting API as the sync reads it: the current record by slug, or None."""

    def __init__(
        self,
        clients: Sequence[IgnitionClient] = (),
        invoices: Sequence[IgnitionInvoice] = (),
        payments: Sequence[IgnitionPayment] = (),
    ) -> None:
        self.clients = {c.slug: c for c in clients}
        self.invoices = {i.slug: i for i in invoices}
        self.payments = {p.slug: p for p in payments}
        self.calls = 0

    def get_client(self, slug: str) -> IgnitionClient | None:
        self.calls += 1
        return self.clients.get(slug)

    def get_invoice(self, slug: str) -> IgnitionInvoice | None:
        self.calls += 1
        return self.invoices.get(slug)

    def get_payment(self, slug: str) -> IgnitionPayment | None:
        self.calls += 1
        return self.payments.get(slug)
