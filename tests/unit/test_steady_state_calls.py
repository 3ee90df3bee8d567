"""The Xero calls each kind of record costs in steady state, pinned: the bench's own steady mix
(bench/flow.py ``steady_mix``: new clients, their updates, invoices, payments, one at a time)
replayed in-process through the contact, invoice and payment syncs on the Xero double
(tests/xero_double.py), with the product's default rules. A call added to any kind fails here
before it shows in ``make bench``; docs/batching.md ("Fewer calls in steady state") says what
each remaining call is for."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bench.flow import SteadyStep, steady_mix
from shared.config import (
    ContactRules,
    IgnitionConfig,
    InvoiceRules,
    PaymentRules,
    RecordType,
    XeroConfig,
)
from shared.contacts import ContactSync
from shared.invoices import InvoiceSync
from shared.models.ignition import IgnitionClient
from shared.oauth import InMemoryTokenStore
from shared.outcome import SyncOutcome
from shared.payments import PaymentSync
from shared.store.mappings import RecordMapping
from shared.store.tax_rates import SharedTaxRates
from shared.xero.client import XeroClient
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, ManualClock
from tests.sync_events import sync_event
from tests.xero_double import TENANT_ID, XeroDouble

# After every record of the mix was last changed in Ignition.
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RECORD_TYPES = {
    "new_client": RecordType.CLIENT,
    "client_update": RecordType.CLIENT,
    "invoice": RecordType.INVOICE,
    "payment": RecordType.PAYMENT,
}
# The floor per kind with the product's defaults: a new client's case-safe lookup (by number,
# e-mail and name in one GET) and its write; one write for the rest.
NEW_CLIENT = {"GET /Contacts": 1, "POST /Contacts": 1}
CLIENT_UPDATE = {"POST /Contacts": 1}
INVOICE = {"PUT /Invoices": 1}
PAYMENT = {"PUT /Payments": 1}
# The organisation's tax rates, read once per execution environment (cached an hour).
TAX_RATES = {"GET /TaxRates": 1}


class Environment:
    """One sync execution environment as shared/wiring.py builds it: its own Xero client (and
    reference-data cache), the syncs over one mapping table."""

    def __init__(self, xero: XeroDouble, store: InMemoryMappingStore, state_table: str | None = None) -> None:
        self.xero = xero
        client: XeroClient = xero.client(xero.refreshing_tokens(InMemoryTokenStore(xero.token_set())))
        # As deployed, the tax rates are shared through the state table; without one, the client's.
        shared = (
            SharedTaxRates(client, state_table, TENANT_ID, clock=xero.clock.time) if state_table else None
        )
        # Every webhook of the mix carries its whole record: Ignition is read only for what it lacks.
        self.ignition = ignition = InMemoryIgnition()
        self.contacts = ContactSync(
            xero=client,
            ignition=ignition,
            store=store,
            rules=ContactRules(),
            ignition_config=IgnitionConfig(),
        )
        common: dict[str, Any] = {
            "xero": client,
            "ignition": ignition,
            "store": store,
            "unit": IgnitionConfig().amount_unit,
            "history_notes": XeroConfig().history_notes,
            "now": lambda: NOW,
        }
        self.invoices = InvoiceSync(contacts=self.contacts, rules=InvoiceRules(), tax_rates=shared, **common)
        self.payments = PaymentSync(invoices=self.invoices, rules=PaymentRules(), **common)

    def send(self, step: SteadyStep, n: int) -> tuple[SyncOutcome, dict[str, int]]:
        """The step's outcome and the Xero calls it made, by ``METHOD /Resource``."""
        before = len(self.xero.api_requests())
        record_type = RECORD_TYPES[step.kind]
        event = sync_event(
            step.record["slug"], step.record, record_type=record_type, event_id=f"evt_{n}", at=NOW
        )
        outcome = self._sync(record_type).handle(event)
        made = self.xero.api_requests()[before:]
        return outcome, dict(Counter(f"{r.method} /{r.url.path.rsplit('/', 1)[-1]}" for r in made))

    def _sync(self, record_type: RecordType) -> ContactSync | InvoiceSync | PaymentSync:
        if record_type == RecordType.CLIENT:
            return self.contacts
        return self.invoices if record_type == RecordType.INVOICE else self.payments


class CrashingStore(InMemoryMappingStore):
    """The mapping table, with a crash (``crash_after_write``) just after Xero applied a write of a
    mapped record and before its mapping is saved."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_after_write = False

    def save(self, mapping: RecordMapping, *, previous: RecordMapping | None) -> None:
        if self.crash_after_write and previous is not None and mapping.xero_body_sha256 is not None:
            self.crash_after_write = False
            raise RuntimeError("the function stopped before the mapping was saved")
        super().save(mapping, previous=previous)


class Mix:
    def __init__(self) -> None:
        self.xero = XeroDouble(ManualClock(NOW.timestamp()))
        self.store = CrashingStore()

    def environment(self, state_table: str | None = None) -> Environment:
        return Environment(self.xero, self.store, state_table)

    def calls(self, step: SteadyStep, n: int, environment: Environment) -> dict[str, int]:
        outcome, calls = environment.send(step, n)
        assert outcome.action in ("created", "updated", "applied"), outcome
        return calls


@pytest.fixture
def mix() -> Mix:
    return Mix()


def _steps(kind: str, clients: int = 6) -> list[SteadyStep]:
    return [s for s in steady_mix(clients, first_index=20_000) if s.kind == kind]


def test_given_the_bench_steady_mix_in_one_environment_when_synced_then_each_kind_costs_its_floor(
    mix: Mix,
) -> None:
    environment = mix.environment()
    by_kind: dict[str, list[dict[str, int]]] = {}

    for n, step in enumerate(steady_mix(6, first_index=20_000)):
        by_kind.setdefault(step.kind, []).append(mix.calls(step, n, environment))

    assert by_kind["new_client"] == [NEW_CLIENT] * 6
    assert by_kind["client_update"] == [CLIENT_UPDATE] * 6
    assert by_kind["invoice"] == [{**TAX_RATES, **INVOICE}, INVOICE, INVOICE]
    assert by_kind["payment"] == [PAYMENT] * 3
    # 18 records: 6 lookups + 18 writes + 1 tax-rate read in this one environment.
    assert len(mix.xero.api_requests()) == 25


def test_given_two_environments_sharing_the_state_table_when_each_syncs_an_invoice_then_one_tax_rate_read(
    mix: Mix, state_table: str
) -> None:
    first, second = mix.environment(state_table), mix.environment(state_table)
    for n, step in enumerate(_steps("new_client")[:3]):
        mix.calls(step, n, first)
    one, two, three = _steps("invoice")

    assert mix.calls(one, 10, first) == {**TAX_RATES, **INVOICE}
    assert mix.calls(two, 11, second) == INVOICE
    # An hour on, the first environment to need them reads them again, for both.
    mix.xero.clock.advance(3_601)
    assert mix.calls(three, 12, second) == {**TAX_RATES, **INVOICE}


def test_given_a_shared_copy_dropped_after_a_refusal_when_an_environment_needs_the_rates_then_xero_is_read(
    mix: Mix, state_table: str
) -> None:
    def environment() -> SharedTaxRates:
        client = mix.xero.client(mix.xero.refreshing_tokens(InMemoryTokenStore(mix.xero.token_set())))
        return SharedTaxRates(client, state_table, TENANT_ID, clock=mix.xero.clock.time)

    def reads() -> int:
        return sum(r.url.path.endswith("/TaxRates") for r in mix.xero.api_requests())

    def sales_rates(source: SharedTaxRates) -> list[tuple[object, ...]]:
        """What the invoice sync reads of each rate (shared/xero/rules.py OrganisationTaxTypes)."""
        return [(r.TaxType, r.EffectiveRate, r.Status, r.CanApplyToRevenue) for r in source.tax_rates()]

    first, refused = environment(), environment()
    assert sales_rates(first) == sales_rates(refused) and reads() == 1

    # Xero refused a tax type in one environment (shared/invoices.py): its copy and the shared one go.
    refused.invalidate_reference_data("TaxRates")

    assert refused.tax_rates() and reads() == 2
    assert environment().tax_rates() and reads() == 2  # the new read is the shared copy now


def test_given_environments_without_a_shared_copy_when_each_syncs_an_invoice_then_each_reads_tax_rates(
    mix: Mix,
) -> None:
    first, second = mix.environment(), mix.environment()
    for n, step in enumerate(_steps("new_client")[:2]):
        mix.calls(step, n, first)
    one, two = _steps("invoice")[:2]

    assert mix.calls(one, 10, first) == {**TAX_RATES, **INVOICE}
    assert mix.calls(two, 11, second) == {**TAX_RATES, **INVOICE}


def test_given_a_payment_on_an_invoice_our_own_write_left_when_synced_then_xero_is_not_read_back(
    mix: Mix,
) -> None:
    environment = mix.environment()
    client = _steps("new_client")[0]
    invoice, payment = _steps("invoice")[0], _steps("payment")[0]
    mix.calls(client, 0, environment)
    mix.calls(invoice, 1, environment)

    assert mix.calls(payment, 2, environment) == PAYMENT
    (paid,) = mix.xero.records("Invoices")
    assert paid["Status"] == "PAID" and Decimal(str(paid["AmountDue"])) == 0


def test_given_an_invoice_for_a_client_never_synced_when_synced_then_the_client_costs_its_own_floor_first(
    mix: Mix,
) -> None:
    environment = mix.environment()
    invoice = _steps("invoice")[0]
    client = next(s for s in _steps("new_client") if s.record["slug"] == invoice.record["client"]["slug"])
    environment.ignition.clients[client.record["slug"]] = IgnitionClient.model_validate(client.record)

    calls = mix.calls(invoice, 0, environment)

    assert calls == {**NEW_CLIENT, **TAX_RATES, **INVOICE}


def test_given_the_default_history_notes_when_the_mix_is_synced_then_no_history_call_is_made(
    mix: Mix,
) -> None:
    environment = mix.environment()
    for n, step in enumerate(steady_mix(2, first_index=30_000)):
        mix.calls(step, n, environment)

    assert not [r for r in mix.xero.api_requests() if r.url.path.endswith("/History")]


# -- a change in Ignition to nothing Xero holds ------------------------------------------------


def _update(step: SteadyStep, minutes: int, **changes: Any) -> SteadyStep:
    """``step``'s record changed in Ignition ``minutes`` after the mix's updates."""
    at = datetime(2026, 11, 1, 12, minutes, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return SteadyStep(
        step.kind, f"{step.event_type.split('.')[0]}.updated", {**step.record, **changes, "updated_at": at}
    )


def test_given_a_client_change_xero_does_not_hold_when_synced_then_no_call_and_an_older_change_stays_stale(
    mix: Mix,
) -> None:
    environment = mix.environment()
    created = _steps("new_client")[0]
    older = _steps("client_update")[0]  # a new e-mail, an hour after creation
    mix.calls(created, 0, environment)

    outcome, calls = environment.send(_update(created, 0, tags=["bookkeeping", "payroll"]), 1)

    assert (outcome.action, calls) == ("skipped_duplicate", {})
    mapping = mix.store.get(RecordType.CLIENT, created.record["slug"])
    assert mapping is not None and mapping.ignition_updated_at == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    # The e-mail change made before the tags arrives late: Ignition's newest state is written, not it.
    outcome, calls = environment.send(older, 2)
    assert (outcome.action, calls) == ("skipped_stale", {})
    (contact,) = [c for c in mix.xero.records("Contacts") if c["ContactNumber"] == created.record["slug"]]
    assert contact["EmailAddress"] == created.record["email"]


def test_given_an_unchanged_client_when_replayed_by_force_then_it_is_written_again(mix: Mix) -> None:
    environment = mix.environment()
    created = _steps("new_client")[0]
    mix.calls(created, 0, environment)
    step = _update(created, 0)
    event = sync_event(
        step.record["slug"], step.record, record_type=RecordType.CLIENT, event_id="evt_forced", at=NOW
    ).model_copy(update={"force": True})
    before = len(mix.xero.api_requests())

    outcome = environment.contacts.handle(event)

    assert outcome.action == "updated"
    assert [f"{r.method} {r.url.path.rsplit('/', 1)[-1]}" for r in mix.xero.api_requests()[before:]] == [
        "POST Contacts"
    ]


def test_given_a_second_client_of_the_same_name_when_an_unchanged_update_arrives_then_no_call(
    mix: Mix,
) -> None:
    environment = mix.environment()
    first, second = _steps("new_client")[:2]
    twin = SteadyStep(second.kind, second.event_type, {**second.record, "name": first.record["name"]})
    mix.calls(first, 0, environment)
    mix.calls(twin, 1, environment)
    names = sorted(c["Name"] for c in mix.xero.records("Contacts"))
    assert names == sorted([first.record["name"], f"{first.record['name']} ({second.record['slug']})"])

    outcome, calls = environment.send(_update(twin, 1, tags=["moved"]), 2)

    assert (outcome.action, calls) == ("skipped_duplicate", {})


def test_given_a_paid_invoice_when_ignition_marks_it_paid_then_no_call_and_nothing_stops_for_a_person(
    mix: Mix,
) -> None:
    environment = mix.environment()
    client, invoice, payment = _steps("new_client")[0], _steps("invoice")[0], _steps("payment")[0]
    for n, step in enumerate((client, invoice, payment)):
        mix.calls(step, n, environment)

    # Xero refuses any change to a paid invoice: a write here used to stop as invoice_locked.
    outcome, calls = environment.send(_update(invoice, 5, state="paid", payment_state="paid"), 3)

    assert (outcome.action, calls) == ("skipped_duplicate", {})
    (paid,) = mix.xero.records("Invoices")
    assert paid["Status"] == "PAID"


def test_given_an_invoice_whose_price_changed_when_synced_then_it_is_written(mix: Mix) -> None:
    environment = mix.environment()
    client, invoice = _steps("new_client")[0], _steps("invoice")[0]
    mix.calls(client, 0, environment)
    mix.calls(invoice, 1, environment)
    items = [{**invoice.record["items"][0], "unit_price": {"amount": "1200.00", "currency": "AUD"}}]

    calls = mix.calls(
        _update(invoice, 5, items=items, amount={"total": "1320.00", "currency": "AUD"}), 2, environment
    )

    assert calls == {"POST /Invoices": 1}
    (xero,) = mix.xero.records("Invoices")
    assert Decimal(str(xero["Total"])) == Decimal("1320.00")


def test_given_a_write_xero_applied_before_a_crash_when_ignition_changes_back_then_it_is_written_not_skipped(
    mix: Mix,
) -> None:
    environment = mix.environment()
    created = _steps("new_client")[0]
    mix.calls(created, 0, environment)
    mix.store.crash_after_write = True
    with pytest.raises(RuntimeError):
        environment.send(_update(created, 0, email="interim@bench-client.test"), 1)
    slug = created.record["slug"]
    assert [c["EmailAddress"] for c in mix.xero.records("Contacts")] == ["interim@bench-client.test"]

    # Back to the body the mapping last recorded: Xero holds the interim one, so it is written.
    calls = mix.calls(_update(created, 5, email=created.record["email"]), 2, environment)

    assert calls == CLIENT_UPDATE
    (contact,) = [c for c in mix.xero.records("Contacts") if c["ContactNumber"] == slug]
    assert contact["EmailAddress"] == created.record["email"]


def test_given_a_contact_linked_with_the_firms_own_code_when_the_client_is_updated_then_the_code_stays(
    mix: Mix,
) -> None:
    environment = mix.environment()
    created, update = _steps("new_client")[0], _steps("client_update")[0]
    mix.xero.seed(
        "Contacts",
        {
            "Name": "Typed by the bookkeeper",
            "EmailAddress": created.record["email"],
            "ContactNumber": "C-0042",
        },
    )
    outcome, _ = environment.send(created, 0)
    assert (outcome.action, outcome.match_method) == ("updated", "email")

    assert mix.calls(update, 1, environment) == CLIENT_UPDATE

    (contact,) = mix.xero.records("Contacts")
    assert (contact["ContactNumber"], contact["EmailAddress"]) == ("C-0042", update.record["email"])


def test_given_a_cold_environment_when_many_invoice_threads_need_the_rates_at_once_then_xero_is_read_once(
    mix: Mix, state_table: str
) -> None:
    """A gathered batch syncs up to 50 records in threads of one environment at the same moment."""
    import threading
    import time as real_time
    from concurrent.futures import ThreadPoolExecutor

    client: XeroClient = mix.xero.client(mix.xero.refreshing_tokens(InMemoryTokenStore(mix.xero.token_set())))
    shared = SharedTaxRates(client, state_table, TENANT_ID, clock=mix.xero.clock.time)
    start = threading.Barrier(8)

    def need_rates(_: int) -> int:
        start.wait()
        real_time.sleep(0.01)
        return len(shared.tax_rates())

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(need_rates, range(8)))

    assert len(set(counts)) == 1 and counts[0] > 0
    assert Counter(r.url.path.rsplit("/", 1)[-1] for r in mix.xero.api_requests()) == {"TaxRates": 1}
