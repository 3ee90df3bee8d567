"""The sync's gathered batches (shared/collector.py, shared/gather.py) on the real use cases, the
real Xero client on the emulator in-process (tests/xero_double.py) and in-memory mappings and
Ignition (tests/fakes.py): one Xero call per kind for the whole batch, each element's result back
to its own event, each group in order, and nothing written twice."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from shared.collector import GatheredBatch
from shared.config import (
    ContactRules,
    IgnitionConfig,
    InvoiceRules,
    PaymentRules,
    RecordType,
    RetryRules,
    XeroConfig,
)
from shared.contacts import ContactSync
from shared.delivery import DeliveryPolicy, QueuedMessage, SyncDelivery
from shared.gather import CallGather, GatheredXero
from shared.invoices import InvoiceSync
from shared.models.events import SyncEvent
from shared.oauth import InMemoryTokenStore
from shared.payments import PaymentSync
from shared.wiring import SyncService
from tests import ignition_records
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, ManualClock
from tests.sync_events import sync_event
from tests.unit.test_delivery_policy import InMemoryLedger
from tests.xero_double import XeroDouble

T0 = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
WRITES = ("POST /api.xro/2.0/Contacts", "PUT /api.xro/2.0/Invoices", "PUT /api.xro/2.0/Payments")


class Log:
    def append_keys(self, **keys: object) -> None:
        pass

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        logging.getLogger(__name__).info(msg)

    warning = error = info


class Queue:
    """The sync queue as the collector sees it: ready messages, and what was deleted or delayed."""

    def __init__(self, ready: Sequence[QueuedMessage] = ()) -> None:
        self.ready = list(ready)
        self.deleted: list[str] = []
        self.delayed: dict[str, int] = {}

    def receive(self, max_messages: int, wait_seconds: int) -> list[QueuedMessage]:
        taken, self.ready = self.ready[: min(max_messages, 10)], self.ready[min(max_messages, 10) :]
        return taken

    def delete(self, messages: Sequence[QueuedMessage]) -> None:
        self.deleted += [m.message_id for m in messages]

    def delay(self, receipt_handle: str, seconds: int) -> bool:
        self.delayed[receipt_handle] = seconds
        return True


class DeadLetters:
    def __init__(self) -> None:
        self.parked: list[dict[str, str]] = []

    def send(self, body: str, *, group_id: str, dedup_id: str, category: str, reason: str) -> None:
        self.parked.append(
            {
                "record_id": SyncEvent.model_validate_json(body).record_id,
                "category": category,
                "reason": reason,
            }
        )


class World:
    def __init__(self) -> None:
        self.xero = XeroDouble(ManualClock(T0.timestamp()))
        client = self.xero.client(self.xero.refreshing_tokens(InMemoryTokenStore(self.xero.token_set())))
        self.gather = CallGather(max_wait_seconds=10)
        xero = GatheredXero(client, self.gather)
        self.ignition = InMemoryIgnition()
        self.store = InMemoryMappingStore()
        now = self.xero.clock.now
        contacts = ContactSync(
            xero=xero,
            ignition=self.ignition,
            store=self.store,
            rules=ContactRules(),
            ignition_config=IgnitionConfig(),
            now=now,
        )
        common: dict[str, Any] = {
            "xero": xero,
            "ignition": self.ignition,
            "store": self.store,
            "unit": "major",
            "history_notes": XeroConfig().history_notes,  # as deployed
        }
        invoices = InvoiceSync(contacts=contacts, rules=InvoiceRules(), now=now, **common)
        payments = PaymentSync(invoices=invoices, rules=PaymentRules(), now=now, **common)
        self.service = SyncService(contacts=contacts, invoices=invoices, payments=payments)
        self.dead = DeadLetters()
        self.queue = Queue()
        self.delivery = SyncDelivery(
            policy=DeliveryPolicy(InMemoryLedger(), RetryRules()),
            apply=lambda event: asdict(self.service.apply(event)),
            dead_letters=self.dead,
            queue=self.queue,
            count=lambda metric: None,
            log=Log(),
        )
        self._sent = 0

    def message(
        self, record_type: RecordType, record: dict[str, Any], group: str, receives: int = 1
    ) -> QueuedMessage:
        self._sent += 1
        slug = record["slug"]
        event = sync_event(
            slug, record, record_type=record_type, event_id=f"evt_{slug}", at=T0, group_id=group
        )
        return QueuedMessage(f"m{self._sent}", event.model_dump_json(), f"r{self._sent}", receives, group)

    def run(self, own: Sequence[QueuedMessage], collected: Sequence[QueuedMessage] = ()) -> dict[str, Any]:
        """One invocation: ``own`` from the event source, ``collected`` ready in the queue."""
        self.queue.ready = list(collected)
        records = [
            {
                "messageId": m.message_id,
                "body": m.body,
                "receiptHandle": m.receipt_handle,
                "attributes": {"ApproximateReceiveCount": str(m.receives), "MessageGroupId": m.group_id},
            }
            for m in own
        ]
        batch = GatheredBatch(self.delivery, self.gather, self.queue)
        return batch.handle({"Records": records})

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.xero.api_requests()]


def client(slug: str, **fields: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": f"Client {slug}",
        "email": f"{slug}@firm.test",
        "state": "active",
        "created_at": "2026-11-01T08:00:00Z",
        "updated_at": "2026-11-01T08:00:00Z",
        **fields,
    }


def billed(world: World, slug: str) -> list[QueuedMessage]:
    """A client's group: the client, an invoice of 110.00 and a payment of 50.00 on it, in order."""
    invoice = ignition_records.invoice(
        f"inv_{slug}",
        slug,
        [ignition_records.line("100.00")],
        "110.00",
        updated_at=ignition_records.INVOICED_AT,
    )
    paid = ignition_records.payment(f"pay_{slug}", slug, "50.00", f"inv_{slug}")
    return [
        world.message(RecordType.CLIENT, client(slug), slug),
        world.message(RecordType.INVOICE, invoice, slug),
        world.message(RecordType.PAYMENT, paid, slug),
    ]


def test_given_new_clients_one_refused_when_batched_then_one_post_and_only_it_parked_with_its_reason() -> (
    None
):
    world = World()
    good = [world.message(RecordType.CLIENT, client(f"cli_{n}"), f"cli_{n}") for n in range(4)]
    bad = world.message(RecordType.CLIENT, client("cli_bad", email="not an address"), "cli_bad")

    answer = world.run(good[:2], [bad, *good[2:]])

    assert world.calls().count("GET /api.xro/2.0/Contacts") == 1
    assert world.calls().count("POST /api.xro/2.0/Contacts") == 1
    assert [(d["record_id"], d["category"]) for d in world.dead.parked] == [("cli_bad", "xero_validation")]
    assert "Email address must be valid" in world.dead.parked[0]["reason"]
    assert all(world.store.get(RecordType.CLIENT, f"cli_{n}") is not None for n in range(4))
    assert world.store.get(RecordType.CLIENT, "cli_bad") is None
    # Settled, every one: the event source deletes its own, the collector what it received.
    assert answer == {"batchItemFailures": []}
    assert sorted(world.queue.deleted) == sorted(m.message_id for m in [bad, *good[2:]])


def test_given_groups_of_client_invoice_payment_when_batched_then_one_call_per_kind_in_that_order() -> None:
    world = World()
    groups = [billed(world, f"cli_{n}") for n in range(3)]
    messages = [m for group in groups for m in group]

    answer = world.run(messages[:4], messages[4:])

    calls = [c for c in world.calls() if c in WRITES]
    assert calls == list(WRITES)  # one each, in dependency order
    assert "GET /api.xro/2.0/Invoices" not in world.calls()  # the amount due came from our own write
    assert answer == {"batchItemFailures": []} and world.dead.parked == []
    state = world.xero.state()
    contacts = {c["ContactNumber"]: c["ContactID"] for c in state["Contacts"]}
    invoices = {i["Reference"]: i for i in state["Invoices"]}
    for n in range(3):
        invoice = invoices[f"inv_cli_{n}"]
        assert invoice["Contact"]["ContactID"] == contacts[f"cli_{n}"]
        assert str(invoice["AmountDue"]) in ("60.0", "60.00", "60")
    assert sorted(str(p["Amount"]) for p in state["Payments"]) == ["50.0"] * 3


def test_given_a_synced_batch_when_its_messages_come_again_in_a_later_batch_then_nothing_is_written() -> None:
    world = World()
    first = [m for n in range(2) for m in billed(world, f"cli_{n}")]
    world.run(first[:3], first[3:])
    writes = [c for c in world.calls() if c in WRITES]

    again = [
        QueuedMessage(f"{m.message_id}-again", m.body, f"{m.receipt_handle}-again", 2, m.group_id)
        for m in first
    ]
    answer = world.run(again[:2], again[2:])

    assert [c for c in world.calls() if c in WRITES] == writes
    assert answer == {"batchItemFailures": []} and world.dead.parked == []
    state = world.xero.state()
    assert len(state["Contacts"]) == 2 and len(state["Invoices"]) == 2 and len(state["Payments"]) == 2


def test_given_many_new_clients_one_typed_into_xero_when_batched_then_one_read_links_it_one_post() -> None:
    world = World()
    (typed,) = world.xero.seed("Contacts", {"Name": "Typed By Hand", "EmailAddress": "CLI_3@FIRM.TEST"})
    first = [world.message(RecordType.CLIENT, client(f"cli_{n}"), f"cli_{n}") for n in range(12)]

    world.run(first[:10], first[10:])

    assert world.calls() == ["GET /api.xro/2.0/Contacts", "POST /api.xro/2.0/Contacts"]
    linked = world.store.get(RecordType.CLIENT, "cli_3")
    assert linked is not None and linked.xero_id == typed["ContactID"] and linked.match_method == "email"
    assert len(world.xero.state()["Contacts"]) == 12  # 11 created, the typed one linked

    # The next batch reads only what changed since: one call again, the index kept.
    later = [world.message(RecordType.CLIENT, client(f"cli_{n}"), f"cli_{n}") for n in range(12, 22)]
    world.run(later)

    reads = [r for r in world.xero.api_requests() if r.method == "GET"]
    assert len(reads) == 2 and "If-Modified-Since" in reads[1].headers
    assert len(world.xero.state()["Contacts"]) == 22
