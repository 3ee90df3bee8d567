"""A real organisation through the whole path: an NZ firm with no tax configuration, a period it has
locked, a currency it has not enabled, a bank account without a code. Each asserts Xero's final
state and, for what cannot land, the failure category and the reason a bookkeeper reads."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests import ignition_records
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


def line(price: str, tax_rate: str | None, currency: str, quantity: str = "1") -> dict[str, Any]:
    return ignition_records.line(price, quantity, tax_rate, currency=currency, description="Monthly advisory")


def settled_invoice(world: World, items: list[dict[str, Any]], total: str, **fields: Any) -> tuple[str, str]:
    """A new client synced to Xero, then one invoice of it put and settled: (client, invoice)."""
    client = world.synced_client()
    invoice = f"inv_{world.tag}"
    world.put_and_settle("invoices", world.invoice(invoice, client, items, total, **fields))
    return client, invoice


def test_given_an_nz_organisation_and_no_tax_configuration_when_gst_invoice_synced_then_it_lands_to_the_cent(
    world: World, organise: Any
) -> None:
    organise(country="NZ")
    items = [line("100.00", "15", "NZD"), line("33.33", "15", "NZD", quantity="3"), line("50.00", "0", "NZD")]
    # Xero: lines 100.00 + 99.99 + 50.00; GST per line 15.00 + 15.00 (14.9985) + 0 = 30.00.
    client, invoice = settled_invoice(world, items, "279.99", currency="NZD")

    assert world.dead_letters_for(invoice) == []
    (xero,) = world.xero_invoices(Reference=invoice)
    assert [li["TaxType"] for li in xero["LineItems"]] == ["OUTPUT2", "OUTPUT2", "ZERORATED"]
    assert (xero["CurrencyCode"], xero["Status"]) == ("NZD", "AUTHORISED")
    assert Decimal(str(xero["TotalTax"])) == Decimal("30.00")
    assert Decimal(str(xero["Total"])) == Decimal("279.99")

    # Paid into a bank account that has no code: configured by its AccountID.
    accounts = world.xero_state()["Accounts"]
    codeless = next(a for a in accounts if a["Type"] == "BANK" and "Code" not in a)
    world.sandbox.reconfigure(payments={"account_id": codeless["AccountID"]})
    try:
        payment = ignition_records.payment(f"pypay_{world.tag}", client, "279.99", invoice, currency="NZD")
        world.put_and_settle("payments", payment)
    finally:
        world.sandbox.reconfigure(payments={"account_id": None})
    (paid,) = world.xero_payments_for(xero["InvoiceID"])
    assert paid["Account"] == {"AccountID": codeless["AccountID"]}
    assert Decimal(str(paid["Amount"])) == Decimal("279.99")
    assert world.xero_invoices(Reference=invoice)[0]["Status"] == "PAID"


def test_given_a_locked_period_when_an_invoice_dated_in_it_is_synced_then_period_locked_and_readable(
    world: World, organise: Any
) -> None:
    organise(period_lock_date="2026-10-31")
    _, invoice = settled_invoice(world, [line("100.00", "10", "AUD")], "110.00", date="2026-10-15")

    assert world.xero_invoices(Reference=invoice) == []
    (dead,) = world.dead_letters_for(invoice)
    assert dead["category"] == "period_locked"
    expected = (
        f"invoice IGN-{invoice} ({invoice}) is dated 2026-10-15, before the period lock date 2026-10-31"
    )
    assert f"{expected} in Xero" in dead["reason"]

    # The reconciliation report carries it with its category and reason.
    result = world.sandbox.run_reconcile({"mode": "full"})
    body, _ = world.s3_object(result["report"]["json"])
    found = [
        d
        for d in json.loads(body)["discrepancies"]
        if d["category"] == "dead_letter" and d["ignition_id"] == invoice
    ]
    assert len(found) == 1 and "period_locked" in found[0]["detail"] and "2026-10-31" in found[0]["detail"]


def test_given_a_currency_the_organisation_has_not_enabled_when_synced_then_currency_not_enabled_naming_them(
    world: World, organise: Any
) -> None:
    organise(currencies=["AUD", "NZD"])
    _, invoice = settled_invoice(world, [line("100.00", None, "EUR")], "100.00", currency="EUR")

    assert world.xero_invoices(Reference=invoice) == []
    (dead,) = world.dead_letters_for(invoice)
    assert dead["category"] == "currency_not_enabled"
    assert "is in EUR, a currency not enabled in the Xero organisation (enabled: AUD, NZD)" in dead["reason"]
