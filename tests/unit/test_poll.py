"""The Reporting API poller: cursor, overlap, terminal-state cadence, lease and event identity.

The Ignition side is the emulator behind the real Reporting API client (so request counts and the
hiding of terminal states are real); queue, cursor store and lease are in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import ContactRules, IgnitionConfig, PollRules, RecordType
from shared.contacts import ContactSync
from shared.ignition import exact_json
from shared.ignition.reporting import IgnitionReportingClient, Passes
from shared.ignition.webhook import parse_webhook, to_sync_event
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.poll import PollState
from shared.poll import Poller, poll_event, poll_event_id
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, InMemoryXeroContacts
from tests.ignition_double import EmulatedIgnition

BASE = "http://ignition.test/external/api/v1"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def client_record(slug: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"slug": slug, "name": f"Client {slug}", "created_at": iso(at), "updated_at": iso(at), **extra}


def invoice_record(slug: str, client: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "reference_number": f"IGN-{slug}",
        "state": "awaiting_payment",
        "client": {"slug": client},
        "amount": {"total": "110.00", "currency": "AUD"},
        "date": at.date().isoformat(),
        "due_date": (at.date() + timedelta(days=14)).isoformat(),
        "items": [
            {
                "description": "Advice",
                "quantity": "1",
                "unit_price": {"amount": "100.00", "currency": "AUD"},
                "tax_rate": "10",
            }
        ],
        "created_at": iso(at),
        "updated_at": iso(at),
        **extra,
    }


class Queue:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def send(self, event: SyncEvent) -> None:
        self.events.append(event)


class State:
    def __init__(self) -> None:
        self.saved: PollState | None = None

    def load(self) -> PollState | None:
        return None if self.saved is None else self.saved.model_copy(deep=True)

    def save(self, state: PollState) -> None:
        self.saved = state.model_copy(deep=True)


class Lease:
    def __init__(self, held_by_other: bool = False) -> None:
        self.held_by_other = held_by_other
        self.held = False

    def try_acquire(self) -> bool:
        if self.held_by_other:
            return False
        self.held = True
        return True

    def release(self) -> None:
        self.held = False


class World(EmulatedIgnition):
    """An Ignition emulator, the real Reporting API client on it, and a poller with in-memory state."""

    def __init__(self, rules: PollRules | None = None) -> None:
        super().__init__(at=T0)
        self.ignition = IgnitionReportingClient(
            BASE, lambda: self.token, http=self.http, clock=self.clock.time
        )
        self.queue = Queue()
        self.state = State()
        self.lease = Lease()
        self.poller = Poller(
            ignition=self.ignition,
            queue=self.queue,
            state=self.state,
            lease=self.lease,
            rules=rules or PollRules(overlap_seconds=300, terminal_every_runs=5),
            now=self.clock.now,
        )

    def run(self) -> tuple[list[SyncEvent], int]:
        """One run: the events it queued and the Ignition requests it made."""
        before_events, before_requests = len(self.queue.events), len(self.requests)
        self.poller.run()
        return self.queue.events[before_events:], len(self.requests) - before_requests


@pytest.fixture
def world() -> World:
    return World()


def test_given_nothing_changed_when_a_run_is_not_a_terminal_state_run_then_it_costs_one_request_per_resource(
    world: World,
) -> None:
    world.put("clients", client_record("cli_a", T0 - timedelta(minutes=5)))
    first, _ = world.run()  # run 0 also reads the terminal states
    assert [e.record_id for e in first] == ["cli_a"]

    world.clock.advance(120)
    events, requests = world.run()

    assert events == []
    assert requests == 3


def test_given_a_changed_client_when_polled_then_one_event_with_the_change_as_its_identity(
    world: World,
) -> None:
    changed = T0 - timedelta(minutes=1)
    world.put("clients", client_record("cli_a", changed, email="a@example.test"))

    events, _ = world.run()

    assert len(events) == 1
    event = events[0]
    assert event.event_id == f"poll:client:cli_a@{iso(changed)}"
    assert (event.source, event.record_type, event.group_id) == ("poll", RecordType.CLIENT, "cli_a")
    assert event.record is not None and event.record["email"] == "a@example.test"
    # Nothing the emulator did not send is invented (e.g. the model's default state).
    assert "state" not in event.record


def test_given_a_client_already_queued_when_the_overlap_reads_it_again_then_it_is_not_queued_again(
    world: World,
) -> None:
    world.put("clients", client_record("cli_a", T0 - timedelta(minutes=1)))
    world.run()
    for _ in range(6):  # six runs, one of them reading the terminal states
        world.clock.advance(60)
        events, _ = world.run()
        assert events == []


def test_given_a_client_changed_again_when_polled_then_the_new_version_is_queued_under_a_new_id(
    world: World,
) -> None:
    world.put("clients", client_record("cli_a", T0 - timedelta(minutes=2)))
    (first,), _ = world.run()
    world.clock.advance(60)
    world.put("clients", {**client_record("cli_a", T0 - timedelta(minutes=2)), "updated_at": iso(T0)})

    (second,), _ = world.run()

    assert second.event_id != first.event_id
    assert second.payload_sha256 != first.payload_sha256
    assert second.occurred_at == T0


def test_given_a_record_saved_late_with_an_earlier_timestamp_when_within_the_overlap_then_it_is_queued(
    world: World,
) -> None:
    world.put("clients", client_record("cli_new", T0))
    world.run()
    # Saved after the run read, stamped 3 minutes before the newest change it saw (overlap 5).
    world.put("clients", client_record("cli_late", T0 - timedelta(minutes=3)))
    world.clock.advance(60)

    events, _ = world.run()

    assert [e.record_id for e in events] == ["cli_late"]


def test_given_an_invoice_when_polled_then_its_group_is_the_webhooks_for_the_same_record(
    world: World,
) -> None:
    record = invoice_record("inv_1", "cli_a", T0 - timedelta(minutes=1))
    world.put("invoices", record)

    (event,), _ = world.run()

    envelope = parse_webhook(
        exact_json.dumps(
            {"id": "evt_1", "type": "invoice.created", "occurred_at": iso(T0), "data": record}
        ).encode(),
        IgnitionConfig(),
    )
    webhook = to_sync_event(
        envelope,
        config=IgnitionConfig(),
        received_at=T0,
        payload_sha256="0" * 64,
        archive_key=None,
        correlation_id="r",
    )
    assert event.group_id == webhook.group_id == "cli_a"
    assert event.event_type == "invoice.created"
    assert IgnitionInvoice.model_validate(event.record) == IgnitionInvoice.model_validate(webhook.record)


def test_given_an_invoice_voided_when_polled_then_it_arrives_on_the_next_terminal_state_run_only(
    world: World,
) -> None:
    world.put("invoices", invoice_record("inv_1", "cli_a", T0 - timedelta(minutes=1)))
    world.run()  # run 0: reads terminal states too
    world.clock.advance(60)
    world.put("invoices", invoice_record("inv_1", "cli_a", world.clock.now(), state="void"))

    seen_on: list[int] = []
    requests_by_run: list[int] = []
    for run in range(1, 6):
        events, requests = world.run()
        requests_by_run.append(requests)
        if events:
            seen_on.append(run)
            assert events[0].record is not None and events[0].record["state"] == "void"
        world.clock.advance(60)

    # Runs 1-4 read only the default listings (the void one is hidden there); run 5 reads them all.
    assert seen_on == [5]
    # Terminal-state runs add one request per terminal state (1 client + 3 invoice + 1 payment).
    assert requests_by_run == [3, 3, 3, 3, 8]


def test_given_another_run_holds_the_lease_when_the_schedule_fires_then_the_run_reads_nothing(
    world: World,
) -> None:
    world.put("clients", client_record("cli_a", T0))
    world.lease.held_by_other = True

    result = world.poller.run()

    assert result.status == "skipped"
    assert world.requests == [] and world.queue.events == []


def test_given_more_changes_than_a_run_may_queue_when_polled_then_the_next_run_goes_on_from_there() -> None:
    world = World(PollRules(max_records_per_run=4))
    for n in range(10):
        world.put("clients", client_record(f"cli_{n:02d}", T0 - timedelta(minutes=30 - n)))

    first = world.poller.run()
    world.clock.advance(60)
    second = world.poller.run()
    world.clock.advance(60)
    world.poller.run()

    assert (first.status, first.queued, second.queued) == ("partial", 4, 4)
    assert sorted(e.record_id for e in world.queue.events) == [f"cli_{n:02d}" for n in range(10)]
    assert len({e.event_id for e in world.queue.events}) == 10


class FailingAfter:
    """A listing that fails (Ignition unreachable) after ``count`` clients."""

    def __init__(self, inner: IgnitionReportingClient, count: int) -> None:
        self._inner = inner
        self._count = count

    def iter_clients(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionClient]:
        for n, client in enumerate(self._inner.iter_clients(updated_from, passes=passes)):
            if n >= self._count:
                raise RuntimeError("connection reset")
            yield client

    def iter_invoices(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionInvoice]:
        return self._inner.iter_invoices(updated_from, passes=passes)

    def iter_payments(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionPayment]:
        return self._inner.iter_payments(updated_from, passes=passes)


def test_given_a_listing_fails_part_way_when_the_next_run_reads_then_what_was_queued_is_not_queued_again(
    world: World,
) -> None:
    for n in range(3):
        world.put("clients", client_record(f"cli_{n}", T0 - timedelta(minutes=10 - n)))
    failing = Poller(
        ignition=FailingAfter(world.ignition, 2),
        queue=world.queue,
        state=world.state,
        lease=world.lease,
        rules=PollRules(),
        now=world.clock.now,
    )
    with pytest.raises(RuntimeError):
        failing.run()
    assert not world.lease.held

    world.clock.advance(60)
    world.run()

    assert [e.record_id for e in world.queue.events] == ["cli_0", "cli_1", "cli_2"]


def test_given_an_event_id_for_a_very_long_slug_when_made_then_it_fits_and_depends_on_the_change_only() -> (
    None
):
    slug = "cli_" + "x" * 96
    first = poll_event_id(RecordType.CLIENT, slug, T0)
    assert len(first) <= 128
    assert first == poll_event_id(RecordType.CLIENT, slug, T0)
    assert first != poll_event_id(RecordType.CLIENT, slug, T0 + timedelta(seconds=1))


def test_given_a_change_seen_by_webhook_and_poll_when_both_are_applied_then_xero_is_written_once() -> None:
    client = IgnitionClient.model_validate(client_record("cli_a", T0, email="a@example.test"))
    webhook_event = to_sync_event(
        parse_webhook(
            exact_json.dumps(
                {
                    "id": "evt_x",
                    "type": "client.created",
                    "occurred_at": iso(T0),
                    "data": client_record("cli_a", T0, email="a@example.test"),
                }
            ).encode(),
            IgnitionConfig(),
        ),
        config=IgnitionConfig(),
        received_at=T0,
        payload_sha256="1" * 64,
        archive_key=None,
        correlation_id="r",
    )
    polled = poll_event(RecordType.CLIENT, client, received_at=T0, correlation_id="run")
    xero = InMemoryXeroContacts()
    sync = ContactSync(
        xero=xero,
        ignition=InMemoryIgnition(),
        store=InMemoryMappingStore(),
        rules=ContactRules(),
        ignition_config=IgnitionConfig(),
    )

    first = sync.handle(webhook_event)
    calls_after_first = xero.calls
    second = sync.handle(polled)

    assert first.action == "created"
    assert second.action == "skipped_stale"
    assert xero.calls == calls_after_first
    assert len(xero.active()) == 1
