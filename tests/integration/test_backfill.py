"""``backfill`` against the sandbox: an existing firm, matched without duplicates, resumable.

Each test starts from empty emulators (``/_emulator/reset``: backfill reads *every* Ignition
record, so other tests' records would change its counts); tests are grouped on one worker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import backfill_cmd
from cli.errors import Exit
from sandbox.environment import Sandbox
from shared import aws
from shared.config import RecordType
from shared.store.budget_usage import minute_counts
from shared.store.checkpoints import CheckpointStore
from shared.store.mappings import BatchMappingReader
from tests import ignition_records
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("backfill")]


class Firm:
    """An existing firm: Ignition clients, some of them already typed into Xero by hand."""

    def __init__(self, sandbox: Sandbox, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.tag = uuid.uuid4().hex[:6]
        self.http = httpx.Client(timeout=60)
        sandbox.wait_until_idle(timeout=60)
        self.http.post(f"{sandbox.xero_url}/_emulator/reset").raise_for_status()
        self.http.post(f"{sandbox.ignition_url}/_emulator/reset").raise_for_status()
        assert sandbox.resources is not None
        self.table = sandbox.resources.state_table
        CheckpointStore(self.table).clear()
        self.file = write_sandbox_file(sandbox, tmp_path / "sandbox.json")

    def slug(self, index: int) -> str:
        return f"cli_bf{self.tag}_{index:05d}"

    def client(self, index: int) -> dict[str, Any]:
        return {
            "slug": self.slug(index),
            "name": f"Client {self.tag} {index:05d} Pty Ltd",
            "email": f"accounts{index}@bf{self.tag}.test",
            "state": "active",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
        }

    def seed(self, clients: int, in_xero: int) -> list[dict[str, Any]]:
        """``clients`` in Ignition (no webhooks); the first ``in_xero`` of them already in Xero, typed
        by hand: same email, name in other case, no ContactNumber."""
        with self.sandbox.ignition.app.test_client() as admin:
            for index in range(clients):
                put = admin.put(
                    f"/_emulator/clients/{self.slug(index)}?deliver=false", json=self.client(index)
                )
                assert put.status_code < 300, put.get_data(as_text=True)
        existing = [
            {"Name": self.client(i)["name"].upper(), "EmailAddress": self.client(i)["email"]}
            for i in range(in_xero)
        ]
        seeded: list[dict[str, Any]] = []
        for start in range(0, len(existing), 1000):
            response = self.http.post(
                f"{self.sandbox.xero_url}/_emulator/contacts",
                json={"Contacts": existing[start : start + 1000]},
            )
            response.raise_for_status()
            seeded += response.json()["Contacts"]
        return seeded

    def forget(self) -> None:
        """Delete this test's items from the shared state table: moto copies the whole table for
        every transaction, so thousands of leftovers would slow every later test in the worker."""
        ddb = aws.client("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "contains(pk, :tag) OR contains(ignition_id, :tag) OR begins_with(pk, :cp)",
            "ExpressionAttributeValues": {":tag": {"S": self.tag}, ":cp": {"S": "backfill#"}},
            "ProjectionExpression": "pk, sk",
        }
        keys: list[dict[str, Any]] = []
        while True:
            page = ddb.scan(**kwargs)
            keys += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for start in range(0, len(keys), 25):
            ddb.batch_write_item(
                RequestItems={
                    self.table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
                }
            )
        self.http.close()

    def xero(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        return state

    def backfill(self, *args: str) -> Any:
        return run_cli("backfill", "--json", *args, sandbox_file=self.file)

    def assert_exactly_once(self, clients: int, seeded: list[dict[str, Any]]) -> None:
        contacts = self.xero()["Contacts"]
        assert len(contacts) == clients  # nothing duplicated: one contact per client
        numbers = Counter(c.get("ContactNumber") for c in contacts)
        assert all(numbers[self.slug(i)] == 1 for i in range(clients))
        mappings = BatchMappingReader(self.table).forward(
            RecordType.CLIENT, [self.slug(i) for i in range(clients)]
        )
        assert len(mappings) == clients
        by_number = {c["ContactNumber"]: c["ContactID"] for c in contacts}
        assert all(mappings[slug].xero_id == contact_id for slug, contact_id in by_number.items())
        # The hand-typed contacts were linked (same ContactID), not replaced.
        for index, contact in enumerate(seeded):
            assert mappings[self.slug(index)].xero_id == contact["ContactID"]


@pytest.fixture
def firm(sandbox: Sandbox, tmp_path: Path) -> Iterator[Firm]:
    current = Firm(sandbox, tmp_path)
    yield current
    current.forget()


def test_given_300_clients_60_already_in_xero_when_backfill_then_240_created_60_linked_in_few_calls(
    firm: Firm,
) -> None:
    seeded = firm.seed(300, 60)

    run = firm.backfill()

    assert run.code == Exit.OK, run.stderr
    result = run.json()
    contacts = result["counts"]["contacts"]
    assert (contacts["total"], contacts["created"], contacts["linked"], contacts["failed"]) == (
        300,
        240,
        60,
        0,
    )
    firm.assert_exactly_once(300, seeded)
    # 1 read of all contacts + 300 writes in batches of 50 (+ empty invoice/payment phases: no calls)
    assert result["xero_calls"] == 1 + 6
    assert firm.xero()["requests"]["by_status"].get("429", 0) == 0


def test_given_a_completed_backfill_when_run_again_then_nothing_is_written(firm: Firm) -> None:
    firm.seed(60, 10)
    assert firm.backfill().code == Exit.OK
    calls_before = firm.xero()["requests"]["total"]

    run = firm.backfill()

    assert run.code == Exit.OK, run.stderr
    contacts = run.json()["counts"]["contacts"]
    assert (contacts["already_mapped"], contacts["created"], contacts["linked"]) == (60, 0, 0)
    assert firm.xero()["requests"]["total"] == calls_before  # every client already mapped: no Xero call
    assert len(firm.xero()["Contacts"]) == 60


def test_given_a_crash_between_xero_writes_and_mappings_when_resumed_then_no_duplicates(
    firm: Firm, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = firm.seed(120, 20)
    saved = 0
    real_save = backfill_cmd._Mappings.save

    def crash_after_70(self: backfill_cmd._Mappings, mapping: Any) -> None:
        nonlocal saved
        if saved == 70:
            raise KeyboardInterrupt  # Ctrl-C (or a killed laptop) half-way through a batch's mappings
        saved += 1
        real_save(self, mapping)

    monkeypatch.setattr(backfill_cmd._Mappings, "save", crash_after_70)
    interrupted = firm.backfill()
    checkpoint = CheckpointStore(firm.table).load()
    monkeypatch.setattr(backfill_cmd._Mappings, "save", real_save)

    resumed = firm.backfill()

    assert interrupted.code == Exit.INTERRUPTED
    assert checkpoint is not None and checkpoint.status == "interrupted"
    assert resumed.code == Exit.OK, resumed.stderr
    result = resumed.json()
    assert result["run_id"] == checkpoint.run_id and result["resumed"] == 1
    contacts = result["counts"]["contacts"]
    assert contacts["created"] + contacts["linked"] == 120
    firm.assert_exactly_once(120, seeded)
    # The 30 contacts written to Xero in the batch whose mappings were cut short were found again
    # by their ContactNumber and linked, not created twice.
    mappings = BatchMappingReader(firm.table).forward(RecordType.CLIENT, [firm.slug(i) for i in range(120)])
    assert Counter(m.match_method for m in mappings.values())["contact_number"] == 30


def test_given_max_calls_when_backfill_then_it_pauses_and_a_second_run_finishes(firm: Firm) -> None:
    seeded = firm.seed(100, 20)

    paused = firm.backfill("--max-calls", "2")
    resumed = firm.backfill()

    assert paused.code == Exit.PAUSED
    assert "--max-calls" in paused.stderr and "run the same command again" in paused.stderr
    assert resumed.code == Exit.OK, resumed.stderr
    firm.assert_exactly_once(100, seeded)


def test_given_xeros_real_minute_limit_when_backfill_then_no_429_and_the_budget_never_exceeded(
    firm: Firm, sandbox: Sandbox, tmp_path: Path
) -> None:
    seeded = firm.seed(100, 20)
    firm.file = write_sandbox_file(
        sandbox, tmp_path / "limited.json", xero={"calls_per_minute": 55, "calls_per_day": 4_800}
    )
    sandbox.set_xero_limits(per_minute=60, per_day=5_000)
    try:
        run = firm.backfill()
    finally:
        sandbox.set_xero_limits(per_minute=100_000, per_day=1_000_000)

    assert run.code == Exit.OK, run.stderr
    firm.assert_exactly_once(100, seeded)
    assert firm.xero()["requests"]["by_status"].get("429", 0) == 0
    counts = minute_counts(firm.table, sandbox.xero.tenant_id)
    assert counts and max(counts.values()) <= 55


def test_given_invoices_and_payments_when_backfill_then_each_written_once_and_linked_on_rerun(
    firm: Firm,
) -> None:
    firm.seed(3, 1)
    with firm.sandbox.ignition.app.test_client() as admin:
        for index in range(3):
            invoice = {
                "slug": f"inv_bf{firm.tag}_{index}",
                "reference_number": f"BF{firm.tag}-{index}",
                "state": "awaiting_payment",
                "client": {"slug": firm.slug(index)},
                "amount": {"total": "110.00", "currency": "AUD"},
                "date": "2026-01-05",
                "due_date": "2026-01-19",
                "items": [
                    {
                        "description": "Bookkeeping",
                        "quantity": "1",
                        "unit_price": {"total": "100.00", "currency": "AUD"},
                        "tax_rate": "10",
                    }
                ],
                "created_at": "2026-01-05T00:00:00Z",
                "updated_at": "2026-01-05T00:00:00Z",
            }
            assert (
                admin.put(f"/_emulator/invoices/{invoice['slug']}?deliver=false", json=invoice).status_code
                < 300
            )
        payment = ignition_records.payment(
            f"pypay_bf{firm.tag}",
            firm.slug(0),
            "110.00",
            f"inv_bf{firm.tag}_0",
            created_at="2026-01-06T00:00:00Z",
        )
        response = admin.put(f"/_emulator/payments/{payment['slug']}?deliver=false", json=payment)
        assert response.status_code < 300, response.get_data(as_text=True)

    first = firm.backfill()
    second = firm.backfill("--restart")

    assert first.code == Exit.OK, first.stderr + json.dumps(first.json().get("failures"))
    counts = first.json()["counts"]
    assert counts["invoices"]["created"] == 3 and counts["payments"]["created"] == 1
    state = firm.xero()
    assert len(state["Invoices"]) == 3 and len(state["Payments"]) == 1
    paid = next(i for i in state["Invoices"] if i["InvoiceNumber"] == f"BF{firm.tag}-0")
    assert paid["Status"] == "PAID"
    assert second.code == Exit.OK
    assert second.json()["counts"]["invoices"]["created"] == 0
    assert len(firm.xero()["Invoices"]) == 3 and len(firm.xero()["Payments"]) == 1


@pytest.mark.slow
@pytest.mark.timeout(3_000)
def test_given_5000_clients_1000_in_xero_when_backfill_at_xeros_real_limits_then_4000_created_once(
    firm: Firm, sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = firm.seed(5_000, 1_000)
    firm.file = write_sandbox_file(
        sandbox, tmp_path / "limited.json", xero={"calls_per_minute": 55, "calls_per_day": 4_800}
    )
    sandbox.set_xero_limits(per_minute=60, per_day=5_000)
    saved = 0
    real_save = backfill_cmd._Mappings.save

    def crash_mid_run(self: backfill_cmd._Mappings, mapping: Any) -> None:
        nonlocal saved
        if saved == 2_345:
            raise KeyboardInterrupt
        saved += 1
        real_save(self, mapping)

    started = time.monotonic()
    try:
        backfill_cmd._Mappings.save = crash_mid_run  # type: ignore[method-assign]
        interrupted = firm.backfill()
        backfill_cmd._Mappings.save = real_save  # type: ignore[method-assign]
        resumed = firm.backfill()
    finally:
        backfill_cmd._Mappings.save = real_save  # type: ignore[method-assign]
        sandbox.set_xero_limits(per_minute=100_000, per_day=1_000_000)
    seconds = time.monotonic() - started

    assert interrupted.code == Exit.INTERRUPTED
    assert resumed.code == Exit.OK, resumed.stderr
    result = resumed.json()
    contacts = result["counts"]["contacts"]
    assert contacts["created"] + contacts["linked"] == 5_000
    firm.assert_exactly_once(5_000, seeded)
    created = sum(
        1 for c in firm.xero()["Contacts"] if c["ContactID"] not in {s["ContactID"] for s in seeded}
    )
    assert created == 4_000
    state = firm.xero()
    assert state["requests"]["by_status"].get("429", 0) == 0
    counts = minute_counts(firm.table, sandbox.xero.tenant_id)
    assert max(counts.values()) <= 55
    calls = state["requests"]["total"]
    with capsys.disabled():
        print(
            f"\nbackfill 5,000 clients (1,000 in Xero), interrupted after 2,345 mappings and resumed: "
            f"{seconds:.1f} s, {calls} Xero calls ({calls / 5_000:.4f} per client), "
            f"by endpoint {state['requests']['by_endpoint']}, busiest minute {max(counts.values())} calls, "
            f"run counts {contacts}"
        )
    assert calls / 5_000 <= 0.03


def test_given_a_locked_period_and_a_disabled_currency_when_backfill_then_both_reported_and_the_rest_lands(
    firm: Firm,
) -> None:
    firm.seed(3, 0)
    firm.http.post(
        f"{firm.sandbox.xero_url}/_emulator/organisation",
        json={"period_lock_date": "2026-01-31", "currencies": ["AUD", "NZD"]},
    ).raise_for_status()
    cases = (("2026-01-15", "AUD"), ("2026-02-05", "EUR"), ("2026-02-05", "AUD"))  # locked, EUR, fine
    try:
        with firm.sandbox.ignition.app.test_client() as admin:
            for index, (dated, currency) in enumerate(cases):
                invoice = {
                    "slug": f"inv_bf{firm.tag}_{index}",
                    "reference_number": f"BF{firm.tag}-{index}",
                    "state": "awaiting_payment",
                    "client": {"slug": firm.slug(index)},
                    "amount": {"total": "100.00", "currency": currency},
                    "date": dated,
                    "items": [
                        {
                            "description": "Advice",
                            "quantity": "1",
                            "unit_price": {"total": "100.00", "currency": currency},
                        }
                    ],
                    "created_at": f"{dated}T00:00:00Z",
                    "updated_at": f"{dated}T00:00:00Z",
                }
                put = admin.put(f"/_emulator/invoices/{invoice['slug']}?deliver=false", json=invoice)
                assert put.status_code < 300, put.get_data(as_text=True)

        run = firm.backfill()
    finally:
        firm.http.post(
            f"{firm.sandbox.xero_url}/_emulator/organisation",
            json={"period_lock_date": None, "currencies": ["AUD", "NZD", "USD", "GBP"]},
        ).raise_for_status()

    result = run.json()
    assert (result["counts"]["invoices"]["created"], result["counts"]["invoices"]["failed"]) == (1, 2)
    failures = {f["ignition_id"]: f for f in result["failures"]}
    locked, foreign = failures[f"inv_bf{firm.tag}_0"], failures[f"inv_bf{firm.tag}_1"]
    assert locked["category"] == "period_locked"
    assert "is dated 2026-01-15, before the period lock date 2026-01-31 in Xero" in locked["reason"]
    assert foreign["category"] == "currency_not_enabled"
    assert (
        "is in EUR, a currency not enabled in the Xero organisation (enabled: AUD, NZD)" in foreign["reason"]
    )
    # Reported without a write: the one invoice that fits is the only one Xero saw.
    assert [i["InvoiceNumber"] for i in firm.xero()["Invoices"]] == [f"BF{firm.tag}-2"]
    assert (
        firm.xero()["requests"]["by_endpoint"].get("PUT /Invoices", 0)
        + firm.xero()["requests"]["by_endpoint"].get("POST /Invoices", 0)
        == 1
    )


def _put_invoice(firm: Firm, index: int, client_index: int, currency: str = "AUD") -> str:
    slug = f"inv_bf{firm.tag}_{index}"
    invoice = {
        "slug": slug,
        "reference_number": f"BF{firm.tag}-{index}",
        "state": "awaiting_payment",
        "client": {"slug": firm.slug(client_index)},
        "amount": {"total": "110.00", "currency": currency},
        "date": "2026-02-05",
        "items": [
            {
                "description": "Bookkeeping",
                "quantity": "1",
                "unit_price": {"total": "100.00", "currency": currency},
                "tax_rate": "10",
            }
        ],
        "created_at": "2026-02-05T00:00:00Z",
        "updated_at": "2026-02-05T00:00:00Z",
    }
    with firm.sandbox.ignition.app.test_client() as admin:
        put = admin.put(f"/_emulator/invoices/{slug}?deliver=false", json=invoice)
        assert put.status_code < 300, put.get_data(as_text=True)
    return slug


def test_given_new_clients_with_invoices_and_a_payment_when_dry_run_then_the_real_run_does_exactly_that(
    firm: Firm,
) -> None:
    """The dry run's plan (counts per phase and the records that need a person) is what the real
    run then does, including invoices and payments of clients the run creates first."""
    firm.seed(4, 1)  # client 0 typed into Xero by hand; 1-3 created by the run
    firm.http.post(
        f"{firm.sandbox.xero_url}/_emulator/organisation", json={"currencies": ["AUD", "NZD"]}
    ).raise_for_status()
    try:
        paid = _put_invoice(firm, 0, 1)  # of a client the run creates
        _put_invoice(firm, 1, 0)
        _put_invoice(firm, 2, 2)
        _put_invoice(firm, 3, 3, currency="EUR")  # not enabled: needs a person, in both runs
        with firm.sandbox.ignition.app.test_client() as admin:
            payment = ignition_records.payment(
                f"pypay_bf{firm.tag}", firm.slug(1), "110.00", paid, created_at="2026-02-06T00:00:00Z"
            )
            put = admin.put(f"/_emulator/payments/{payment['slug']}?deliver=false", json=payment)
            assert put.status_code < 300, put.get_data(as_text=True)

        plan = firm.backfill("--dry-run")
        readable = run_cli("backfill", "--dry-run", sandbox_file=firm.file)
        writes_after_dry_run = len(firm.xero()["Contacts"]), len(firm.xero()["Invoices"])
        real = firm.backfill()
    finally:
        firm.http.post(
            f"{firm.sandbox.xero_url}/_emulator/organisation",
            json={"currencies": ["AUD", "NZD", "USD", "GBP"]},
        ).raise_for_status()

    assert writes_after_dry_run == (1, 0)  # the dry run wrote nothing
    assert plan.json()["dry_run"] is True and real.json()["dry_run"] is False
    assert plan.json()["counts"] == real.json()["counts"]
    assert (
        real.json()["counts"]["invoices"]["created"] == 3
        and real.json()["counts"]["payments"]["created"] == 1
    )

    def failed(run: Any) -> set[tuple[str, str, str]]:
        return {(f["record_type"], f["ignition_id"], f["category"]) for f in run.json()["failures"]}

    assert failed(plan) == failed(real) == {("invoice", f"inv_bf{firm.tag}_3", "currency_not_enabled")}
    assert plan.code == real.code == Exit.UNHEALTHY
    # For people: a table and plain sentences, not a Python dict.
    assert "The real run would:" in readable.stdout and "{" not in readable.stdout
    assert "1 record(s) would need a person:" in readable.stdout
