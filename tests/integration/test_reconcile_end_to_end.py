"""Reconciliation through the sandbox: known discrepancies of every category are seeded, the real
reconcile handler reports each exactly once (none on a clean data set) and heals what it owns.

A full reconciliation compares everything, so each test starts from an empty organisation:
both emulators reset, the state table's mappings and the DLQ emptied (the OAuth connections and
the raised limits survive a reset). Records are dated an hour ago, outside the in-flight grace.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared import aws
from shared.config import IntegrationConfig, RecordType
from shared.store.mappings import DynamoMappingStore, RecordMapping
from tests.integration.conftest import AN_HOUR_AGO, Books, iso

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reconcile")]


def test_given_a_clean_data_set_when_reconciled_then_nothing_is_reported_and_nothing_is_sent(
    books: Books,
) -> None:
    clients = [books.new_client(f"clean{index}") for index in range(2)]
    invoices = [books.new_invoice(client, "250.00") for client in clients]
    books.settle()
    for client, invoice in zip(clients, invoices, strict=True):
        books.new_payment(client, invoice, "100.00")
    books.settle()

    result = books.reconcile()

    assert (result["status"], result["summary"], result["healed"]) == ("complete", {}, 0)
    assert books.report(result)["discrepancies"] == []
    assert books.sandbox.queue_depth() == (0, 0)


def test_given_every_category_seeded_when_reconciled_then_each_is_reported_once_and_owned_ones_heal(
    books: Books,
) -> None:
    # In step: a client with an invoice and its payment.
    ok = books.new_client("ok")
    ok_invoice = books.new_invoice(ok, "100.00")
    books.settle()
    # Synced, then changed by people in Xero: an e-mail edited, a total off by one cent, an archive.
    edited = books.new_client("edited")
    archived = books.new_client("archived")
    cent = books.new_invoice(ok, "100.00")
    duplicated = books.new_client("dup")
    updated = books.new_client("updated")
    books.settle()
    books.edit_in_xero(edited, EmailAddress="typed.by.hand@example.test")
    books.edit_in_xero(archived, ContactStatus="ARCHIVED")
    (cent_invoice,) = books.xero_invoices(Reference=cent)
    books.xero_api("POST", "/Invoices", {"Invoices": [{"InvoiceID": cent_invoice["InvoiceID"], "LineItems": [
        {"Description": "Bookkeeping", "Quantity": 1, "UnitAmount": 100.01, "AccountCode": "200",
         "TaxType": "BASEXCLUDED"}]}]})  # fmt: skip
    # A second contact typed by hand with a synced client's e-mail.
    books.seed_contacts(
        {
            "Name": "Dup typed by hand",
            "EmailAddress": f"{duplicated}@example.test",
            "UpdatedDateUTC": books.at(),
        }
    )
    # Lost webhooks: a new client, a client's update, a payment; a contact made but never linked.
    lost = books.new_client("lost", deliver=False)
    books.put_record("clients", books.client(updated, name="Renamed", updated_at=books.at(10)), deliver=False)
    lost_payment = books.new_payment(ok, ok_invoice, "40.00", deliver=False)
    unlinked = books.new_client("unlinked", deliver=False)
    (unlinked_contact,) = books.seed_contacts(
        {"Name": f"Client {unlinked}", "ContactNumber": unlinked, "UpdatedDateUTC": books.at()}
    )
    # In Xero with our keys, unknown to Ignition.
    (ghost,) = books.seed_contacts(
        {"Name": "Ghost", "ContactNumber": books.slug("ghost"), "UpdatedDateUTC": books.at()}
    )
    # Linked to a Xero contact that does not exist.
    gone = books.new_client("gone", deliver=False)
    gone_id = str(uuid.uuid4())
    assert books.sandbox.resources is not None
    DynamoMappingStore(books.sandbox.resources.state_table).save(
        RecordMapping(record_type=RecordType.CLIENT, ignition_id=gone, xero_id=gone_id,
                      ignition_updated_at=AN_HOUR_AGO, synced_at=AN_HOUR_AGO, last_event_id="seed",
                      match_method="created", version=1),
        previous=None,
    )  # fmt: skip
    # A failure that needs a person: a tax rate with no Xero tax type.
    failing = f"inv_{uuid.uuid4().hex[:10]}"
    item = {
        "description": "x",
        "quantity": "1",
        "unit_price": {"amount": "10.00", "currency": "AUD"},
        "tax_rate": "15",
    }
    books.put_record("invoices", books.invoice(failing, ok, [item], "11.50", updated_at=books.at()))
    books.settle()

    first = books.reconcile()

    expected = {
        ("missing_in_xero", lost, None),
        ("missing_in_xero", f"{lost_payment}:{ok_invoice}", None),
        ("not_mapped", unlinked, unlinked_contact["ContactID"]),
        ("not_applied", updated, books.contact_of(updated)["ContactID"]),
        ("mapped_missing_in_xero", gone, gone_id),
        ("archived_in_xero", archived, books.contact_of(archived)["ContactID"]),
        ("field_drift", edited, books.contact_of(edited)["ContactID"]),
        ("field_drift", cent, cent_invoice["InvoiceID"]),
        ("duplicate_in_xero", duplicated, None),
        ("orphan_in_xero", None, ghost["ContactID"]),
        ("dead_letter", failing, None),
    }
    assert books.found(first) == expected
    assert first["summary"] == {
        "missing_in_xero": 2, "not_mapped": 1, "not_applied": 1, "mapped_missing_in_xero": 1,
        "archived_in_xero": 1, "field_drift": 2, "duplicate_in_xero": 1, "orphan_in_xero": 1,
        "dead_letter": 1,
    }  # fmt: skip
    drift = {
        d["ignition_id"]: d for d in books.report(first)["discrepancies"] if d["category"] == "field_drift"
    }
    assert drift[edited]["differences"] == [
        {"field": "email", "ignition": f"{edited}@example.test", "xero": "typed.by.hand@example.test"}
    ]
    assert drift[cent]["differences"] == [{"field": "total", "ignition": "100.00 AUD", "xero": "100.01 AUD"}]
    assert first["healed"] == 4  # lost client, lost update, lost payment, unlinked contact

    books.settle()
    second = books.reconcile()

    assert books.contact_of(lost)["Name"] == f"Client {lost}"
    assert books.contact_of(updated)["Name"] == "Renamed"
    linked = books.mapping(unlinked)
    assert linked is not None and linked.xero_id == unlinked_contact["ContactID"]
    assert len(books.xero_payments_for(books.xero_invoices(Reference=ok_invoice)[0]["InvoiceID"])) == 1
    assert set(second["summary"]) == {
        "mapped_missing_in_xero", "archived_in_xero", "field_drift", "duplicate_in_xero", "orphan_in_xero",
        "dead_letter",
    }  # fmt: skip
    assert second["healed"] == 0


def test_given_a_report_when_written_then_csv_and_html_carry_every_discrepancy_escaped_and_latest_is_stored(
    books: Books,
) -> None:
    books.seed_contacts(
        {"Name": "<script>alert(1)</script>", "ContactNumber": books.slug("x"), "UpdatedDateUTC": books.at()}
    )
    books.new_client("lost", deliver=False, name='=HYPERLINK("x")')

    result = books.reconcile()

    keys = result["report"]
    assert keys["html"].startswith("reports/") and keys["html"].endswith(f"/{result['run_id']}/report.html")
    rows = list(csv.DictReader(io.StringIO(books.s3_object(keys["csv"])[0].decode())))
    assert sorted(r["category"] for r in rows) == ["missing_in_xero", "orphan_in_xero"]
    html = books.s3_object(keys["html"])[0].decode()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "http" not in html.split("<body>")[0]  # no external assets in the head
    assert result["summary"] == {"missing_in_xero": 1, "orphan_in_xero": 1}
    latest = aws.client("dynamodb").get_item(
        TableName=books.sandbox.resources.state_table,  # type: ignore[union-attr]
        Key={"pk": {"S": "reconcile#latest"}, "sk": {"S": "run"}},
    )["Item"]
    assert latest["run_id"]["S"] == result["run_id"] and json.loads(latest["report"]["S"]) == keys


def test_given_a_lost_webhook_when_the_incremental_run_catches_up_then_the_sync_writes_it(
    books: Books,
) -> None:
    lost = books.new_client("lost", deliver=False)
    synced = books.new_client("synced")
    books.settle()

    result = books.reconcile(mode="incremental")
    books.settle()

    assert result["summary"] == {"missing_in_xero": 1} and result["healed"] == 1
    assert books.contact_of(lost)["ContactNumber"] == lost
    assert books.mapping(synced) is not None


def test_given_a_xero_webhook_event_for_an_edited_contact_then_drift_is_reported_and_the_event_consumed(
    books: Books,
) -> None:
    edited = books.new_client("edited")
    books.settle()
    contact_id = books.edit_in_xero(edited, Name="Edited in Xero")
    assert books.sandbox.resources is not None
    table = books.sandbox.resources.state_table
    aws.client("dynamodb").put_item(
        TableName=table,
        Item={"pk": {"S": "xero-event#CONTACT"}, "sk": {"S": contact_id}, "event_type": {"S": "UPDATE"},
              "event_date_utc": {"S": iso(datetime.now(UTC))}},
    )  # fmt: skip

    result = books.reconcile(mode="xero_events")

    assert books.found(result) == {("field_drift", edited, contact_id)}
    left = aws.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "xero-event#CONTACT"}},
    )["Items"]
    assert left == []


def test_given_drift_healing_is_configured_then_an_edit_in_xero_is_overwritten_from_ignition(
    books: Books,
) -> None:
    edited = books.new_client("edited")
    books.settle()
    books.edit_in_xero(edited, EmailAddress="x@hand.test")
    handler = books.sandbox.reconcile
    assert handler is not None
    original: IntegrationConfig = handler.config
    handler.config = original.model_copy(  # type: ignore[attr-defined]
        update={"reconcile": original.reconcile.model_copy(update={"heal": {**original.reconcile.heal,
                                                                            "field_drift": "requeue"}})}
    )  # fmt: skip
    try:
        result = books.reconcile()
    finally:
        handler.config = original  # type: ignore[attr-defined]
    books.settle()

    assert result["summary"] == {"field_drift": 1} and result["healed"] == 1
    assert books.contact_of(edited)["EmailAddress"] == f"{edited}@example.test"


def test_given_the_schedule_option_then_the_sandbox_runs_reconciliations_periodically() -> None:
    from sandbox.environment import PeriodicRunner

    runs: list[int] = []
    runner = PeriodicRunner(lambda: runs.append(1), 0.05)
    runner.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while len(runs) < 2 and datetime.now(UTC) < deadline:
            httpx.Client().close()
    finally:
        runner.stop()
    assert len(runs) >= 2 and runner.failures == 0
