"""The Xero emulator's billing resources behave like Xero: totals with per-line rounding, tax type
vs account, invoice numbers, status rules, payments, history, settings and contact groups."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.clock import Clock

API = "/api.xro/2.0"
INVOICES = f"{API}/Invoices"
PAYMENTS = f"{API}/Payments"


@pytest.fixture
def contact_id(client: FlaskClient) -> str:
    seeded = client.post("/_emulator/contacts", json={"Contacts": [{"Name": "Acme Pty Ltd"}]})
    return str(seeded.get_json()["Contacts"][0]["ContactID"])


def _line(**overrides: Any) -> dict[str, Any]:
    return {"Description": "Advice", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200", **overrides}


def _invoice(contact_id: str, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": "2024-05-01",
        "DueDate": "2024-05-31",
        "LineItems": list(lines) or [_line()],
        **fields,
    }


def _put(client: FlaskClient, headers: dict[str, str], *invoices: dict[str, Any], query: str = "") -> Any:
    return client.put(f"{INVOICES}{query}", json={"Invoices": list(invoices)}, headers=headers)


def _created(client: FlaskClient, headers: dict[str, str], invoice: dict[str, Any], query: str = "") -> Any:
    response = _put(client, headers, invoice, query=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["Invoices"][0]


def _messages(response: Any, key: str = "Elements") -> list[str]:
    body = response.get_json()
    elements = body[key] if key in body else body["Elements"]
    return [m["Message"] for e in elements for m in e.get("ValidationErrors", [])]


def _pay(client: FlaskClient, headers: dict[str, str], invoice_id: str, amount: Any, **fields: Any) -> Any:
    payment = {
        "Invoice": {"InvoiceID": invoice_id},
        "Account": {"Code": "090"},
        "Date": "2024-05-10",
        "Amount": amount,
        **fields,
    }
    return client.put(PAYMENTS, json={"Payments": [payment]}, headers=headers)


# -- totals and rounding -----------------------------------------------------------------------


def test_given_three_at_33_335_exclusive_gst_with_unitdp4_when_created_then_rounded_per_line(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(
        client, headers, _invoice(contact_id, _line(Quantity=3, UnitAmount=33.335)), query="?unitdp=4"
    )
    line = invoice["LineItems"][0]
    assert (line["UnitAmount"], line["LineAmount"], line["TaxAmount"], line["TaxType"]) == (
        33.335,
        100.01,
        10.0,
        "OUTPUT",
    )
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"], invoice["AmountDue"]) == (
        100.01,
        10.0,
        110.01,
        110.01,
    )


def test_given_33_335_without_unitdp_when_created_then_unit_amount_rounded_to_2dp_first(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, _line(Quantity=3, UnitAmount=33.335)))
    assert (invoice["LineItems"][0]["UnitAmount"], invoice["LineItems"][0]["LineAmount"]) == (33.34, 100.02)
    fetched = client.get(f"{INVOICES}/{invoice['InvoiceID']}", headers=headers).get_json()["Invoices"][0]
    assert fetched["Total"] == 110.02


def test_given_inclusive_110_when_created_then_tax_10_and_subtotal_100(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(
        client, headers, _invoice(contact_id, _line(UnitAmount=110), LineAmountTypes="Inclusive", Total=999)
    )
    # The submitted Total is ignored, as Xero ignores it.
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (100.0, 10.0, 110.0)


def test_given_no_tax_and_gst_free_lines_when_created_then_no_tax(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    no_tax = _created(client, headers, _invoice(contact_id, _line(UnitAmount=55.55), LineAmountTypes="NoTax"))
    assert (no_tax["TotalTax"], no_tax["Total"], no_tax["LineItems"][0]["TaxAmount"]) == (0.0, 55.55, 0.0)
    free = _created(client, headers, _invoice(contact_id, _line(UnitAmount=80, TaxType="EXEMPTOUTPUT")))
    assert (free["TotalTax"], free["Total"]) == (0.0, 80.0)


def test_given_discount_rate_when_created_then_line_amount_discounted_and_rounded(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(
        client, headers, _invoice(contact_id, _line(Quantity=3, UnitAmount=19.99, DiscountRate=12.5))
    )
    # 59.97 x 0.875 = 52.47375 -> 52.47; GST 5.247 -> 5.25
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (52.47, 5.25, 57.72)


def test_given_foreign_currency_when_created_then_code_and_rate_kept(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, CurrencyCode="usd", CurrencyRate=0.6543))
    assert (invoice["CurrencyCode"], invoice["CurrencyRate"], invoice["Total"]) == ("USD", 0.6543, 110.0)
    default = _created(client, headers, _invoice(contact_id))
    assert (default["CurrencyCode"], default["CurrencyRate"]) == ("AUD", 1.0)


# -- validation --------------------------------------------------------------------------------


def test_given_income_account_when_expense_tax_type_used_then_xero_message(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    response = _put(client, headers, _invoice(contact_id, _line(TaxType="INPUT")))
    assert response.status_code == 400
    assert _messages(response) == ["The TaxType code 'INPUT' cannot be used with account code '200'."]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_line(AccountCode="999"), "Account code '999' is not a valid code for this document."),
        (_line(AccountCode="090"), "Account code '090' is not a valid code for this document."),
        (
            _line(TaxType="NOPE"),
            "The TaxType code NOPE does not exist or cannot be used for this type of transaction.",
        ),
        (
            _line(Tracking=[{"Name": "Region", "Option": "Perth"}]),
            "The TrackingOption 'Perth' is not valid for TrackingCategory 'Region'.",
        ),
    ],
    ids=["unknown-account", "bank-account", "unknown-tax-type", "unknown-tracking-option"],
)
def test_given_bad_line_reference_when_created_then_validation_error(
    client: FlaskClient, headers: dict[str, str], contact_id: str, line: dict[str, Any], message: str
) -> None:
    response = _put(client, headers, _invoice(contact_id, line))
    assert response.status_code == 400 and message in _messages(response)


def test_given_tracking_by_name_when_created_then_ids_resolved(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    tracking = [{"Name": "region", "Option": "sydney"}, {"Name": "Owner", "Option": "Sam"}]
    line = _created(client, headers, _invoice(contact_id, _line(Tracking=tracking)))["LineItems"][0]
    assert [(t["Name"], t["Option"]) for t in line["Tracking"]] == [("Region", "Sydney"), ("Owner", "Sam")]
    assert all(t["TrackingCategoryID"] and t["TrackingOptionID"] for t in line["Tracking"])


def test_given_added_expense_account_when_used_with_input_tax_then_accepted(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    added = client.post(
        "/_emulator/accounts",
        json={"Accounts": [{"Code": "420", "Name": "Entertainment", "Type": "EXPENSE"}]},
    )
    assert added.status_code == 200 and added.get_json()["Accounts"][0]["Class"] == "EXPENSE"
    # A bill (ACCPAY): INPUT is an expense rate, refused on a sales invoice (CanApplyToRevenue false).
    bill = _invoice(contact_id, _line(AccountCode="420", TaxType="INPUT"), Type="ACCPAY")
    invoice = _created(client, headers, bill)
    assert invoice["TotalTax"] == 10.0


def test_given_archived_or_unknown_contact_when_invoiced_then_refused(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    archived = client.post(
        "/_emulator/contacts", json={"Contacts": [{"Name": "Gone", "ContactStatus": "ARCHIVED"}]}
    )
    archived_id = archived.get_json()["Contacts"][0]["ContactID"]
    response = _put(client, headers, _invoice(archived_id))
    assert _messages(response)[0].startswith(
        "The contact with the specified contact details has been archived"
    )
    unknown = _put(client, headers, _invoice("7e1b9c0e-0000-4000-8000-000000000001"))
    assert unknown.status_code == 400


def test_given_authorised_invoice_without_due_date_when_created_then_due_date_required(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    body = _invoice(contact_id, Status="AUTHORISED")
    del body["DueDate"]
    assert "The document DueDate field must be specified." in _messages(_put(client, headers, body))
    body["Status"] = "DRAFT"
    assert _put(client, headers, body).status_code == 200


def test_given_invoice_numbers_when_created_then_generated_in_sequence_and_unique(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    first = _created(client, headers, _invoice(contact_id))
    second = _created(client, headers, _invoice(contact_id))
    assert (first["InvoiceNumber"], second["InvoiceNumber"]) == ("INV-0001", "INV-0002")
    taken = _put(client, headers, _invoice(contact_id, InvoiceNumber="inv-0001"))
    assert _messages(taken) == ["Invoice # must be unique."]
    # Bills (ACCPAY) may repeat a supplier's number.
    bills = [
        _invoice(contact_id, _line(AccountCode="400"), Type="ACCPAY", InvoiceNumber="S-1") for _ in range(2)
    ]
    assert _put(client, headers, *bills).status_code == 200


def test_given_mixed_batch_when_summarize_errors_false_then_200_with_per_element_status(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    response = _put(
        client,
        headers,
        _invoice(contact_id),
        _invoice(contact_id, _line(TaxType="INPUT")),
        query="?summarizeErrors=false",
    )
    body = response.get_json()
    assert response.status_code == 200
    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "ERROR"]
    assert body["Invoices"][1]["HasErrors"] is True and body["Invoices"][1]["ValidationErrors"]
    assert len(client.get("/_emulator/state").get_json()["Invoices"]) == 1


# -- updates and status ------------------------------------------------------------------------


def test_given_draft_when_posted_by_invoice_number_then_same_invoice_updated(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    created = _created(client, headers, _invoice(contact_id, InvoiceNumber="IGN-42"))
    update = {"InvoiceNumber": "IGN-42", "Reference": "Proposal 7", "LineItems": [_line(UnitAmount=200)]}
    updated = client.post(INVOICES, json={"Invoices": [update]}, headers=headers).get_json()["Invoices"][0]
    assert updated["InvoiceID"] == created["InvoiceID"] and updated["Reference"] == "Proposal 7"
    assert updated["Total"] == 220.0 and updated["Date"] == created["Date"]  # omitted fields kept


def test_given_authorised_invoice_without_payments_when_lines_edited_then_totals_recomputed(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    created = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    response = client.post(
        f"{INVOICES}/{created['InvoiceID']}",
        json={"LineItems": [_line(UnitAmount=50), _line(UnitAmount=25)], "DueDate": "2024-06-30"},
        headers=headers,
    )
    invoice = response.get_json()["Invoices"][0]
    assert (invoice["Status"], invoice["Total"], invoice["AmountDue"]) == ("AUTHORISED", 82.5, 82.5)


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        ("DRAFT", "SUBMITTED", True),
        ("SUBMITTED", "AUTHORISED", True),
        ("DRAFT", "DELETED", True),
        ("AUTHORISED", "VOIDED", True),
        ("AUTHORISED", "DELETED", False),
        ("AUTHORISED", "DRAFT", False),
        ("DRAFT", "PAID", False),
    ],
)
def test_given_status_when_changed_then_only_xero_transitions_allowed(
    client: FlaskClient, headers: dict[str, str], contact_id: str, start: str, target: str, allowed: bool
) -> None:
    created = _created(client, headers, _invoice(contact_id, Status=start))
    response = client.post(f"{INVOICES}/{created['InvoiceID']}", json={"Status": target}, headers=headers)
    if allowed:
        invoice = response.get_json()["Invoices"][0]
        assert invoice["Status"] == target
        assert invoice["AmountDue"] == (0.0 if target in ("VOIDED", "DELETED") else invoice["Total"])
    else:
        assert _messages(response) == ["Invoice not of valid status for modification"]


# -- payments ----------------------------------------------------------------------------------


def test_given_partial_then_full_payment_when_applied_then_paid_and_deleting_reverts(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    first = _pay(client, headers, invoice["InvoiceID"], 10.01, Reference="IGNITIONPAY 1")
    assert first.status_code == 200
    partial = client.get(f"{INVOICES}/{invoice['InvoiceID']}", headers=headers).get_json()["Invoices"][0]
    assert (partial["Status"], partial["AmountPaid"], partial["AmountDue"]) == ("AUTHORISED", 10.01, 99.99)
    second = _pay(client, headers, invoice["InvoiceNumber"] and invoice["InvoiceID"], 99.99).get_json()
    paid = client.get(f"{INVOICES}/{invoice['InvoiceNumber']}", headers=headers).get_json()["Invoices"][0]
    assert (paid["Status"], paid["AmountDue"], len(paid["Payments"])) == ("PAID", 0.0, 2)
    assert paid["FullyPaidOnDate"] == "/Date(1715299200000+0000)/"
    payment_id = second["Payments"][0]["PaymentID"]
    deleted = client.post(f"{PAYMENTS}/{payment_id}", json={"Status": "DELETED"}, headers=headers)
    assert deleted.get_json()["Payments"][0]["Status"] == "DELETED"
    reverted = client.get(f"{INVOICES}/{invoice['InvoiceID']}", headers=headers).get_json()["Invoices"][0]
    assert (reverted["Status"], reverted["AmountDue"]) == ("AUTHORISED", 99.99)


def test_given_payment_over_amount_due_when_applied_then_refused(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    response = _pay(client, headers, invoice["InvoiceID"], 110.02)
    assert _messages(response) == ["Payment amount exceeds the amount outstanding on this document."]


def test_given_draft_invoice_when_paid_then_only_authorised_documents(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id))
    response = _pay(client, headers, invoice["InvoiceID"], 10)
    assert _messages(response) == ["Payments can only be made against Authorised documents."]


def test_given_payment_to_non_bank_account_when_applied_then_refused(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    assert _messages(_pay(client, headers, invoice["InvoiceID"], 10, Account={"Code": "200"}))
    assert _messages(_pay(client, headers, invoice["InvoiceID"], 10, Account={"Code": "777"})) == [
        "Account could not be found."
    ]


def test_given_invoice_with_payment_when_voided_or_lines_edited_then_refused_but_reference_allowed(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    assert _pay(client, headers, invoice["InvoiceID"], 50).status_code == 200
    url = f"{INVOICES}/{invoice['InvoiceID']}"
    lock = "This document cannot be edited as it has a payment or credit note allocated to it."
    assert _messages(client.post(url, json={"Status": "VOIDED"}, headers=headers)) == [lock]
    assert _messages(client.post(url, json={"LineItems": [_line(UnitAmount=1)]}, headers=headers)) == [lock]
    reference = client.post(url, json={"Reference": "Paid in part"}, headers=headers)
    assert reference.status_code == 200 and reference.get_json()["Invoices"][0]["Reference"] == "Paid in part"


def test_given_foreign_invoice_when_paid_then_bank_amount_uses_rate(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(
        client, headers, _invoice(contact_id, Status="AUTHORISED", CurrencyCode="USD", CurrencyRate=0.65)
    )
    payment = _pay(client, headers, invoice["InvoiceID"], 110).get_json()["Payments"][0]
    assert (payment["CurrencyRate"], payment["BankAmount"], payment["PaymentType"]) == (
        0.65,
        169.23,
        "ACCRECPAYMENT",
    )


def test_given_payments_when_listed_by_where_and_since_then_filtered(
    client: FlaskClient, headers: dict[str, str], contact_id: str, clock: Clock
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    _pay(client, headers, invoice["InvoiceID"], 10, Reference="A")
    clock.advance(5)
    since = clock.now().strftime("%a, %d %b %Y %H:%M:%S GMT")
    clock.advance(5)
    _pay(client, headers, invoice["InvoiceID"], 20, Reference="B")
    later = client.get(PAYMENTS, headers={**headers, "If-Modified-Since": since}).get_json()["Payments"]
    assert [p["Reference"] for p in later] == ["B"]
    where = f'Invoice.InvoiceID==Guid("{invoice["InvoiceID"]}") AND Amount>15'
    found = client.get(PAYMENTS, query_string={"where": where}, headers=headers).get_json()["Payments"]
    assert [p["Reference"] for p in found] == ["B"]


# -- queries -----------------------------------------------------------------------------------


def test_given_invoices_when_if_modified_since_then_only_later_changes(
    client: FlaskClient, headers: dict[str, str], contact_id: str, clock: Clock
) -> None:
    old = _created(client, headers, _invoice(contact_id, Reference="old"))
    clock.advance(10)
    since = clock.now().strftime("%a, %d %b %Y %H:%M:%S GMT")
    clock.advance(10)
    _created(client, headers, _invoice(contact_id, Reference="new"))
    client.post(f"{INVOICES}/{old['InvoiceID']}", json={"Reference": "old, touched"}, headers=headers)
    listed = client.get(INVOICES, headers={**headers, "If-Modified-Since": since}).get_json()["Invoices"]
    assert [i["Reference"] for i in listed] == ["new", "old, touched"]


def test_given_invoices_when_filtered_then_each_filter_applies(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    other = client.post("/_emulator/contacts", json={"Contacts": [{"Name": "Other"}]}).get_json()["Contacts"][
        0
    ]
    a = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    _created(client, headers, _invoice(other["ContactID"]))

    def numbers(**query: str) -> list[str]:
        response = client.get(INVOICES, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [i["InvoiceNumber"] for i in response.get_json()["Invoices"]]

    assert numbers(Statuses="AUTHORISED") == ["INV-0001"]
    assert numbers(ContactIDs=other["ContactID"]) == ["INV-0002"]
    assert numbers(IDs=a["InvoiceID"]) == numbers(InvoiceNumbers="INV-0001") == ["INV-0001"]
    assert numbers(where='Contact.Name=="Other" AND Status=="DRAFT"') == ["INV-0002"]
    assert numbers(where='Contact.Name=="other"') == []  # == is case-sensitive (calcinai/xero-php#416)
    assert numbers(where="Total>100 AND AmountDue>=110") == ["INV-0001", "INV-0002"]
    paged = client.get(INVOICES, query_string={"page": "1"}, headers=headers).get_json()
    assert paged["pagination"]["itemCount"] == 2 and paged["Invoices"][0]["LineItems"]
    unpaged = client.get(INVOICES, headers=headers).get_json()["Invoices"]
    assert "LineItems" not in unpaged[0]


def test_given_unitdp4_invoice_when_fetched_without_unitdp_then_unit_amount_shown_at_2dp(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    created = _created(client, headers, _invoice(contact_id, _line(UnitAmount=12.3456)), query="?unitdp=4")
    url = f"{INVOICES}/{created['InvoiceID']}"
    assert client.get(url, headers=headers).get_json()["Invoices"][0]["LineItems"][0]["UnitAmount"] == 12.35
    four = client.get(f"{url}?unitdp=4", headers=headers).get_json()["Invoices"][0]["LineItems"][0]
    assert four["UnitAmount"] == 12.3456


def test_given_idempotency_key_when_invoice_put_twice_then_one_invoice(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    keyed = {**headers, "Idempotency-Key": "ign-inv-1"}
    first = client.put(INVOICES, json={"Invoices": [_invoice(contact_id)]}, headers=keyed)
    second = client.put(INVOICES, json={"Invoices": [_invoice(contact_id)]}, headers=keyed)
    assert first.get_data() == second.get_data()
    assert len(client.get("/_emulator/state").get_json()["Invoices"]) == 1


# -- history -----------------------------------------------------------------------------------


def test_given_note_when_put_on_invoice_then_listed_newest_first_with_system_records(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _created(client, headers, _invoice(contact_id, Status="AUTHORISED"))
    url = f"{INVOICES}/{invoice['InvoiceID']}/History"
    put = client.put(
        url, json={"HistoryRecords": [{"Details": "Synced from Ignition inv_123"}]}, headers=headers
    )
    assert (
        put.status_code == 200
        and put.get_json()["HistoryRecords"][0]["Details"] == "Synced from Ignition inv_123"
    )
    records = client.get(url, headers=headers).get_json()["HistoryRecords"]
    assert [(r["Changes"], r["User"]) for r in records] == [
        ("Note", "Ignition Xero Sync"),
        ("Approved", "System Generated"),
        ("Created", "System Generated"),
    ]
    assert records[0]["DateUTC"].startswith("/Date(")


def test_given_too_long_note_or_unknown_record_when_put_then_refused(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    url = f"{API}/Contacts/{contact_id}/History"
    # Xero's limit is 250 characters (developer.xero.com/documentation/api/history-and-notes).
    too_long = client.put(url, json={"HistoryRecords": [{"Details": "x" * 251}]}, headers=headers)
    assert too_long.status_code == 400 and _messages(too_long) == [
        "Details must not be more than 250 characters long."
    ]
    assert (
        client.put(url, json={"HistoryRecords": [{"Details": "x" * 250}]}, headers=headers).status_code == 200
    )
    missing = f"{PAYMENTS}/7e1b9c0e-0000-4000-8000-000000000001/History"
    assert client.get(missing, headers=headers).status_code == 404


# -- settings, groups, admin -------------------------------------------------------------------


def test_given_au_organisation_when_reading_settings_then_seeded_rates_accounts_tracking_theme(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    rates = client.get(f"{API}/TaxRates", headers=headers).get_json()["TaxRates"]
    assert {r["TaxType"]: r["EffectiveRate"] for r in rates}["OUTPUT"] == 10.0
    assert len(rates) == 8
    one = client.get(f"{API}/TaxRates", query_string={"where": 'TaxType=="EXEMPTOUTPUT"'}, headers=headers)
    assert [r["Name"] for r in one.get_json()["TaxRates"]] == ["GST Free Income"]
    accounts = client.get(f"{API}/Accounts", query_string={"where": 'Type=="BANK"'}, headers=headers)
    banks = accounts.get_json()["Accounts"]
    assert [(a.get("Code"), a["EnablePaymentsToAccount"]) for a in banks] == [
        ("090", True),
        ("091", False),
        (None, False),  # a bank account without a code, as many are (spec Account.Code)
    ]
    by_id = client.get(f"{API}/Accounts/{banks[0]['AccountID']}", headers=headers).get_json()["Accounts"]
    assert by_id[0]["Name"] == "Ignition Clearing"
    tracking = client.get(f"{API}/TrackingCategories", headers=headers).get_json()["TrackingCategories"]
    assert [c["Name"] for c in tracking] == ["Region", "Owner"]
    themes = client.get(f"{API}/BrandingThemes", headers=headers).get_json()["BrandingThemes"]
    assert [t["Name"] for t in themes] == ["Standard"]


def test_given_contact_group_when_contacts_added_then_group_and_contact_list_each_other(
    client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    created = client.put(
        f"{API}/ContactGroups", json={"ContactGroups": [{"Name": "Ignition"}]}, headers=headers
    )
    group_id = created.get_json()["ContactGroups"][0]["ContactGroupID"]
    added = client.put(
        f"{API}/ContactGroups/{group_id}/Contacts",
        json={"Contacts": [{"ContactID": contact_id}]},
        headers=headers,
    )
    assert added.status_code == 200
    group = client.get(f"{API}/ContactGroups/{group_id}", headers=headers).get_json()["ContactGroups"][0]
    assert [c["ContactID"] for c in group["Contacts"]] == [contact_id]
    contact = client.get(f"{API}/Contacts/{contact_id}", headers=headers).get_json()["Contacts"][0]
    assert [g["Name"] for g in contact["ContactGroups"]] == ["Ignition"]
    duplicate = client.put(
        f"{API}/ContactGroups", json={"ContactGroups": [{"Name": "ignition"}]}, headers=headers
    )
    assert duplicate.status_code == 400


def test_given_seeded_invoices_and_state_when_reset_then_billing_cleared_reference_data_kept(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    seeded = client.post(
        "/_emulator/invoices",
        json={
            "Invoices": [
                {
                    "Contact": {"ContactID": "7e1b9c0e-0000-4000-8000-000000000009", "Name": "Somebody"},
                    "Status": "PAID",
                    "LineItems": [{"Quantity": 3, "UnitAmount": 33.335, "AccountCode": "200"}],
                }
            ]
        },
    ).get_json()["Invoices"][0]
    assert (seeded["Total"], seeded["AmountDue"], seeded["Status"]) == (110.01, 0.0, "PAID")
    state = client.get("/_emulator/state").get_json()
    assert {"Invoices", "Payments", "History", "ContactGroups", "TaxRates", "Accounts"} <= state.keys()
    client.post("/_emulator/accounts", json={"Accounts": [{"Code": "999", "Type": "REVENUE"}]})
    client.post("/_emulator/reset")
    after = client.get("/_emulator/state").get_json()
    assert after["Invoices"] == [] and after["History"] == {}
    assert len(after["TaxRates"]) == 8 and len(after["Accounts"]) == 10
