"""Backfill, first phase: every Ignition client linked to the Xero contact that is already its own
(by ContactNumber, xero_contact_id, e-mail or name, with the live sync's ``choose_contact``), or
the contact created; a second client with a taken name gets the live sync's disambiguated name."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from shared.backfill import batch
from shared.backfill.results import Failure
from shared.config import RecordType
from shared.contact_fields import client_to_contact
from shared.errors import PermanentSyncError
from shared.matching import choose_contact, disambiguated_client_name
from shared.models.ignition import IgnitionClient
from shared.models.xero import Contact
from shared.store.checkpoints import PhaseCounts
from shared.store.mappings import RecordMapping
from shared.xero.rules import XeroNameTaken, refusal


def _fold(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


class _ContactIndex:
    """Every Xero contact, read once, by each key a client can match it on."""

    def __init__(self, contacts: Iterable[Contact]) -> None:
        self.by_number: dict[str, list[Contact]] = defaultdict(list)
        self.by_email: dict[str, list[Contact]] = defaultdict(list)
        self.by_name: dict[str, list[Contact]] = defaultdict(list)
        self.by_id: dict[str, Contact] = {}
        self.name_holder: dict[str, str] = {}  # folded name of an ACTIVE contact -> ContactID
        for contact in contacts:
            if not contact.ContactID:
                continue
            self.by_id[contact.ContactID.lower()] = contact
            if contact.ContactNumber:
                self.by_number[contact.ContactNumber].append(contact)
            if email := _fold(contact.EmailAddress):
                self.by_email[email].append(contact)
            if name := _fold(contact.Name):
                self.by_name[name].append(contact)
                if contact.ContactStatus in (None, "ACTIVE"):
                    self.name_holder.setdefault(name, contact.ContactID)

    def candidates(self, client: IgnitionClient, *, match_by_email: bool) -> list[Contact]:
        """The contacts sharing the client's ContactNumber, xero_contact_id, e-mail or name."""
        candidates: dict[str, Contact] = {}
        for found in (
            self.by_number.get(client.slug, []),
            [self.by_id[x] for x in [(client.xero_contact_id or "").lower()] if x in self.by_id],
            self.by_email.get(_fold(client.email) or "", []) if match_by_email else [],
            self.by_name.get(_fold(client.name) or "", []),
        ):
            for contact in found:
                candidates[contact.ContactID or ""] = contact
        return list(candidates.values())


class ContactsPhase(batch.BackfillPhase[IgnitionClient]):
    name = "contacts"

    def __init__(self, run: batch.BackfillRun) -> None:
        super().__init__(run)
        self._rules = run.config.contacts
        self._owners: dict[str, str] = {}  # mapped before this pass: ContactID -> slug
        self._claimed: dict[str, str] = {}  # decided in this pass: ContactID -> slug

    def _pending(self, counts: PhaseCounts) -> list[IgnitionClient]:
        skip = self._rules.skip_client_states
        return self._run.unmapped(
            counts, RecordType.CLIENT, self._run.ignition.iter_clients(), lambda c: c.state in skip
        )

    def _sync(self, pending: list[IgnitionClient], counts: PhaseCounts) -> None:
        xero = self._run.xero
        contacts = self._run.read(
            lambda: xero.iter_contacts(page_size=batch.XERO_PAGE_SIZE, include_archived=True)
        )
        index = _ContactIndex(contacts)
        self._owners = self._run.mappings.owners(
            RecordType.CLIENT, [c.ContactID for c in contacts if c.ContactID]
        )
        writes = [write for client in pending if (write := self._decide(client, index, counts)) is not None]

        creates = sum(1 for w in writes if w.method == "created")
        self._run.planned["contacts"] = {"create": creates, "update": len(writes) - creates}
        if self._run.dry_run:
            for write in writes:
                self._run.would_map[RecordType.CLIENT][write.ignition_id] = (
                    write.body.ContactID or f"{batch.PLANNED_ID_PREFIX}{write.ignition_id}"
                )
            counts.created += creates
            counts.linked += len(writes) - creates
            return
        self._run.write_batches(writes, self._save, self._settle, counts, batches_left_from_queue=True)

    def _owner_of(self, contact_id: str) -> str | None:
        return self._claimed.get(contact_id) or self._owners.get(contact_id)

    def _decide(
        self, client: IgnitionClient, index: _ContactIndex, counts: PhaseCounts
    ) -> batch.Write | None:
        """The write for one client; None when it is linked without one, or failed."""
        try:
            match = choose_contact(
                client,
                index.candidates(client, match_by_email=self._rules.match_by_email),
                rules=self._rules,
                slug_prefix=self._run.config.ignition.client_slug_prefix,
                owner_of=self._owner_of,
            )
            chosen = match.contact.ContactID if match.contact else None
            if chosen is not None and chosen in self._claimed:
                raise PermanentSyncError(
                    f"Xero contact {chosen} also matches {self._claimed[chosen]}",
                    category="ambiguous_match",
                )
            write = self._contact_write(client, match.contact, match.method, match.name_taken_by_other)
        except PermanentSyncError as exc:
            self._run.fail(Failure(RecordType.CLIENT, client.slug, exc.category, str(exc)), counts)
            return None
        if write.body is None:  # linked without a write (update_linked off): mapping only
            contact_id = write.extra["contact_id"]
            self._run.link(self._mapping(client, contact_id, write.method), counts)
            self._claimed[contact_id] = client.slug
            return None
        contact_id = write.body.ContactID
        holder = index.name_holder.get(_fold(write.body.Name) or "")
        if holder is not None and holder != contact_id:
            second_name = disambiguated_client_name(client, self._rules)
            write.body = write.body.model_copy(update={"Name": second_name})
        index.name_holder[_fold(write.body.Name) or ""] = contact_id or f"new:{client.slug}"
        if contact_id:
            self._claimed[contact_id] = client.slug
        return write

    def _contact_write(
        self, client: IgnitionClient, matched: Contact | None, method: str, name_taken: bool
    ) -> batch.Write:
        rules = self._rules
        if matched is None:
            name = disambiguated_client_name(client, rules) if name_taken else client.name
            body, _ = client_to_contact(client, rules, name=name, contact_number=client.slug)
            return batch.Write(client.slug, body, "created", client=client)
        assert matched.ContactID is not None
        if matched.ContactStatus == "ARCHIVED" and rules.archived_contact == "fail":
            raise PermanentSyncError(
                f"Xero contact {matched.ContactID} is archived; unarchive it in Xero or set "
                "contacts.archived_contact to 'reactivate', then run the backfill again",
                category="archived_contact",
            )
        if not self._run.options.update_linked and matched.ContactStatus in (None, "ACTIVE"):
            return batch.Write(
                client.slug, None, method, client=client, extra={"contact_id": matched.ContactID}
            )
        number = matched.ContactNumber if matched.ContactNumber else client.slug
        body, _ = client_to_contact(client, rules, name=client.name, contact_number=number)
        update: dict[str, Any] = {"ContactID": matched.ContactID}
        if rules.archived_contact == "reactivate":
            update["ContactStatus"] = "ACTIVE"
        return batch.Write(client.slug, body.model_copy(update=update), method, client=client)

    def _save(self, bodies: list[Contact], key: str) -> list[Contact]:
        return self._run.xero.save_contacts(bodies, idempotency_key=key)

    def _settle(self, write: batch.Write, saved: Contact) -> batch.Settled:
        errors = [e.Message for e in saved.ValidationErrors or []]
        if errors and write.attempt == 0 and isinstance(refusal(errors), XeroNameTaken):
            # Another client's contact took the name meanwhile: send it again with the second name.
            assert write.client is not None
            write.attempt = 1
            second_name = disambiguated_client_name(write.client, self._rules)
            write.body = write.body.model_copy(update={"Name": second_name})
            return batch.AGAIN
        if errors:
            return Failure(RecordType.CLIENT, write.ignition_id, "xero_validation", "; ".join(errors))
        assert saved.ContactID is not None and write.client is not None
        return self._mapping(write.client, saved.ContactID, write.method)

    def _mapping(self, client: IgnitionClient, contact_id: str, method: str) -> RecordMapping:
        return self._run.mapping(
            RecordType.CLIENT, client.slug, contact_id, method, client.created_at, client.updated_at
        )
