"""A reason a person reads (``status``, ``replay --dry-run``, the report) quotes money as money:
two decimals and the currency, never Xero's float (``10.0``)."""

from __future__ import annotations

import pytest

from tests import ignition_records
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


def test_given_a_paid_xero_invoice_when_ignition_voids_it_then_the_dead_letter_quotes_the_amount_as_money(
    world: World,
) -> None:
    client = world.synced_client()
    invoice, record = world.synced_invoice(client)
    world.put_and_settle(
        "payments",
        ignition_records.payment(f"pypay_{world.tag}", client, "10.00", invoice),
    )

    world.put_and_settle("invoices", {**record, "state": "voided"})

    (dead,) = world.dead_letters_for(invoice)
    assert dead["category"] == "invoice_locked"
    assert "has 10.00 AUD paid: remove the payments in Xero first" in dead["reason"]
