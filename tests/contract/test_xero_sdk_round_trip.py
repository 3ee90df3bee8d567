"""The official xero-python SDK, pointed at the emulator, deserialises every Accounting endpoint the
product uses: Contacts, Invoices, Payments, History, TaxRates, Organisation, Currencies, Accounts,
and the identity API's Connections. The SDK's models come from Xero's own OpenAPI spec, so an
answer it cannot read (or a route the emulator lacks) is a difference from the real API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from sandbox.clock import Clock
from sandbox.server import RunningServer, serve_in_thread
from sandbox.xero_emulator import XeroEmulator

sdk = pytest.importorskip(
    "xero_python", reason="xero-python (pinned in requirements-dev.txt) is not installed: run make setup"
)
from xero_python.accounting import Account as SdkAccount  # noqa: E402
from xero_python.accounting import (  # noqa: E402
    AccountingApi,
    Contact,
    Contacts,
    HistoryRecord,
    HistoryRecords,
    Invoice,
    Invoices,
    LineItem,
    Payment,
    Payments,
)
from xero_python.api_client import ApiClient, Configuration  # noqa: E402
from xero_python.api_client.oauth2 import OAuth2Token  # noqa: E402
from xero_python.identity import IdentityApi  # noqa: E402


def _text(value: Any) -> str:
    """An SDK enum's value, or the plain string some fields are deserialised to."""
    return str(getattr(value, "value", value))


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[XeroEmulator, RunningServer]]:
    emulator = XeroEmulator(clock=Clock())
    server = serve_in_thread("xero-sdk", emulator.app)
    yield emulator, server
    server.stop()


@pytest.fixture(scope="module")
def api(running: tuple[XeroEmulator, RunningServer]) -> tuple[AccountingApi, IdentityApi, str]:
    emulator, server = running
    issued = emulator.issue_token_set()
    token = {**issued, "expires_at": time.time() + int(issued.get("expires_in", 1800))}
    client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="sandbox-client-id", client_secret="x")),
        pool_threads=1,
    )
    client.oauth2_token_getter(lambda: token)
    client.oauth2_token_saver(lambda new_token: token.update(new_token))
    accounting = AccountingApi(client, base_url=f"{server.url}/api.xro/2.0")
    identity = IdentityApi(client, base_url=server.url)
    return accounting, identity, emulator.tenant_id


def test_given_the_sdk_when_reading_the_organisation_then_currencies_tax_rates_and_accounts_parse(
    api: tuple[AccountingApi, IdentityApi, str],
) -> None:
    accounting, identity, tenant = api
    (connection,) = identity.get_connections()
    assert str(connection.tenant_id) == tenant
    (organisation,) = accounting.get_organisations(tenant).organisations
    assert (_text(organisation.country_code), _text(organisation.base_currency)) == ("AU", "AUD")
    assert organisation.period_lock_date is None
    codes = [_text(c.code) for c in accounting.get_currencies(tenant).currencies]
    assert codes == ["AUD", "NZD", "USD", "GBP"]
    rates = {r.tax_type: r for r in accounting.get_tax_rates(tenant).tax_rates}
    assert Decimal(str(rates["OUTPUT"].effective_rate)) == Decimal("10")
    assert rates["OUTPUT"].can_apply_to_revenue is True and rates["INPUT"].can_apply_to_revenue is False
    accounts = accounting.get_accounts(tenant).accounts
    assert {a.code for a in accounts} >= {"090", "200", "860"}
    assert any(a.code is None and _text(a.type) == "BANK" for a in accounts)


def test_given_the_sdk_when_contacts_invoices_payments_and_history_written_and_read_then_all_parse(
    api: tuple[AccountingApi, IdentityApi, str],
) -> None:
    accounting, _identity, tenant = api
    contact = accounting.update_or_create_contacts(
        tenant,
        Contacts(
            contacts=[Contact(name="SDK Round Trip Ltd", contact_number="cli_sdk", email_address="a@b.test")]
        ),
        summarize_errors=False,
    ).contacts[0]
    assert contact.contact_id and contact.has_validation_errors in (None, False)
    found = accounting.get_contacts(tenant, where='ContactNumber=="cli_sdk"').contacts
    assert [c.contact_id for c in found] == [contact.contact_id]

    line = LineItem(
        description="Advice", quantity=1.0, unit_amount=100.0, account_code="200", tax_type="OUTPUT"
    )
    invoice = accounting.update_or_create_invoices(
        tenant,
        Invoices(
            invoices=[
                Invoice(
                    type="ACCREC",
                    contact=Contact(contact_id=contact.contact_id),
                    date=date(2026, 11, 2),
                    due_date=date(2026, 11, 16),
                    line_items=[line],
                    invoice_number="SDK-1",
                    status="AUTHORISED",
                )
            ]
        ),
        summarize_errors=False,
    ).invoices[0]
    assert float(invoice.total) == 110.0 and invoice.invoice_id
    (read,) = accounting.get_invoices(tenant, i_ds=[invoice.invoice_id]).invoices
    assert read.invoice_number == "SDK-1"
    assert accounting.get_contacts(tenant, i_ds=[contact.contact_id]).contacts[0].is_customer is True

    payment = accounting.create_payments(
        tenant,
        Payments(
            payments=[
                Payment(
                    invoice=Invoice(invoice_id=invoice.invoice_id),
                    account=SdkAccount(code="090"),
                    date=date(2026, 11, 3),
                    amount=110.0,
                    reference="Ignition pypay_sdk",
                )
            ]
        ),
        summarize_errors=False,
    ).payments[0]
    assert payment.payment_id and float(payment.amount) == 110.0
    listed = accounting.get_payments(tenant, where='Reference=="Ignition pypay_sdk"').payments
    assert [p.payment_id for p in listed] == [payment.payment_id]

    notes: list[Any] = []
    for kind, record_id in (("invoice", invoice.invoice_id), ("payment", payment.payment_id)):
        create = getattr(accounting, f"create_{kind}_history")
        create(
            tenant,
            record_id,
            HistoryRecords(history_records=[HistoryRecord(details=f"{kind} from the sync")]),
        )
        notes.extend(getattr(accounting, f"get_{kind}_history")(tenant, record_id).history_records)
    notes.extend(accounting.get_contact_history(tenant, contact.contact_id).history_records)
    assert {"invoice from the sync", "payment from the sync"} <= {n.details for n in notes}
    assert _text(accounting.get_invoice(tenant, invoice.invoice_id).invoices[0].status) == "PAID"
