"""A reason a person reads (``status``, ``replay --dry-run``, the report) quotes money as money:
two decimals and the currency, never Xero's float (``10.0``)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import World
from tests.integration.test_billing_end_to_end import line, synced_client

pytestmark = pytest.mark.integration


def test_given_a_paid_xero_invoice_when_ignition_voids_it_then_the_dead_letter_quotes_the_amount_as_money(
    world: World,
) -> None:
    client = synced_client(world)
    invoice = f"inv_{world.tag}"
    record = world.invoice(invoice, client, [line("100.00")], "110.00")
    world.put_record("invoices", record)
    world.settle()
    world.put_record(
        "payments",
        {
            "slug": f"pypay_{world.tag}",
            "state": "succeeded",
            "client": {"slug": client},
            "amount": {"amount": "10.00", "currency": "AUD"},
            "invoices": [{"slug": invoice}],
            "created_at": "2026-11-03T09:00:00Z",
        },
    )
    world.settle()

    world.put_record("invoices", {**record, "state": "voided"})
    world.settle()

    (dead,) = world.dead_letters_for(invoice)
    assert dead["category"] == "invoice_locked"
    assert "has 10.00 AUD paid: remove the payments in Xero first" in dead["reason"]
