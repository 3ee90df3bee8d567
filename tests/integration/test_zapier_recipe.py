"""The Zapier bridge as `docs/ignition-setup.md` writes it: its configuration block, its header and
every trigger's body template are read from the doc itself, filled with a sandbox record's values
as Zapier's field picker would, and posted to the sandbox's webhook URL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sandbox.environment import Sandbox
from shared.config import WebhookVerification
from tests import ignition_records
from tests.integration.conftest import World

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).resolve().parents[2] / "docs" / "ignition-setup.md"
ZAP = re.compile(r"^#### Zap: (?P<triggers>.+)\n\n```json\n(?P<body>.+?)\n```$", re.MULTILINE)
CONFIG = re.compile(r"```json\n(?P<block>\"runtime\": .+?)\n```", re.DOTALL)
HEADER = re.compile(r"`Content-Type` = `application/json`, and `(?P<header>[A-Za-z0-9-]+)` = the token")
PLACEHOLDER = re.compile(r"«(?P<field>[^»]+)»")


def recipe() -> tuple[WebhookVerification, str, dict[str, str]]:
    """(the verification the doc configures, the header its Zaps send, trigger -> body template)."""
    text = RECIPE.read_text(encoding="utf-8")
    config = CONFIG.search(text)
    header = HEADER.search(text)
    assert config is not None and header is not None, "the recipe's configuration or header is missing"
    verification = WebhookVerification.model_validate(
        json.loads("{" + config["block"] + "}")["runtime"]["ignition"]["webhook"]
    )
    templates: dict[str, str] = {}
    for zap in ZAP.finditer(text):
        for trigger in zap["triggers"].split(", "):
            templates[trigger] = zap["body"]
    return verification, header["header"], templates


def fill(template: str, fields: dict[str, str]) -> bytes:
    """What Zapier sends: each «Field» replaced by the trigger's value, nothing else touched."""
    missing = {m["field"] for m in PLACEHOLDER.finditer(template)} - set(fields)
    assert not missing, f"the test has no value for {missing}"
    return PLACEHOLDER.sub(lambda m: fields[m["field"]], template).encode("utf-8")


@pytest.fixture
def zapier_verification(sandbox: Sandbox) -> Iterator[WebhookVerification]:
    """The sandbox's ingest verifying as the recipe configures it; the session's scheme after."""
    verification, _, _ = recipe()
    previous = sandbox.set_webhook_verification(verification)
    try:
        yield verification
    finally:
        sandbox.wait_until_idle(timeout=60)
        sandbox.set_webhook_verification(previous)


def put_silently(world: World, resource: str, record: dict[str, Any]) -> dict[str, Any]:
    """Stored in Ignition with no webhook of its own: only the Zap tells the product."""
    stored: dict[str, Any] = next(iter(world.put_record(resource, record, deliver=False).values()))
    return stored


def test_given_the_recipe_parsed_from_the_doc_then_it_covers_every_trigger_with_a_shared_token() -> None:
    verification, header, templates = recipe()

    assert verification.scheme == "shared-token"
    assert header == verification.header
    assert set(templates) == {
        "New Client",
        "Updated Client",
        "Proposal Accepted",
        "Proposal Completed",
        "Service Accepted",
        "Invoice Paid",
        "New Payment",
        "Failed Payment",
    }


def test_given_zaps_posting_the_recipes_bodies_twice_when_synced_then_each_record_is_in_xero_once(
    world: World, zapier_verification: WebhookVerification
) -> None:
    _, header, templates = recipe()
    token = world.sandbox.info()["webhook_secret"]
    client_id, invoice_id, payment_id = world.slug("zap"), f"inv_zap_{world.tag}", f"pypay_zap_{world.tag}"
    item = {
        "description": "Advice",
        "quantity": "1",
        "unit_price": {"amount": "100.00", "currency": "AUD"},
        "tax_rate": "10",
    }

    # Given records created in Ignition with no webhook of their own,
    created = put_silently(world, "clients", world.client(client_id))
    updated = put_silently(
        world,
        "clients",
        world.client(client_id, email=f"new.{client_id}@example.test", updated_at="2026-11-02T10:00:00Z"),
    )
    invoice = put_silently(
        world,
        "invoices",
        world.invoice(invoice_id, client_id, [item], "110.00", state="paid", payment_state="paid"),
    )
    payment = put_silently(
        world,
        "payments",
        ignition_records.payment(payment_id, client_id, "110.00", invoice_id),
    )
    # and each Zap's body filled with the trigger's fields (the emulator keeps no proposals: the
    # Proposal ID is only part of the event id),
    zaps = [
        ("New Client", {"Client ID": client_id, "Updated At": created["updated_at"]}),
        ("Updated Client", {"Client ID": client_id, "Updated At": updated["updated_at"]}),
        (
            "Proposal Accepted",
            {"Proposal ID": f"prop_{world.tag}", "Client ID": client_id, "Updated At": updated["updated_at"]},
        ),
        (
            "Invoice Paid",
            {"Invoice ID": invoice_id, "Client ID": client_id, "Updated At": invoice["updated_at"]},
        ),
        (
            "New Payment",
            {"Payment ID": payment_id, "Client ID": client_id, "Created At": payment["created_at"]},
        ),
    ]
    headers = {"Content-Type": "application/json", header: token}

    # When Zapier posts each one, and posts it again (its own retry),
    answers = [
        world.post_webhook(fill(templates[trigger], fields), headers)
        for trigger, fields in zaps
        for _ in range(2)
    ]
    forged = world.post_webhook(
        fill(templates["New Client"], zaps[0][1]), {**headers, header: "not-the-token"}
    )
    world.settle()

    # Then every post was accepted, the wrong token refused,
    assert [a.status_code for a in answers] == [202] * len(answers), [a.text for a in answers]
    assert forged.status_code == 401
    # and Xero holds the contact (at its newest state), the invoice and the payment, once each.
    (contact,) = world.contacts(ContactNumber=client_id)
    assert contact["EmailAddress"] == f"new.{client_id}@example.test"
    (xero_invoice,) = world.xero_invoices(Reference=invoice_id)
    assert xero_invoice["Contact"]["ContactID"] == contact["ContactID"]
    assert Decimal(str(xero_invoice["Total"])) == Decimal("110.00")
    payments = world.xero_payments_for(xero_invoice["InvoiceID"])
    assert [Decimal(str(p["Amount"])) for p in payments] == [Decimal("110.00")]
    assert world.dead_letters_for(client_id) == []
    assert world.dead_letters_for(invoice_id) == []
    assert world.dead_letters_for(payment_id) == []
