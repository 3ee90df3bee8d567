"""Switching from Ignition's own Xero push: an invoice Ignition pushed to Xero itself (its number, none
of our keys) is reported by the reconciliation and by doctor, and never written a second time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.errors import Exit
from sandbox.environment import Sandbox
from tests.integration.conftest import World
from tests.integration.test_cli_doctor import by_name, ignition_invoice
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = pytest.mark.integration


@pytest.fixture
def pushed_by_ignition(world: World) -> Iterator[tuple[str, str]]:
    """An invoice in Ignition, and the copy Ignition's own integration pushed to Xero when the
    proposal was accepted (support.ignitionapp.com 600784: one-way push of accepted invoices)."""
    slug = f"inv_{world.tag}_native"
    ignition_invoice(world, slug)
    contact = world.seed_contacts({"Name": f"Native push {world.tag}", "ContactStatus": "ACTIVE"})[0]
    response = world.http.post(
        f"{world.sandbox.xero_url}/_emulator/invoices",
        json={"Invoices": [{
            "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": f"IGN-{slug}",
            "Reference": "Proposal accepted", "Contact": {"ContactID": contact["ContactID"]},
            "Date": "2026-11-02", "DueDate": "2026-11-16", "LineAmountTypes": "Exclusive",
            "CurrencyCode": "AUD",
            "LineItems": [{"Description": "Monthly advisory", "Quantity": "1", "UnitAmount": "100.00",
                           "AccountCode": "200", "TaxType": "OUTPUT"}],
        }]},
    )  # fmt: skip
    response.raise_for_status()
    xero_id = str(response.json()["Invoices"][0]["InvoiceID"])
    yield slug, xero_id
    # Voided afterwards, so later tests in this sandbox see no foreign invoice.
    world.http.post(
        f"{world.sandbox.xero_url}/_emulator/invoices",
        json={"Invoices": [{"InvoiceID": xero_id, "Status": "VOIDED", "InvoiceNumber": f"IGN-{slug}-void"}]},
    )


def test_given_an_invoice_pushed_by_ignitions_own_push_when_reconciling_then_reported_never_written_twice(
    world: World, sandbox: Sandbox, pushed_by_ignition: tuple[str, str], tmp_path: Path
) -> None:
    slug, xero_id = pushed_by_ignition
    number = f"IGN-{slug}"

    result = sandbox.run_reconcile({"mode": "full"})
    world.settle()

    assert result["status"] == "complete", result
    assert result["summary"].get("written_by_ignition", 0) >= 1
    # Not re-queued as missing: Xero still holds one invoice with that number, Ignition's.
    assert [i["InvoiceID"] for i in world.xero_invoices(InvoiceNumber=number)] == [xero_id]
    assert world.mapping(slug) is None

    run = run_cli("doctor", "--json", sandbox_file=write_sandbox_file(sandbox, tmp_path / "sandbox.json"))

    # A warning, not a failure. (Doctor's exit code also reflects what earlier tests in this shared
    # sandbox left in Ignition, e.g. an NZ invoice's 15% lines, so only this check is asserted.)
    assert run.code in (Exit.OK, Exit.UNHEALTHY), run.stdout + run.stderr
    check = by_name(run.json())["written_outside"]
    assert check["status"] == "warn"
    assert check["data"]["count"] >= 1
    if check["data"]["count"] <= 5:  # the examples are the first few numbers
        assert number in check["data"]["examples"]
    assert "Ignition's Xero settings" in check["action"] and "docs/ignition-setup.md" in check["action"]
    assert [i["InvoiceID"] for i in world.xero_invoices(InvoiceNumber=number)] == [xero_id]
