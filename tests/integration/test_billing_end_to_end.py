"""Invoice and payment sync scenarios through the whole path: Ignition -> Xero, to the cent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests import ignition_records
from tests.ignition_records import line
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


def test_given_invoice_for_a_client_not_yet_in_xero_then_contact_and_invoice_are_created(
    world: World,
) -> None:
    client = world.slug()
    world.put_client(world.client(client), deliver=False)  # the client's own webhook was lost

    invoice, _ = world.synced_invoice(client)

    (contact,) = world.contacts(ContactNumber=client)
    xero = world.only_invoice(invoice)
    assert xero["Contact"]["ContactID"] == contact["ContactID"]
    assert (xero["Type"], xero["Status"], xero["InvoiceNumber"]) == ("ACCREC", "AUTHORISED", f"IGN-{invoice}")
    assert Decimal(str(xero["Total"])) == Decimal("110.00")
    assert world.dead_letters_for(invoice) == []


@pytest.mark.parametrize(
    ("items", "total", "inclusive", "amount_types", "tax"),
    [
        ([line("200.00"), line("50.00", tax_rate="0")], "270.00", False, "Exclusive", "20.00"),
        ([line("110.00")], "110.00", True, "Inclusive", "10.00"),
        ([line("80.00", tax_rate=None)], "80.00", False, "NoTax", "0.00"),
    ],
    ids=["gst-exclusive-and-free", "gst-inclusive", "no-tax"],
)
def test_given_gst_variants_when_synced_then_xero_tax_and_total_match_ignition(
    world: World, items: list[dict[str, Any]], total: str, inclusive: bool, amount_types: str, tax: str
) -> None:
    client = world.synced_client()
    invoice = f"inv_{world.tag}"

    world.put_and_settle("invoices", world.invoice(invoice, client, items, total, tax_inclusive=inclusive))

    xero = world.only_invoice(invoice)
    assert xero["LineAmountTypes"] == amount_types
    assert Decimal(str(xero["TotalTax"])) == Decimal(tax)
    assert Decimal(str(xero["Total"])) == Decimal(total)


def test_given_multi_currency_invoice_then_xero_keeps_its_currency(world: World) -> None:
    client = world.synced_client()
    invoice = f"inv_{world.tag}"

    world.put_and_settle(
        "invoices",
        world.invoice(
            invoice, client, [line("500.00", tax_rate="0", currency="NZD")], "500.00", currency="NZD"
        ),
    )

    xero = world.only_invoice(invoice)
    assert xero["CurrencyCode"] == "NZD" and Decimal(str(xero["Total"])) == Decimal("500.00")


def test_given_three_times_33_335_then_xero_rounds_per_line_and_the_total_still_matches(world: World) -> None:
    client = world.synced_client()
    exact, rounded_once = f"inv_a_{world.tag}", f"inv_b_{world.tag}"
    # Xero: line 100.005 -> 100.01, GST 10.00, total 110.01 (4-dp unit price kept with unitdp=4).
    world.put_record("invoices", world.invoice(exact, client, [line("33.335", quantity="3")], "110.01"))
    # Ignition rounding once on the sum of three 0.05 lines: 0.17, Xero per line: 0.18 -> rounding line.
    world.put_and_settle("invoices", world.invoice(rounded_once, client, [line("0.05")] * 3, "0.17"))

    first, second = world.only_invoice(exact), world.only_invoice(rounded_once)
    assert Decimal(str(first["Total"])) == Decimal("110.01")
    assert Decimal(str(first["LineItems"][0]["UnitAmount"])) == Decimal("33.335")
    assert Decimal(str(second["Total"])) == Decimal("0.17")
    assert second["LineItems"][-1]["Description"].startswith("Rounding")


def test_given_partial_then_full_payment_then_invoice_is_paid_exactly_once_each(world: World) -> None:
    client = world.synced_client()
    invoice, _ = world.synced_invoice(client)
    xero_id = world.only_invoice(invoice)["InvoiceID"]

    for n, amount in enumerate(["40.00", "70.00"], start=1):
        world.put_and_settle(
            "payments",
            {
                "slug": f"pypay_{n}_{world.tag}",
                "state": "succeeded",
                "client": {"slug": client},
                "amount": {"amount": amount, "currency": "AUD"},
                "invoices": [{"slug": invoice}],
                "created_at": "2026-11-03T09:00:00Z",
            },
        )

    payments = world.xero_payments_for(xero_id)
    assert sorted(Decimal(str(p["Amount"])) for p in payments) == [Decimal("40.00"), Decimal("70.00")]
    assert world.only_invoice(invoice)["Status"] == "PAID"


def test_given_one_payment_over_two_invoices_then_each_gets_its_part(world: World) -> None:
    client = world.synced_client()
    first, second = f"inv_1_{world.tag}", f"inv_2_{world.tag}"
    world.put_record("invoices", world.invoice(first, client, [line("100.00")], "110.00"))
    world.put_and_settle("invoices", world.invoice(second, client, [line("50.00")], "55.00"))

    world.put_and_settle(
        "payments",
        ignition_records.payment(f"pypay_{world.tag}", client, "165.00", first, second),
    )

    assert [
        Decimal(str(p["Amount"])) for p in world.xero_payments_for(world.only_invoice(first)["InvoiceID"])
    ] == [Decimal("110.00")]
    assert [
        Decimal(str(p["Amount"])) for p in world.xero_payments_for(world.only_invoice(second)["InvoiceID"])
    ] == [Decimal("55.00")]


def test_given_invoice_and_payment_delivered_three_times_then_one_of_each_in_xero(world: World) -> None:
    client = world.synced_client()
    invoice, payment = f"inv_{world.tag}", f"pypay_{world.tag}"
    invoice_delivery = world.put_record("invoices", world.invoice(invoice, client, [line("10.00")], "11.00"))[
        "delivery"
    ]
    payment_delivery = world.put_record(
        "payments",
        ignition_records.payment(payment, client, "11.00", invoice),
    )["delivery"]
    for _ in range(2):
        world.redeliver(invoice_delivery["event_id"])
        world.redeliver(payment_delivery["event_id"])
    world.settle()

    (xero_invoice,) = world.xero_invoices(Reference=invoice)
    assert len(world.xero_payments_for(xero_invoice["InvoiceID"])) == 1


def test_given_authorised_invoice_when_changed_in_ignition_then_updated_unless_a_payment_locks_it(
    world: World,
) -> None:
    client = world.synced_client()
    invoice, record = world.synced_invoice(client)

    world.put_and_settle(
        "invoices", {**record, "items": [line("120.00")], "amount": {"total": "132.00", "currency": "AUD"}}
    )
    assert Decimal(str(world.only_invoice(invoice)["Total"])) == Decimal("132.00")

    world.put_and_settle(
        "payments",
        ignition_records.payment(f"pypay_{world.tag}", client, "10.00", invoice),
    )
    world.put_and_settle(
        "invoices", {**record, "items": [line("150.00")], "amount": {"total": "165.00", "currency": "AUD"}}
    )

    assert Decimal(str(world.only_invoice(invoice)["Total"])) == Decimal("132.00")
    (dead,) = world.dead_letters_for(invoice)
    assert dead["category"] == "invoice_locked"


def test_given_tax_rule_xero_rejects_when_fixed_and_replayed_then_the_invoice_lands(world: World) -> None:
    client = world.synced_client()
    invoice = f"inv_{world.tag}"
    # A wrong rule: GST-on-income mapped to an expense account Xero will not take it on.
    with world.advertising_account("400"):
        world.put_advertising_invoice(invoice, client)
        (dead,) = world.dead_letters_for(invoice)
        assert dead["category"] == "xero_validation"
        assert "cannot be used with account code" in dead["reason"]
        assert world.xero_invoices(Reference=invoice) == []

    with world.advertising_account("260"):
        assert world.redrive_dead_letters() >= 1
        world.settle()

    xero = world.only_invoice(invoice)
    assert xero["LineItems"][0]["AccountCode"] == "260"
    assert world.dead_letters_for(invoice) == []
