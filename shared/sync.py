"""Use case: bring one Ignition record's newest state into Xero, exactly once.

Written against small ports so unit tests run with in-memory fakes and the Lambda wires the real
adapters. The order of operations is what makes a crash or a redelivery harmless:

1. read the newest state of the record (payload when complete, Reporting API otherwise);
2. skip it if the mapping already holds something as new (out-of-order or repeated delivery);
3. find the Xero contact (mapping -> ContactNumber -> Ignition's xero_contact_id -> email -> name),
   in one Xero call for most clients, so a contact created just before a crash is found by its
   ContactNumber; e-mail and name are looked up ignoring case, the choice is made here exactly;
4. create or update it in Xero;
5. write the mapping with a conditional write, then the audit entry.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import quote_plus

from shared.config import ContactRules, IgnitionConfig, RecordType
from shared.errors import PermanentSyncError
from shared.mapping import changed_fields, client_to_contact
from shared.matching import ContactMatch, choose_contact, disambiguated_client_name
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient
from shared.models.xero import Contact
from shared.outcome import SyncOutcome, newest_state, record_outcome
from shared.store.mappings import MappingStore, RecordMapping
from shared.xero.client import where_eq, where_eq_ignore_case, where_safe

logger = logging.getLogger(__name__)

UNIQUE_NAME_MESSAGE = "is already assigned to another contact"
# Text whose percent-encoded form is longer than this is looked up with searchTerm instead of a where
# literal, so the one OR-ed lookup stays far inside Xero's 2,000-character URL (the client splits
# it anyway if it would not fit).
_MAX_WHERE_TEXT = 400
# A searchTerm is a contains-search: a long text is searched by its first part, which still finds
# the contact; the exact comparison is ours.
_MAX_SEARCH_TEXT = 1_200


class XeroContactsPort(Protocol):
    def find_contacts(
        self,
        where: str | None = None,
        *,
        any_of: Sequence[str] = (),
        search_term: str | None = None,
        include_archived: bool = False,
    ) -> list[Contact]: ...

    def save_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]: ...


class IgnitionClientsPort(Protocol):
    def get_client(self, slug: str) -> IgnitionClient | None: ...


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ContactLookup:
    """How to ask Xero for a client's candidate contacts: ``where`` clauses OR-ed in one call, plus
    one ``searchTerm`` call per text that cannot be a where literal."""

    any_of: tuple[str, ...]
    search_terms: tuple[str, ...]
    decisions: tuple[str, ...]


def _encoded_length(text: str) -> int:
    return len(quote_plus(text))


def _search_text(text: str) -> str:
    """The longest start of ``text`` whose encoded form fits ``_MAX_SEARCH_TEXT``."""
    text = text.strip()
    while _encoded_length(text) > _MAX_SEARCH_TEXT:
        text = text[: max(1, len(text) * 3 // 4)]
    return text


def contact_lookup(client: IgnitionClient, rules: ContactRules) -> ContactLookup:
    """Where clauses and search terms that return every contact ``choose_contact`` could pick.

    Xero's ``==`` on text may be case-sensitive (calcinai/xero-php#416), so e-mail and name are
    compared with ``ToLower()``; a ``"`` or ``\\`` cannot be put in a where literal at all
    (XeroAPI/Xero-Java#347), and very long text would push the URL over Xero's limit: such text goes
    to ``searchTerm`` (case-insensitive, plain text). Both return a superset; the choice is exact."""
    clauses: list[str] = []
    terms: list[str] = []
    decisions: list[str] = []

    def by_text(field: str, value: str, exact: bool) -> None:
        value = value.strip()
        if not value:
            return
        if where_safe(value) and _encoded_length(value) <= _MAX_WHERE_TEXT:
            clauses.append(where_eq(field, value) if exact else where_eq_ignore_case(field, value))
        else:
            terms.append(_search_text(value))

    by_text("ContactNumber", client.slug, exact=True)
    by_text("Name", client.name, exact=False)
    if client.email and rules.match_by_email:
        by_text("EmailAddress", client.email, exact=False)
    if client.xero_contact_id:
        if _is_guid(client.xero_contact_id):
            clauses.append(where_eq("ContactID", uuid.UUID(client.xero_contact_id)))
        else:
            decisions.append(f"ignored xero_contact_id {client.xero_contact_id!r}: not a Xero ContactID")
    return ContactLookup(tuple(clauses), tuple(dict.fromkeys(terms)), tuple(decisions))


class ContactSync:
    def __init__(
        self,
        *,
        xero: XeroContactsPort,
        ignition: IgnitionClientsPort,
        store: MappingStore,
        rules: ContactRules,
        ignition_config: IgnitionConfig,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._xero = xero
        self._ignition = ignition
        self._store = store
        self._rules = rules
        self._ignition_config = ignition_config
        self._now = now

    def ensure(self, client_slug: str, event: SyncEvent) -> str:
        """The Xero ContactID for a client, syncing the client first when it has none yet (an
        invoice or payment can arrive before, or without, its client's own webhook)."""
        mapping = self._store.get(RecordType.CLIENT, client_slug)
        if mapping is not None:
            return mapping.xero_id
        client = self._ignition.get_client(client_slug)
        if client is None:
            raise PermanentSyncError(
                f"client {client_slug} is not in Ignition's Reporting API, so its contact cannot be made",
                category="missing_client",
            )
        outcome = self._apply(client, None, event)
        assert outcome.xero_id is not None
        return outcome.xero_id

    def handle(self, event: SyncEvent) -> SyncOutcome:
        client = self._current_state(event)
        if client is None:
            return self._record(
                event,
                SyncOutcome(
                    "skipped_missing",
                    event.record_id,
                    decisions=["client not found in Ignition's Reporting API; nothing to write"],
                ),
            )
        mapping = self._store.get(RecordType.CLIENT, client.slug)
        if mapping is not None and not event.force and client.updated_at <= mapping.ignition_updated_at:
            return self._record(
                event,
                SyncOutcome(
                    "skipped_stale",
                    client.slug,
                    mapping.xero_id,
                    "mapping",
                    [
                        f"Ignition updated_at {client.updated_at.isoformat()} is not newer than the "
                        f"{mapping.ignition_updated_at.isoformat()} already written"
                    ],
                ),
                client,
            )
        if client.state in self._rules.skip_client_states:
            return self._record(
                event,
                SyncOutcome(
                    "skipped_state", client.slug, decisions=[f"client state {client.state!r} is not synced"]
                ),
                client,
            )
        return self._apply(client, mapping, event)

    def _apply(self, client: IgnitionClient, mapping: RecordMapping | None, event: SyncEvent) -> SyncOutcome:
        if mapping is not None:
            match = ContactMatch(contact=None, method="mapping", name_taken_by_other=False, decisions=[])
            contact_id: str | None = mapping.xero_id
            contact_number = client.slug
        else:
            match = self._match(client)
            contact_id = match.contact.ContactID if match.contact else None
            contact_number = self._contact_number_for(client, match.contact, match.decisions)

        name = client.name
        if contact_id is None and match.name_taken_by_other:
            name = disambiguated_client_name(client, self._rules)
            match.decisions.append(
                f"name {client.name!r} belongs to another client's contact; using {name!r}"
            )
        saved = self._save(client, contact_id, name, contact_number, match)
        if contact_id is None and match.contact is not None:
            contact_id = match.contact.ContactID  # linked after Xero refused the name (_save)

        outcome = SyncOutcome(
            "created" if contact_id is None else "updated",
            client.slug,
            saved.ContactID,
            "created" if contact_id is None else match.method,
            match.decisions,
        )
        assert saved.ContactID is not None
        self._store.save(
            RecordMapping(
                record_type=RecordType.CLIENT,
                ignition_id=client.slug,
                xero_id=saved.ContactID,
                ignition_created_at=client.created_at,
                ignition_updated_at=client.updated_at,
                synced_at=self._now(),
                last_event_id=event.event_id,
                match_method=outcome.match_method or "created",
                version=1 if mapping is None else mapping.version + 1,
            ),
            previous=mapping,
        )
        return self._record(event, outcome, client, changed=changed_fields(match.contact, saved))

    # -- steps ---------------------------------------------------------------------------------

    def _current_state(self, event: SyncEvent) -> IgnitionClient | None:
        skew = timedelta(seconds=self._ignition_config.max_clock_skew_seconds)
        return newest_state(event, IgnitionClient, self._ignition.get_client, now=self._now(), max_skew=skew)

    def _match(self, client: IgnitionClient) -> ContactMatch:
        """Find the Xero contact for a client that has no mapping yet: one Xero call, plus one per
        text that needs a searchTerm (a quote or backslash in the name, a very long e-mail)."""
        lookup = contact_lookup(client, self._rules)
        found: dict[str, Contact] = {}
        if lookup.any_of:
            for contact in self._xero.find_contacts(any_of=lookup.any_of, include_archived=True):
                found.setdefault(str(contact.ContactID).lower(), contact)
        for term in lookup.search_terms:
            for contact in self._xero.find_contacts(search_term=term, include_archived=True):
                found.setdefault(str(contact.ContactID).lower(), contact)
        match = choose_contact(
            client,
            list(found.values()),
            rules=self._rules,
            slug_prefix=self._ignition_config.client_slug_prefix,
            owner_of=lambda contact_id: self._store.owner_of(RecordType.CLIENT, contact_id),
        )
        match.decisions[:0] = lookup.decisions
        return match

    def _contact_number_for(
        self, client: IgnitionClient, matched: Contact | None, decisions: list[str]
    ) -> str:
        number = matched.ContactNumber if matched else None
        if number and number != client.slug:
            # The firm's own contact code: keep it, the mapping is our key.
            decisions.append(f"kept the contact's existing ContactNumber {number!r}")
            return number
        return client.slug

    def _save(
        self,
        client: IgnitionClient,
        contact_id: str | None,
        name: str,
        contact_number: str,
        match: ContactMatch,
    ) -> Contact:
        for attempt in range(2):
            contact, notes = client_to_contact(client, self._rules, name=name, contact_number=contact_number)
            match.decisions.extend(n for n in notes if n not in match.decisions)
            updates: dict[str, object] = {}
            if contact_id is not None:
                updates["ContactID"] = contact_id
            if match.contact is not None and match.contact.ContactStatus == "ARCHIVED":
                if self._rules.archived_contact == "fail":
                    raise PermanentSyncError(
                        f"Xero contact {contact_id} is archived; unarchive it in Xero or set "
                        "contacts.archived_contact to 'reactivate', then replay",
                        category="archived_contact",
                    )
                match.decisions.append("the Xero contact was archived; reactivated it")
            if contact_id is not None and self._rules.archived_contact == "reactivate":
                updates["ContactStatus"] = "ACTIVE"
            contact = contact.model_copy(update=updates)
            body = contact.model_dump_json(exclude_none=True)
            key = hashlib.sha256(f"{client.slug}|{client.updated_at.isoformat()}|{body}".encode()).hexdigest()
            (saved,) = self._xero.save_contacts([contact], idempotency_key=key)
            errors = [e.Message for e in saved.ValidationErrors or []]
            if not errors:
                return saved
            if attempt == 0 and any(UNIQUE_NAME_MESSAGE in e for e in errors):
                found = self._contact_holding_the_name(client, match) if contact_id is None else None
                if found is not None:
                    contact_id = found.ContactID
                    contact_number = self._contact_number_for(client, found, match.decisions)
                    continue
                name = disambiguated_client_name(client, self._rules)
                match.decisions.append(f"Xero refused the name {client.name!r} as taken; using {name!r}")
                continue
            raise PermanentSyncError(
                f"Xero rejected contact for {client.slug}: {'; '.join(errors)}", category="xero_validation"
            )
        raise AssertionError("unreachable")

    def _contact_holding_the_name(self, client: IgnitionClient, match: ContactMatch) -> Contact | None:
        """Xero refused a new contact's name as taken, yet the lookup saw no contact to link: Xero's
        uniqueness folds case more widely than ``ToLower()`` (``STRASSE`` and ``Straße``;
        freakboy3742/pyxero#172). Search the name as text and choose again, so the client links
        to that contact instead of becoming ``"<name> (<slug>)"`` beside it."""
        found = self._xero.find_contacts(search_term=_search_text(client.name), include_archived=True)
        again = choose_contact(
            client,
            found,
            rules=self._rules,
            slug_prefix=self._ignition_config.client_slug_prefix,
            owner_of=lambda contact_id: self._store.owner_of(RecordType.CLIENT, contact_id),
        )
        if again.contact is None:
            return None
        match.contact, match.method = again.contact, again.method
        match.decisions.extend(again.decisions)
        match.decisions.append(
            f"Xero refused the name {client.name!r} as taken; a search by name found Xero contact "
            f"{again.contact.ContactID}: linked to it"
        )
        return again.contact

    def _record(
        self,
        event: SyncEvent,
        outcome: SyncOutcome,
        client: IgnitionClient | None = None,
        changed: list[str] | None = None,
    ) -> SyncOutcome:
        return record_outcome(
            self._store,
            event,
            outcome,
            at=self._now(),
            ignition_updated_at=client.updated_at if client else None,
            changed=changed,
        )
