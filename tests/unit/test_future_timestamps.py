"""A record dated in the future is capped at its receipt plus the allowed clock skew, so the
"skip what is not newer than the mapping" rule cannot freeze it until that date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import ContactRules, IgnitionConfig, RecordType
from shared.contacts import ContactSync
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, InMemoryXeroContacts
from tests.sync_events import sync_event

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
FAR_FUTURE = datetime(2036, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def record(name: str, updated_at: datetime) -> dict[str, Any]:
    return {
        "slug": "cli_1",
        "name": name,
        "email": "accounts@acme.test",
        "created_at": T0.isoformat(),
        "updated_at": updated_at.isoformat(),
    }


def event(payload: dict[str, Any] | None, received_at: datetime, event_id: str) -> SyncEvent:
    return sync_event("cli_1", payload, event_id=event_id, at=received_at)


def contact_sync(
    clock: Clock, ignition: InMemoryIgnition | None = None, skew_seconds: int = 300
) -> tuple[ContactSync, InMemoryXeroContacts, InMemoryMappingStore]:
    xero, store = InMemoryXeroContacts(), InMemoryMappingStore()
    sync = ContactSync(
        xero=xero,
        ignition=ignition or InMemoryIgnition(),
        store=store,
        rules=ContactRules(),
        ignition_config=IgnitionConfig(max_clock_skew_seconds=skew_seconds),
        now=clock,
    )
    return sync, xero, store


def test_given_a_payload_dated_years_ahead_when_synced_then_capped_and_a_later_update_still_applies() -> None:
    # Given a client whose webhook payload says it was updated in 2036, received at T0,
    clock = Clock()
    sync, xero, store = contact_sync(clock)
    first = sync.handle(event(record("Acme Pty Ltd", FAR_FUTURE), T0, "evt_1"))
    mapping = store.get(RecordType.CLIENT, "cli_1")
    assert first.action == "created" and mapping is not None
    # ... the mapping keeps the receipt time plus the 5-minute skew, not 2036,
    assert mapping.ignition_updated_at == T0 + timedelta(minutes=5)

    # When a genuine update (renamed, correctly dated) arrives an hour later,
    clock.at = T0 + timedelta(hours=1)
    later = sync.handle(event(record("Acme Holdings", clock.at), clock.at, "evt_2"))

    # Then it is applied, not skipped as stale behind the 2036 date.
    assert later.action == "updated"
    (contact,) = xero.active()
    assert contact.Name == "Acme Holdings"
    mapping = store.get(RecordType.CLIENT, "cli_1")
    assert mapping is not None and mapping.ignition_updated_at == clock.at


def test_given_a_reporting_api_record_dated_ahead_when_read_for_a_hint_then_capped_at_the_read_time() -> None:
    # Given a hint-only webhook and Ignition's API answering with a record dated in 2036, read at T0+1h,
    clock = Clock()
    clock.at = T0 + timedelta(hours=1)
    ignition = InMemoryIgnition([IgnitionClient.model_validate(record("Acme Pty Ltd", FAR_FUTURE))])
    sync, _, store = contact_sync(clock, ignition, skew_seconds=60)

    # When it is synced with a configured skew of one minute,
    sync.handle(event(None, T0, "evt_1"))

    # Then the written updated_at is the time it was read plus that minute.
    mapping = store.get(RecordType.CLIENT, "cli_1")
    assert mapping is not None and mapping.ignition_updated_at == clock.at + timedelta(minutes=1)


def test_given_a_clock_a_little_ahead_within_the_skew_when_synced_then_the_timestamp_is_kept() -> None:
    # Given a payload dated two minutes after its receipt (within the 5-minute skew),
    clock = Clock()
    sync, _, store = contact_sync(clock)

    # When it is synced,
    sync.handle(event(record("Acme Pty Ltd", T0 + timedelta(minutes=2)), T0, "evt_1"))

    # Then Ignition's own timestamp is written unchanged.
    mapping = store.get(RecordType.CLIENT, "cli_1")
    assert mapping is not None and mapping.ignition_updated_at == T0 + timedelta(minutes=2)
