"""The backfill's decisions with in-memory fakes: same rules as the live sync, in bulk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.backfill import Backfill, BackfillOptions, BackfillPaused
from shared.config import IntegrationConfig, RecordType
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Invoice, Payment, ValidationMessage
from shared.store.checkpoints import Checkpoint
from shared.store.mappings import AuditEntry, RecordMapping

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeXero:
    def __init__(self, contacts: list[Contact]) -> None:
        self.contacts = {c.ContactID or "": c for c in contacts}
        self.calls = 0

    def iter_contacts(
        self, where: str | None = None, *, page_size: int = 100, include_archived: bool = False
    ) -> Iterator[Contact]:
        self.calls += 1
        return iter(list(self.contacts.values()))

    def save_contacts(self, contacts: Sequence[Contact], idempotency_key: str | None = None) -> list[Contact]:
        self.calls += 1
        saved = []
        for contact in contacts:
            taken = {
                (c.Name or "").casefold()
                for c in self.contacts.values()
                if c.ContactID != contact.ContactID and c.ContactStatus in (None, "ACTIVE")
            }
            if (contact.Name or "").casefold() in taken:
                saved.append(
                    contact.model_copy(
                        update={
                            "ValidationErrors": [
                                ValidationMessage(Message="is already assigned to another contact")
                            ]
                        }
                    )
                )
                continue
            stored = contact.model_copy(update={"ContactID": contact.ContactID or str(uuid.uuid4())})
            self.contacts[stored.ContactID or ""] = stored
            saved.append(stored)
        return saved

    def iter_invoices(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Invoice]:
        return iter([])

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]:
        raise AssertionError("no invoices in these tests")

    def iter_payments(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Payment]:
        return iter([])

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]:
        raise AssertionError("no payments in these tests")


class FakeIgnition:
    def __init__(self, clients: list[IgnitionClient]) -> None:
        self.clients = clients

    def iter_clients(self) -> Iterator[IgnitionClient]:
        return iter(self.clients)

    def iter_invoices(self) -> Iterator[IgnitionInvoice]:
        return iter([])

    def iter_payments(self) -> Iterator[IgnitionPayment]:
        return iter([])


class FakeMappings:
    def __init__(self) -> None:
        self.forward: dict[tuple[RecordType, str], RecordMapping] = {}
        self.audits: list[AuditEntry] = []

    def mappings(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]:
        return {i: self.forward[(record_type, i)] for i in ignition_ids if (record_type, i) in self.forward}

    def owners(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]:
        by_xero = {m.xero_id: m.ignition_id for (t, _), m in self.forward.items() if t == record_type}
        return {x: by_xero[x] for x in xero_ids if x in by_xero}

    def save_many(self, mappings: Sequence[RecordMapping]) -> set[str]:
        conflicts = set()
        for mapping in mappings:
            key = (mapping.record_type, mapping.ignition_id)
            if key in self.forward:
                conflicts.add(mapping.ignition_id)
            else:
                self.forward[key] = mapping
        return conflicts

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        self.audits += entries


class FakeCheckpoints:
    def __init__(self) -> None:
        self.stored: Checkpoint | None = None

    def load(self) -> Checkpoint | None:
        return self.stored.model_copy(deep=True) if self.stored else None

    def save(self, checkpoint: Checkpoint) -> None:
        self.stored = checkpoint.model_copy(deep=True)


def client(slug: str, name: str, email: str | None = None) -> IgnitionClient:
    return IgnitionClient(slug=slug, name=name, email=email, created_at=T0, updated_at=T0)


def engine(xero: FakeXero, clients: list[IgnitionClient], **kwargs: Any) -> tuple[Backfill, FakeMappings]:
    mappings = FakeMappings()
    return (
        Backfill(
            xero=xero,
            ignition=FakeIgnition(clients),
            mappings=mappings,
            checkpoints=kwargs.pop("checkpoints", FakeCheckpoints()),
            config=IntegrationConfig(),
            xero_calls=lambda: xero.calls,
            sleep=lambda seconds: None,
        ),
        mappings,
    )


def test_given_contacts_sharing_an_email_when_backfill_then_that_client_fails_and_others_go_on() -> None:
    xero = FakeXero(
        [
            Contact(ContactID="a", Name="One", EmailAddress="shared@x.test", ContactStatus="ACTIVE"),
            Contact(ContactID="b", Name="Two", EmailAddress="shared@x.test", ContactStatus="ACTIVE"),
        ]
    )
    backfill, mappings = engine(xero, [client("cli_1", "Three", "shared@x.test"), client("cli_2", "Four")])

    result = backfill.run(BackfillOptions(phases=("contacts",)))

    assert [(f.ignition_id, f.category) for f in result.failures] == [("cli_1", "ambiguous_match")]
    assert set(mappings.mappings(RecordType.CLIENT, ["cli_1", "cli_2"])) == {"cli_2"}
    assert result.checkpoint.counts["contacts"].failed == 1


def test_given_two_new_clients_with_one_name_when_backfill_then_the_second_is_disambiguated() -> None:
    xero = FakeXero([])
    backfill, _ = engine(xero, [client("cli_1", "Acme"), client("cli_2", "Acme")])

    backfill.run(BackfillOptions(phases=("contacts",)))

    names = sorted(c.Name or "" for c in xero.contacts.values())
    assert names == ["Acme", "Acme (cli_2)"]
    assert xero.calls == 2  # one read, one batch


def test_given_a_client_named_like_another_clients_contact_when_backfill_then_no_merge() -> None:
    xero = FakeXero([Contact(ContactID="a", Name="Acme", ContactNumber="cli_other", ContactStatus="ACTIVE")])
    backfill, mappings = engine(xero, [client("cli_1", "Acme")])

    backfill.run(BackfillOptions(phases=("contacts",)))

    assert mappings.forward[(RecordType.CLIENT, "cli_1")].xero_id != "a"
    assert {c.Name for c in xero.contacts.values()} == {"Acme", "Acme (cli_1)"}


def test_given_a_dry_run_when_backfill_then_nothing_is_written_and_the_plan_is_reported() -> None:
    xero = FakeXero([Contact(ContactID="a", Name="Old", EmailAddress="one@x.test", ContactStatus="ACTIVE")])
    checkpoints = FakeCheckpoints()
    backfill, mappings = engine(
        xero, [client("cli_1", "One", "one@x.test"), client("cli_2", "Two")], checkpoints=checkpoints
    )

    result = backfill.run(BackfillOptions(phases=("contacts",), dry_run=True))

    assert result.planned["contacts"] == {"create": 1, "update": 1}
    assert mappings.forward == {} and len(xero.contacts) == 1 and checkpoints.stored is None


def test_given_max_calls_when_backfill_then_paused_with_a_resumable_checkpoint() -> None:
    xero = FakeXero([])
    checkpoints = FakeCheckpoints()
    clients = [client(f"cli_{i}", f"Client {i}") for i in range(120)]
    backfill, mappings = engine(xero, clients, checkpoints=checkpoints)

    with pytest.raises(BackfillPaused):
        backfill.run(BackfillOptions(phases=("contacts",), max_calls=2))

    assert checkpoints.stored is not None and checkpoints.stored.status == "paused"
    assert len(mappings.forward) == 50  # one read + one batch, then the limit
