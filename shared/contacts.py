"""Use case: one Ignition client -> exactly one Xero contact.

Written against the ports in ``shared/ports.py``, so unit tests run with in-memory fakes and the
Lambda wires the real adapters. The order of operations is what makes a crash or a redelivery
harmless:

1. read the newest state of the client (payload when complete, Reporting API otherwise);
2. skip it if the mapping already holds something as new (out-of-order or repeated delivery);
3. find the Xero contact (mapping -> ContactNumber -> Ignition's xero_contact_id -> email -> name),
   in one Xero call for most clients, so a contact created just before a crash is found by its
   ContactNumber; e-mail and name are looked up ignoring case, the choice is made exactly by
   ``shared/matching.py``;
4. create or update it in Xero;
5. write the mapping with a conditional write, then the audit entry.

The invoice and payment syncs (``shared/invoices.py``, ``shared/payments.py``) follow the same steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from shared.config import ContactRules, IgnitionConfig, RecordType
from shared.contact_fields import changed_fields, client_to_contact
from shared.errors import PermanentSyncError
from shared.matching import ContactMatch, choose_contact, disambiguated_client_name
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient
from shared.models.xero import Contact
from shared.outcome import SyncOutcome
from shared.ports import IgnitionClientsPort, XeroContactsPort
from shared.record_sync import RecordSync, written_body
from shared.store.mappings import RecordMapping
from shared.xero.errors import XeroValidationError
from shared.xero.finders import ContactQuery, contact_query
from shared.xero.idempotency import idempotency_key
from shared.xero.rules import XeroNameTaken, raise_for_element

logger = logging.getLogger(__name__)


def contact_lookup(client: IgnitionClient, rules: ContactRules) -> ContactQuery:
    """What to ask Xero for: every contact ``choose_contact`` could pick for ``client`` (by
    ContactNumber, name, e-mail when the rules match by it, and Ignition's xero_contact_id)."""
    return contact_query(
        contact_number=client.slug,
        name=client.name,
        email=client.email if rules.match_by_email else None,
        contact_id=client.xero_contact_id,
    )


@dataclass(frozen=True)
class _Target:
    """What a contact write addresses: the contact (None: a new one), under which name, with which
    ContactNumber (None: left out, so Xero keeps the one it holds)."""

    contact_id: str | None
    name: str
    contact_number: str | None


@dataclass(kw_only=True, eq=False)
class ContactSync(RecordSync[XeroContactsPort, IgnitionClientsPort, ContactRules]):
    record_type = RecordType.CLIENT

    ignition_config: IgnitionConfig
    # The newest-state reads allow the skew the Ignition settings name.
    max_clock_skew: timedelta = field(init=False)

    def __post_init__(self) -> None:
        self.max_clock_skew = timedelta(seconds=self.ignition_config.max_clock_skew_seconds)

    def ensure(self, client_slug: str, event: SyncEvent) -> str:
        """The Xero ContactID for a client, syncing the client first when it has none yet (an
        invoice or payment can arrive before, or without, its client's own webhook)."""
        missing = PermanentSyncError(
            f"client {client_slug} is not in Ignition's Reporting API, so its contact cannot be made",
            category="missing_client",
        )
        return self._ensure(client_slug, event, self.ignition.get_client, self._apply, missing)

    def handle(self, event: SyncEvent) -> SyncOutcome:
        client = self._newest(event, IgnitionClient, self.ignition.get_client)
        if client is None:
            return self._skip(
                event, "skipped_missing", "client not found in Ignition's Reporting API; nothing to write"
            )
        mapping = self.store.get(RecordType.CLIENT, client.slug)
        if (stale := self._skip_written(event, client, mapping)) is not None:
            return stale
        if client.state in self.rules.skip_client_states:
            return self._skip_state(event, client, f"client state {client.state!r} is not synced")
        return self._apply(client, mapping, event)

    def _apply(self, client: IgnitionClient, mapping: RecordMapping | None, event: SyncEvent) -> SyncOutcome:
        if mapping is not None:
            match = ContactMatch(contact=None, method="mapping", name_taken_by_other=False, decisions=[])
            contact_id: str | None = mapping.xero_id
            # Set when the contact was made or linked; left as Xero holds it (the firm's own code
            # kept at the link must not become the slug on the next update).
            contact_number: str | None = None
        else:
            match = self._match(client)
            contact_id = match.contact.ContactID if match.contact else None
            contact_number = self._contact_number_for(client, match.contact, match.decisions)

        name = client.name
        if contact_id is None and match.name_taken_by_other:
            name = disambiguated_client_name(client, self.rules)
            match.decisions.append(
                f"name {client.name!r} belongs to another client's contact; using {name!r}"
            )
        if mapping is not None:
            if (unchanged := self._unchanged(event, client, mapping)) is not None:
                return unchanged
            mapping = self._writing(mapping)
        saved, sent = self._save(client, _Target(contact_id, name, contact_number), match)
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
        self._map(
            event,
            ignition_id=client.slug,
            xero_id=saved.ContactID,
            created_at=client.created_at,
            updated_at=client.updated_at,
            match_method=outcome.match_method or "created",
            previous=mapping,
            # As an update of this contact would send it (a create's body has no ContactID yet).
            written=self._update_written(client, saved.ContactID, sent.Name or name),
        )
        return self._record(event, outcome, client.updated_at, changed=changed_fields(match.contact, saved))

    # -- steps ---------------------------------------------------------------------------------

    def _unchanged(
        self, event: SyncEvent, client: IgnitionClient, mapping: RecordMapping
    ) -> SyncOutcome | None:
        """A skip when the update would send what our last write sent, under the client's name or
        the disambiguated one Xero made us use (``_save``); None: write."""
        for name in (client.name, disambiguated_client_name(client, self.rules)):
            written = self._update_written(client, mapping.xero_id, name)
            if (skipped := self._skip_unchanged(event, client, mapping, written)) is not None:
                return skipped
        return None

    def _update_written(self, client: IgnitionClient, contact_id: str, name: str) -> str:
        """The ``written_body`` of an update of ``contact_id`` (what a mapped client's write sends)."""
        unmatched = ContactMatch(contact=None, method="mapping", name_taken_by_other=False, decisions=[])
        return written_body(self._body(client, _Target(contact_id, name, None), unmatched))

    def _match(self, client: IgnitionClient) -> ContactMatch:
        """Find the Xero contact for a client that has no mapping yet: one Xero call, plus one per
        text that needs a searchTerm (a quote or backslash in the name, a very long e-mail)."""
        query = contact_lookup(client, self.rules)
        match = self._choose(client, self.xero.find_contact_candidates(query))
        if query.ignored_contact_id is not None:
            match.decisions.insert(
                0, f"ignored xero_contact_id {query.ignored_contact_id!r}: not a Xero ContactID"
            )
        return match

    def _choose(self, client: IgnitionClient, candidates: list[Contact]) -> ContactMatch:
        return choose_contact(
            client,
            candidates,
            rules=self.rules,
            slug_prefix=self.ignition_config.client_slug_prefix,
            owner_of=lambda contact_id: self.store.owner_of(RecordType.CLIENT, contact_id),
        )

    def _contact_number_for(
        self, client: IgnitionClient, matched: Contact | None, decisions: list[str]
    ) -> str:
        number = matched.ContactNumber if matched else None
        if number and number != client.slug:
            # The firm's own contact code: keep it, the mapping is our key.
            decisions.append(f"kept the contact's existing ContactNumber {number!r}")
            return number
        return client.slug

    def _body(self, client: IgnitionClient, target: _Target, match: ContactMatch) -> Contact:
        """The contact as the write sends it (the rules' decisions added to ``match``)."""
        contact_id, number = target.contact_id, target.contact_number
        contact, notes = client_to_contact(client, self.rules, name=target.name, contact_number=number)
        match.decisions.extend(n for n in notes if n not in match.decisions)
        updates: dict[str, object] = {} if number is not None else {"ContactNumber": None}
        if contact_id is not None:
            updates["ContactID"] = contact_id
        if match.contact is not None and match.contact.ContactStatus == "ARCHIVED":
            if self.rules.archived_contact == "fail":
                raise PermanentSyncError(
                    f"Xero contact {contact_id} is archived; unarchive it in Xero or set "
                    "contacts.archived_contact to 'reactivate', then replay",
                    category="archived_contact",
                )
            match.decisions.append("the Xero contact was archived; reactivated it")
        if contact_id is not None and self.rules.archived_contact == "reactivate":
            updates["ContactStatus"] = "ACTIVE"
        return contact.model_copy(update=updates)

    def _save(self, client: IgnitionClient, target: _Target, match: ContactMatch) -> tuple[Contact, Contact]:
        """Xero's answer, and the body it answered."""
        for attempt in range(2):
            contact = self._body(client, target, match)
            key = idempotency_key(
                client.slug, client.updated_at.isoformat(), contact.model_dump_json(exclude_none=True)
            )
            (saved,) = self.xero.save_contacts([contact], idempotency_key=key)
            try:
                raise_for_element(saved.ValidationErrors, "/Contacts")
            except XeroNameTaken:
                if attempt > 0:
                    raise self._rejected(client, saved) from None
                found = self._contact_holding_the_name(client, match) if target.contact_id is None else None
                if found is not None:
                    number = self._contact_number_for(client, found, match.decisions)
                    target = replace(target, contact_id=found.ContactID, contact_number=number)
                    continue
                name = disambiguated_client_name(client, self.rules)
                target = replace(target, name=name)
                match.decisions.append(f"Xero refused the name {client.name!r} as taken; using {name!r}")
                continue
            except XeroValidationError:
                raise self._rejected(client, saved) from None
            return saved, contact
        raise AssertionError("unreachable")

    @staticmethod
    def _rejected(client: IgnitionClient, saved: Contact) -> PermanentSyncError:
        errors = [e.Message for e in saved.ValidationErrors or []]
        return PermanentSyncError(
            f"Xero rejected contact for {client.slug}: {'; '.join(errors)}", category="xero_validation"
        )

    def _contact_holding_the_name(self, client: IgnitionClient, match: ContactMatch) -> Contact | None:
        """Xero refused a new contact's name as taken, yet the lookup saw no contact to link: Xero's
        uniqueness folds case more widely than ``ToLower()`` (``STRASSE`` and ``Straße``;
        freakboy3742/pyxero#172). Search the name as text and choose again, so the client links
        to that contact instead of becoming ``"<name> (<slug>)"`` beside it."""
        again = self._choose(client, self.xero.find_contacts_by_name_text(client.name))
        if again.contact is None:
            return None
        match.contact, match.method = again.contact, again.method
        match.decisions.extend(again.decisions)
        match.decisions.append(
            f"Xero refused the name {client.name!r} as taken; a search by name found Xero contact "
            f"{again.contact.ContactID}: linked to it"
        )
        return again.contact
