"""The emulated organisation is a real one: a country with its own tax rates and chart, enabled
currencies and lock dates, enforced on every write as Xero does. Each test fails on the lenient
behaviour the emulator had before; the fact it checks is cited from integration-facts.md."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.clock import Clock
from sandbox.xero_emulator import XeroEmulator

API = "/api.xro/2.0"
INVOICES = f"{API}/Invoices"
PAYMENTS = f"{API}/Payments"
NOT_MODIFIABLE = "Invoice not of valid status for modification"
END_OF_YEAR_LOCK = "The document date cannot be before the end of year lock date"


@pytest.fixture
def contact_id(client: FlaskClient) -> str:
    seeded = client.post("/_emulator/contacts", json={"Contacts": [{"Name": "Kiwi Ltd"}]})
    return str(seeded.get_json()["Contacts"][0]["ContactID"])


def _invoice(contact_id: str, tax_type: str = "OUTPUT", **fields: Any) -> dict[str, Any]:
    line = {
        "Description": "Advice",
        "Quantity": 1,
        "UnitAmount": 100,
        "AccountCode": "200",
        "TaxType": tax_type,
    }
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": "2025-10-15",
        "DueDate": "2025-10-31",
        "Status": "AUTHORISED",
        "LineItems": [line],
        **fields,
    }


def _put(client: FlaskClient, headers: dict[str, str], invoice: dict[str, Any]) -> Any:
    return client.put(INVOICES, json={"Invoices": [invoice]}, headers=headers)


def _edit(client: FlaskClient, headers: dict[str, str], invoice: dict[str, Any], **fields: Any) -> Any:
    return client.post(f"{INVOICES}/{invoice['InvoiceID']}", json={"Invoices": [fields]}, headers=headers)


def _messages(response: Any) -> list[str]:
    return [m["Message"] for e in response.get_json()["Elements"] for m in e.get("ValidationErrors", [])]


def _organise(client: FlaskClient, **body: Any) -> Any:
    response = client.post("/_emulator/organisation", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _pay(
    client: FlaskClient, headers: dict[str, str], invoice_id: str, account: dict[str, str], **fields: Any
) -> Any:
    payment = {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": account,
        "Date": "2025-10-20",
        "Amount": 10,
        **fields,
    }
    return client.put(PAYMENTS, json={"Payments": [payment]}, headers=headers)


def test_given_the_default_when_organisation_and_currencies_read_then_au_with_four_currencies_no_locks(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    organisation = client.get(f"{API}/Organisation", headers=headers)
    assert organisation.status_code == 200  # was 404: the SDK found GET /Organisation missing
    (org,) = organisation.get_json()["Organisations"]
    assert (org["CountryCode"], org["BaseCurrency"], org["Version"]) == ("AU", "AUD", "AU")
    assert "PeriodLockDate" not in org and "EndOfYearLockDate" not in org  # spec: "Shown if set"
    currencies = client.get(f"{API}/Currencies", headers=headers).get_json()["Currencies"]
    assert [c["Code"] for c in currencies] == ["AUD", "NZD", "USD", "GBP"]


@pytest.mark.parametrize(
    ("country", "code", "base", "revenue_rates"),
    [
        ("NZ", "NZ", "NZD", {"OUTPUT2": 15.0, "ZERORATED": 0.0, "NONE": 0.0}),
        (
            "UK",
            "GB",
            "GBP",
            {"OUTPUT2": 20.0, "RROUTPUT": 5.0, "ZERORATEDOUTPUT": 0.0, "EXEMPTOUTPUT": 0.0, "NONE": 0.0},
        ),
    ],
)
def test_given_a_country_profile_when_tax_rates_read_then_that_countrys_own_types_and_rates(
    client: FlaskClient,
    headers: dict[str, str],
    country: str,
    code: str,
    base: str,
    revenue_rates: dict[str, float],
) -> None:
    # Tax types are per country: NZ OUTPUT2 15% / ZERORATED; UK OUTPUT2 20% / RROUTPUT 5% /
    # ZERORATEDOUTPUT (integration-facts.md, "Tax types are per country").
    shown = _organise(client, country=country)
    assert (shown["Organisation"]["CountryCode"], shown["Organisation"]["BaseCurrency"]) == (code, base)
    rates = client.get(f"{API}/TaxRates", headers=headers).get_json()["TaxRates"]
    revenue = {
        r["TaxType"]: r["EffectiveRate"] for r in rates if r["CanApplyToRevenue"] and r["Status"] == "ACTIVE"
    }
    assert revenue == revenue_rates
    assert "OUTPUT" not in {r["TaxType"] for r in rates}  # AU's type does not exist here
    assert any(r["TaxType"] == "INPUT2" and not r["CanApplyToRevenue"] for r in rates)


def test_given_an_nz_organisation_when_an_au_tax_type_is_used_then_refused_and_its_own_gst_is_15_percent(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # Tax types must exist in the organisation (GET /TaxRates lists its own; integration-facts.md).
    _organise(client, country="NZ")
    refused = _put(client, headers, _invoice(contact_id, "OUTPUT", CurrencyCode="NZD"))
    assert refused.status_code == 400
    assert _messages(refused) == [
        "The TaxType code OUTPUT does not exist or cannot be used for this type of transaction."
    ]
    created = _put(client, headers, _invoice(contact_id, "OUTPUT2", CurrencyCode="NZD")).get_json()[
        "Invoices"
    ][0]
    assert (created["TotalTax"], created["Total"]) == (15.0, 115.0)


def test_given_a_rate_not_valid_for_revenue_when_used_on_a_sales_invoice_then_refused(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # TaxRate.CanApplyToRevenue (spec): a sales invoice takes revenue rates only, even on an
    # account class the rate allows (XeroAPI/Xero-Java#336 wording).
    client.post(
        "/_emulator/tax-rates",
        json={"TaxRates": [{"TaxType": "LIABONLY", "EffectiveRate": 0, "CanApplyToRevenue": False}]},
    )
    line = {"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "860", "TaxType": "LIABONLY"}
    refused = _put(client, headers, {**_invoice(contact_id), "LineItems": [line]})
    assert _messages(refused) == [
        "The TaxType code LIABONLY does not exist or cannot be used for this type of transaction."
    ]


def test_given_a_currency_not_enabled_when_invoiced_then_refused_until_enabled(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # A document's CurrencyCode must be enabled in the organisation (integration-facts.md).
    refused = _put(client, headers, _invoice(contact_id, CurrencyCode="EUR"))
    assert refused.status_code == 400
    assert _messages(refused) == [
        "The currency EUR is not enabled for this organisation. Add it in Xero under Currencies."
    ]
    _organise(client, currencies=["AUD", "EUR"])
    assert _put(client, headers, _invoice(contact_id, CurrencyCode="EUR")).status_code == 200


def test_given_lock_dates_when_a_document_is_dated_on_or_before_them_then_refused_with_xeros_message(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # Lock dates: an invoice or payment dated on or before them is refused ("The document date
    # cannot be before the end of year lock date", waynerobinson/xeroizer#92).
    shown = _organise(client, period_lock_date="2025-09-30", end_of_year_lock_date="2025-06-30")
    assert shown["Organisation"]["PeriodLockDate"].startswith("/Date(1759190400000")
    on_year_end = _put(client, headers, _invoice(contact_id, Date="2025-06-30"))
    assert _messages(on_year_end) == [END_OF_YEAR_LOCK]
    in_period = _put(client, headers, _invoice(contact_id, Date="2025-09-30"))
    assert _messages(in_period) == ["The document date cannot be before the period lock date"]
    invoice = _put(client, headers, _invoice(contact_id, Date="2025-10-01")).get_json()["Invoices"][0]
    assert invoice["Status"] == "AUTHORISED"
    early = _pay(client, headers, invoice["InvoiceID"], {"Code": "090"}, Date="2025-09-15")
    assert early.status_code == 400 and _messages(early) == [
        "The document date cannot be before the period lock date"
    ]
    assert _pay(client, headers, invoice["InvoiceID"], {"Code": "090"}, Date="2025-10-02").status_code == 200


def test_given_an_invoice_when_its_period_is_locked_afterwards_then_it_can_no_longer_be_edited(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # Firms lock every period they have lodged (integration-facts.md): the old invoice is frozen.
    invoice = _put(client, headers, _invoice(contact_id, Date="2025-08-01")).get_json()["Invoices"][0]
    _organise(client, end_of_year_lock_date="2025-08-31")
    edit = _edit(client, headers, invoice, Reference="late")
    assert edit.status_code == 400 and _messages(edit) == [END_OF_YEAR_LOCK]


def test_given_a_paid_invoice_when_any_field_is_edited_then_not_of_valid_status_for_modification(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # Editing a PAID invoice: "Invoice not of valid status for modification" (integration-facts.md,
    # 2nd-hand); the stricter reading refuses even a Reference change.
    invoice = _put(client, headers, _invoice(contact_id)).get_json()["Invoices"][0]
    assert _pay(client, headers, invoice["InvoiceID"], {"Code": "090"}, Amount=110).status_code == 200
    edit = _edit(client, headers, invoice, Reference="new ref")
    assert edit.status_code == 400 and _messages(edit) == [NOT_MODIFIABLE]


def test_given_a_bank_account_without_a_code_when_paid_into_by_account_id_then_accepted(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    # Bank accounts often have no Code (spec: "not all accounts have a code value"): a payment's
    # Account can be {"AccountID": ...} (integration-facts.md).
    accounts = client.get(f"{API}/Accounts", query_string={"where": 'Type=="BANK"'}, headers=headers)
    codeless = next(a for a in accounts.get_json()["Accounts"] if "Code" not in a)
    invoice = _put(client, headers, _invoice(contact_id)).get_json()["Invoices"][0]
    paid = _pay(client, headers, invoice["InvoiceID"], {"AccountID": codeless["AccountID"]})
    assert paid.status_code == 200, paid.get_json()
    account = paid.get_json()["Payments"][0]["Account"]
    assert account["AccountID"] == codeless["AccountID"] and "Code" not in account


def test_given_an_unknown_key_when_configuring_the_organisation_then_400_and_nothing_changes(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post("/_emulator/organisation", json={"country": "NZ", "lock": "2025-01-01"})
    assert response.status_code == 400 and "lock" in response.get_json()["error"]
    org = client.get(f"{API}/Organisation", headers=headers).get_json()["Organisations"][0]
    assert org["CountryCode"] == "AU"


def test_given_a_country_chosen_at_start_when_reset_then_the_organisation_stays_that_country() -> None:
    emulator = XeroEmulator(clock=Clock(), country="UK")
    client = emulator.app.test_client()
    client.post(
        "/_emulator/organisation", json={"currencies": ["GBP", "EUR"], "period_lock_date": "2025-01-31"}
    )
    client.post("/_emulator/reset")
    shown = client.post("/_emulator/organisation", json={}).get_json()
    assert (shown["country"], shown["base_currency"], shown["period_lock_date"]) == ("UK", "GBP", None)
    assert shown["currencies"] == ["GBP", "AUD", "NZD", "USD"]
