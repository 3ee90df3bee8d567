"""Ignition's Reporting API hides data by default (integration-facts, "Defaults that hide data"):
invoices outside the current month unless a date window is given, archived clients and cancelled
payments unless ``state=`` names them. The sandbox's emulator does the same, so these scenarios
fail unless the backfill, the reconciliation and the sync's reads all state their window and read
terminal states in their own passes. Each asserts what ends up in Xero.

Backfill and a full reconciliation read every Ignition record, so each test starts from empty
emulators and state (as the reconciliation's end-to-end tests do); the tests share one worker.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cli.errors import Exit
from sandbox.xero_emulator.common import record_date
from shared.config import RecordType
from shared.store.checkpoints import CheckpointStore
from tests import ignition_records
from tests.integration.conftest import Books, iso
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reconcile")]

NOW = datetime.now(UTC)


def months_ago(today: date, months: int) -> date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(today.day, 28))


@pytest.fixture
def books(books: Books) -> Books:
    """The reconciliation tests' empty books, without a backfill checkpoint left by another test."""
    assert books.sandbox.resources is not None
    CheckpointStore(books.sandbox.resources.state_table).clear()
    return books


def line(price: str) -> dict[str, Any]:
    """A line without a tax rate: Ignition's default, which the sync must fill in."""
    return ignition_records.line(price, tax_rate=None, description="Annual accounts")


def test_given_an_invoice_of_three_months_ago_when_backfilled_reconciled_and_paid_today_then_xero_has_it_paid(
    books: Books, tmp_path: Path
) -> None:
    dated = months_ago(NOW.date(), 3)
    written = iso(datetime.combine(dated, datetime.min.time(), UTC) + timedelta(hours=9))
    client = books.slug("old")
    books.put_record("clients", books.client(client, created_at=written, updated_at=written), deliver=False)
    slug = f"inv_old_{books.tag}"
    invoice = books.invoice(
        slug,
        client,
        [line("250.00")],
        "250.00",
        date=dated.isoformat(),
        created_at=written,
        updated_at=written,
    )
    books.put_record("invoices", invoice, deliver=False)

    backfill = run_cli(
        "backfill", "--json", sandbox_file=write_sandbox_file(books.sandbox, tmp_path / "s.json")
    )
    assert backfill.code == Exit.OK, backfill.stderr
    assert backfill.json()["counts"]["invoices"]["created"] == 1
    (backfilled,) = books.xero_invoices(Reference=slug)
    assert (backfilled["Status"], Decimal(str(backfilled["Total"]))) == ("AUTHORISED", Decimal("250.00"))

    full = books.reconcile(mode="full")
    assert full["summary"] == {}, books.report(full)["discrepancies"]

    # Paid today, both webhooks lost: the incremental catch-up must still read an invoice dated
    # three months ago (Ignition's own window would be this month only).
    paid_at = iso(NOW - timedelta(minutes=30))
    books.put_record("invoices", {**invoice, "payment_state": "paid", "updated_at": paid_at}, deliver=False)
    payment = ignition_records.payment(
        f"pypay_old_{books.tag}", client, "250.00", slug, paid_on=NOW.date().isoformat(), created_at=paid_at
    )
    books.put_record("payments", payment, deliver=False)

    caught_up = books.reconcile(mode="incremental")
    books.settle()

    assert caught_up["summary"] == {"not_applied": 1, "missing_in_xero": 1}
    (paid,) = books.xero_invoices(Reference=slug)
    assert paid["Status"] == "PAID" and Decimal(str(paid["AmountPaid"])) == Decimal("250.00")
    assert [Decimal(str(p["Amount"])) for p in books.xero_payments_for(paid["InvoiceID"])] == [
        Decimal("250.00")
    ]
    assert books.sandbox.dead_letters() == []


def test_given_a_client_archived_and_a_payment_cancelled_unannounced_when_fully_reconciled_then_both_are_seen(
    books: Books,
) -> None:
    client = books.new_client("leaving")
    invoice = books.new_invoice(client, "100.00")
    payment = books.new_payment(client, invoice, "100.00")
    books.settle()
    contact_id = books.contact_of(client)["ContactID"]
    (xero_invoice,) = books.xero_invoices(Reference=invoice)
    assert xero_invoice["Status"] == "PAID"
    # Archived (with a new e-mail) and cancelled in Ignition; neither webhook arrives.
    books.put_record(
        "clients",
        books.client(client, state="archived", email=f"final.{client}@example.test", updated_at=books.at(10)),
        deliver=False,
    )
    books.put_record(
        "payments",
        {
            "slug": payment,
            "state": "cancelled",
            "client": {"slug": client},
            "amount": {"amount": "100.00", "currency": "AUD"},
            "invoices": [{"slug": invoice}],
            "created_at": books.at(),
            "updated_at": books.at(10),
        },
        deliver=False,
    )

    result = books.reconcile(mode="full")
    books.settle()

    found = {(d["category"], d["ignition_id"]): d for d in books.report(result)["discrepancies"]}
    assert set(found) == {("not_applied", client), ("field_drift", f"{payment}:{invoice}")}
    cancelled = found[("field_drift", f"{payment}:{invoice}")]["differences"]
    assert [(d["field"], d["ignition"]) for d in cancelled] == [("status", "cancelled")]
    # The archived client's change reached its one contact; the cancelled payment is left for a
    # person to reverse in Xero (the reconciliation reports it, it does not delete money).
    (contact,) = books.contacts(ContactNumber=client)
    assert contact["ContactID"] == contact_id
    assert contact["EmailAddress"] == f"final.{client}@example.test"
    assert books.mapping_of(RecordType.CLIENT, client) == contact_id
    assert [p["Status"] for p in books.xero_payments_for(xero_invoice["InvoiceID"])] == ["AUTHORISED"]


def test_given_a_slug_only_webhook_for_an_old_invoice_of_an_archived_client_then_the_sync_writes_both(
    books: Books,
) -> None:
    """The newest-state fetch: a webhook that carries only the slug makes the sync read the record
    from the Reporting API, which would answer 404 for both without a window and state=."""
    dated = months_ago(NOW.date(), 3)
    client = books.slug("hinted")
    books.put_record("clients", books.client(client, state="archived", updated_at=books.at()), deliver=False)
    slug = f"inv_hint_{books.tag}"
    invoice = books.invoice(
        slug, client, [line("80.00")], "80.00", date=dated.isoformat(), updated_at=books.at()
    )

    books.put_record("invoices", invoice, payload="id")
    books.settle()

    (written,) = books.xero_invoices(Reference=slug)
    assert record_date(written, "Date") == dated
    assert Decimal(str(written["Total"])) == Decimal("80.00")
    (contact,) = books.contacts(ContactNumber=client)
    assert books.mapping_of(RecordType.CLIENT, client) == contact["ContactID"]
    assert books.sandbox.dead_letters() == []
