from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import ContactRules, IgnitionConfig, RecordType
from shared.contacts import ContactSync
from shared.errors import PermanentSyncError
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient
from shared.models.xero import Contact
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, InMemoryXeroContacts
from tests.sync_events import sync_event

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def client_record(slug: str = "cli_1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "slug": slug,
        "name": "Acme Pty Ltd",
        "email": "accounts@acme.test",
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    record.update(overrides)
    return record


def event_for(record: dict[str, Any] | None, slug: str = "cli_1", event_id: str = "evt_1") -> SyncEvent:
    return sync_event(slug, record, event_id=event_id, at=T0)


def make_sync(
    xero: InMemoryXeroContacts | None = None,
    store: InMemoryMappingStore | None = None,
    ignition: InMemoryIgnition | None = None,
    rules: ContactRules | None = None,
) -> tuple[ContactSync, InMemoryXeroContacts, InMemoryMappingStore]:
    xero = xero or InMemoryXeroContacts()
    store = store or InMemoryMappingStore()
    sync = ContactSync(
        xero=xero,
        ignition=ignition or InMemoryIgnition(),
        store=store,
        rules=rules or ContactRules(),
        ignition_config=IgnitionConfig(),
        now=lambda: T0,
    )
    return sync, xero, store


def test_given_new_client_when_synced_then_one_contact_is_created_and_mapped_in_two_xero_calls() -> None:
    sync, xero, store = make_sync()

    outcome = sync.handle(event_for(client_record()))

    assert outcome.action == "created"
    (contact,) = xero.active()
    assert contact.ContactNumber == "cli_1" and contact.Name == "Acme Pty Ltd"
    mapping = store.get(RecordType.CLIENT, "cli_1")
    assert mapping is not None and mapping.xero_id == contact.ContactID
    assert xero.calls == 2
    assert store.audits[-1].action == "created"


def test_given_same_event_three_times_when_synced_then_one_contact_and_no_further_xero_calls() -> None:
    sync, xero, _ = make_sync()
    for _ in range(3):
        sync.handle(event_for(client_record()))

    assert len(xero.contacts) == 1
    assert xero.calls == 2


def test_given_newer_update_applied_when_older_update_arrives_then_it_is_skipped_as_stale() -> None:
    sync, xero, _ = make_sync()
    sync.handle(
        event_for(
            client_record(name="Acme New", updated_at=(T0 + timedelta(hours=1)).isoformat()), event_id="e2"
        )
    )

    outcome = sync.handle(event_for(client_record(name="Acme Old"), event_id="e1"))

    assert outcome.action == "skipped_stale"
    (contact,) = xero.active()
    assert contact.Name == "Acme New"


def test_given_existing_xero_contact_with_same_email_when_synced_then_it_is_linked_not_duplicated() -> None:
    existing = Contact(Name="ACME PTY LIMITED", EmailAddress="Accounts@Acme.test")
    sync, xero, _ = make_sync(xero=InMemoryXeroContacts([existing]))

    outcome = sync.handle(event_for(client_record()))

    assert outcome.action == "updated" and outcome.match_method == "email"
    (contact,) = xero.active()
    assert contact.ContactNumber == "cli_1"


def test_given_contact_created_before_a_crash_when_redelivered_then_found_by_contact_number() -> None:
    # The contact exists in Xero (created, then the worker died before writing the mapping).
    orphan = Contact(Name="Acme Pty Ltd", ContactNumber="cli_1", EmailAddress="other@acme.test")
    sync, xero, _ = make_sync(xero=InMemoryXeroContacts([orphan]))

    outcome = sync.handle(event_for(client_record()))

    assert outcome.match_method == "contact_number"
    assert len(xero.contacts) == 1


def test_given_two_clients_with_one_name_when_both_synced_then_two_contacts_with_distinct_names() -> None:
    sync, xero, _ = make_sync()
    sync.handle(
        event_for(client_record("cli_a", email="a@x.test", name="Smith & Co"), slug="cli_a", event_id="a")
    )

    outcome = sync.handle(
        event_for(client_record("cli_b", email="b@x.test", name="Smith & Co"), slug="cli_b", event_id="b")
    )

    assert outcome.action == "created"
    names = sorted(c.Name or "" for c in xero.active())
    assert names == ["Smith & Co", "Smith & Co (cli_b)"]
    assert any("belongs to another client" in d for d in outcome.decisions)


def test_given_firms_own_contact_code_when_matched_by_name_then_code_is_kept() -> None:
    existing = Contact(Name="Acme Pty Ltd", ContactNumber="C-0042")
    sync, xero, _ = make_sync(xero=InMemoryXeroContacts([existing]), rules=ContactRules(match_by_email=False))

    outcome = sync.handle(event_for(client_record()))

    assert outcome.match_method == "name"
    (contact,) = xero.active()
    assert contact.ContactNumber == "C-0042"


def test_given_two_contacts_share_email_and_no_name_matches_when_synced_then_permanent_error() -> None:
    contacts = [
        Contact(Name="One", EmailAddress="accounts@acme.test"),
        Contact(Name="Two", EmailAddress="accounts@acme.test"),
    ]
    sync, xero, store = make_sync(xero=InMemoryXeroContacts(contacts))

    with pytest.raises(PermanentSyncError, match="share the email") as raised:
        sync.handle(event_for(client_record()))

    assert raised.value.category == "ambiguous_match"
    assert len(xero.contacts) == 2
    assert store.get(RecordType.CLIENT, "cli_1") is None


def test_given_mapped_contact_archived_in_xero_when_updated_then_it_is_reactivated() -> None:
    sync, xero, _ = make_sync()
    sync.handle(event_for(client_record()))
    (contact,) = xero.contacts.values()
    assert contact.ContactID is not None
    xero.contacts[contact.ContactID] = contact.model_copy(update={"ContactStatus": "ARCHIVED"})

    sync.handle(
        event_for(
            client_record(email="new@acme.test", updated_at=(T0 + timedelta(minutes=5)).isoformat()),
            event_id="e2",
        )
    )

    (updated,) = xero.contacts.values()
    assert updated.ContactStatus == "ACTIVE" and updated.EmailAddress == "new@acme.test"


def test_given_hint_without_record_when_synced_then_newest_state_is_read_from_ignition() -> None:
    ignition = InMemoryIgnition([IgnitionClient.model_validate(client_record(name="From API"))])
    sync, xero, _ = make_sync(ignition=ignition)

    sync.handle(event_for({"slug": "cli_1"}))

    assert ignition.calls == 1
    assert [c.Name for c in xero.active()] == ["From API"]


def test_given_client_deleted_in_ignition_when_hint_arrives_then_nothing_is_written() -> None:
    sync, xero, store = make_sync()
    outcome = sync.handle(event_for(None))
    assert outcome.action == "skipped_missing"
    assert xero.contacts == {}
    assert store.audits[-1].action == "skipped_missing"


def test_given_lead_state_skipped_by_rule_when_synced_then_no_contact() -> None:
    sync, xero, _ = make_sync(rules=ContactRules(skip_client_states=["lead"]))
    outcome = sync.handle(event_for(client_record(state="lead")))
    assert outcome.action == "skipped_state"
    assert xero.contacts == {}
