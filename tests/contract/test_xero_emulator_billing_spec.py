"""The emulator's billing answers (Invoices, Payments, History, TaxRates, Accounts, tracking,
branding themes, contact groups) and the bodies the tests send validate against Xero's official
OpenAPI spec, strictly (no field the spec does not define), with the loader of the Contacts suite.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.xero_emulator import XeroEmulator
from tests.contract.test_xero_emulator_spec import ACCOUNTING_SPEC, ENVELOPE, Spec

API = "/api.xro/2.0"

pytestmark = pytest.mark.skipif(
    not ACCOUNTING_SPEC.is_file(), reason=f"Xero OpenAPI spec not found at {ACCOUNTING_SPEC}"
)


@pytest.fixture
def client(emulator: XeroEmulator) -> FlaskClient:
    return emulator.app.test_client()


@pytest.fixture
def contact_id(client: FlaskClient) -> str:
    seeded = client.post(
        "/_emulator/contacts", json={"Contacts": [{"Name": "Spec Co", "ContactNumber": "IGN-9"}]}
    )
    return str(seeded.get_json()["Contacts"][0]["ContactID"])


def _invoices_body(contact_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact_id},
                "Date": "2024-05-01",
                "DueDate": "2024-05-31",
                "Reference": "Proposal 7",
                "LineAmountTypes": "Exclusive",
                "CurrencyCode": "AUD",
                "LineItems": [
                    {
                        "Description": "Monthly advice",
                        "Quantity": 3,
                        "UnitAmount": 33.335,
                        "AccountCode": "200",
                        "TaxType": "OUTPUT",
                        "DiscountRate": 0,
                        "Tracking": [{"Name": "Region", "Option": "Sydney"}],
                    }
                ],
                **fields,
            }
        ]
    }


def _data(body: dict[str, Any]) -> dict[str, Any]:
    assert body["Status"] == "OK", body
    return {k: v for k, v in body.items() if k not in ENVELOPE}


def _ok(spec: Spec, response: Any, path: str, method: str) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    assert spec.errors(_data(body), spec.schema_ref(path, method, "200"), strict=True) == []
    return body


def _authorised(client: FlaskClient, headers: dict[str, str], contact_id: str) -> dict[str, Any]:
    body = _invoices_body(contact_id, Status="AUTHORISED")
    response = client.put(f"{API}/Invoices?unitdp=4", json=body, headers=headers)
    invoice: dict[str, Any] = response.get_json()["Invoices"][0]
    return invoice


def _payment(invoice: dict[str, Any], amount: int) -> dict[str, Any]:
    """A payment of ``amount`` on ``invoice`` into the seeded bank account 090."""
    return {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2024-05-02",
        "Amount": amount,
    }


def test_given_test_bodies_when_checked_then_valid_per_request_schemas(spec: Spec, contact_id: str) -> None:
    assert spec.errors(_invoices_body(contact_id), spec.schema_ref("/Invoices", "put"), strict=True) == []
    payment = {
        "Payments": [{"Invoice": {"InvoiceID": contact_id}, "Account": {"Code": "090"}, "Amount": 1.5}]
    }
    assert spec.errors(payment, spec.schema_ref("/Payments", "put"), strict=True) == []
    assert (
        spec.errors({"Status": "DELETED"}, spec.schema_ref("/Payments/{PaymentID}", "post"), strict=True)
        == []
    )


def test_given_invoice_when_created_listed_and_fetched_then_responses_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    created = _ok(
        spec,
        client.put(f"{API}/Invoices?unitdp=4", json=_invoices_body(contact_id), headers=headers),
        "/Invoices",
        "put",
    )
    invoice_id = created["Invoices"][0]["InvoiceID"]
    _ok(spec, client.get(f"{API}/Invoices?page=1", headers=headers), "/Invoices", "get")
    _ok(spec, client.get(f"{API}/Invoices?summaryOnly=true", headers=headers), "/Invoices", "get")
    _ok(spec, client.get(f"{API}/Invoices/{invoice_id}", headers=headers), "/Invoices/{InvoiceID}", "get")
    update = {"Invoices": [{"Reference": "changed", "Status": "AUTHORISED"}]}
    _ok(
        spec,
        client.post(f"{API}/Invoices/{invoice_id}", json=update, headers=headers),
        "/Invoices/{InvoiceID}",
        "post",
    )


def test_given_mixed_batch_without_summarize_errors_when_posted_then_matches_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    good = _invoices_body(contact_id)["Invoices"][0]
    bad = {**good, "LineItems": [{**good["LineItems"][0], "TaxType": "INPUT"}]}
    response = client.post(
        f"{API}/Invoices?summarizeErrors=false", json={"Invoices": [good, bad]}, headers=headers
    )
    body = _ok(spec, response, "/Invoices", "post")
    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "ERROR"]


def test_given_invalid_invoice_when_put_then_400_matches_error_schema(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    body = _invoices_body(contact_id)
    body["Invoices"][0]["LineItems"][0]["AccountCode"] = "999"
    response = client.put(f"{API}/Invoices", json=body, headers=headers)
    error = response.get_json()
    assert response.status_code == 400 and error["Type"] == "ValidationException"
    assert spec.errors(error, spec.schema_ref("/Invoices", "put", "400"), strict=False) == []
    for element in error["Elements"]:
        assert spec.errors(element, "#/components/schemas/Invoice", strict=True) == []


def test_given_payment_when_created_listed_fetched_and_deleted_then_responses_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _authorised(client, headers, contact_id)
    payment = _payment(invoice, 10)
    created = _ok(
        spec, client.put(f"{API}/Payments", json={"Payments": [payment]}, headers=headers), "/Payments", "put"
    )
    payment_id = created["Payments"][0]["PaymentID"]
    _ok(spec, client.get(f"{API}/Payments?page=1", headers=headers), "/Payments", "get")
    _ok(spec, client.get(f"{API}/Payments/{payment_id}", headers=headers), "/Payments/{PaymentID}", "get")
    _ok(
        spec,
        client.get(f"{API}/Invoices/{invoice['InvoiceID']}", headers=headers),
        "/Invoices/{InvoiceID}",
        "get",
    )
    deleted = client.post(f"{API}/Payments/{payment_id}", json={"Status": "DELETED"}, headers=headers)
    _ok(spec, deleted, "/Payments/{PaymentID}", "post")


def test_given_payment_over_amount_due_when_put_then_400_matches_error_schema(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    invoice = _authorised(client, headers, contact_id)
    payment = _payment(invoice, 1000)
    response = client.put(f"{API}/Payments", json={"Payments": [payment]}, headers=headers)
    error = response.get_json()
    assert response.status_code == 400
    assert spec.errors(error, spec.schema_ref("/Payments", "put", "400"), strict=False) == []
    assert spec.errors(error["Elements"][0], "#/components/schemas/Payment", strict=True) == []


@pytest.mark.parametrize("path", ["/Invoices", "/Payments", "/ContactGroups"])
def test_given_a_body_that_is_not_json_when_put_then_400_post_data_invalid_matches_error_schema(
    spec: Spec, client: FlaskClient, headers: dict[str, str], path: str
) -> None:
    response = client.put(
        f"{API}{path}", data="{not json", headers={**headers, "Content-Type": "application/json"}
    )

    error = response.get_json()
    assert response.status_code == 400 and error["Type"] == "PostDataInvalidException"
    assert spec.errors(error, spec.schema_ref(path, "put", "400"), strict=False) == []


@pytest.mark.parametrize("resource", ["Invoices", "Payments", "Contacts"])
def test_given_note_when_put_and_read_then_history_matches_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str, resource: str
) -> None:
    invoice = _authorised(client, headers, contact_id)
    record_id = {"Invoices": invoice["InvoiceID"], "Contacts": contact_id}.get(resource)
    if record_id is None:
        payment = {
            "Invoice": {"InvoiceID": invoice["InvoiceID"]},
            "Account": {"Code": "090"},
            "Date": "2024-05-02",
            "Amount": 1,
        }
        record_id = client.put(f"{API}/Payments", json=payment, headers=headers).get_json()["Payments"][0][
            "PaymentID"
        ]
    id_name = {"Invoices": "InvoiceID", "Payments": "PaymentID", "Contacts": "ContactID"}[resource]
    path = f"/{resource}/{{{id_name}}}/History"
    note = {"HistoryRecords": [{"Details": "Synced from Ignition"}]}
    _ok(spec, client.put(f"{API}/{resource}/{record_id}/History", json=note, headers=headers), path, "put")
    body = _ok(spec, client.get(f"{API}/{resource}/{record_id}/History", headers=headers), path, "get")
    assert body["HistoryRecords"][0]["Details"] == "Synced from Ignition"


@pytest.mark.parametrize(
    ("path", "spec_path"),
    [
        ("/TaxRates", "/TaxRates"),
        ("/TaxRates/OUTPUT", "/TaxRates/{TaxType}"),
        ("/Accounts", "/Accounts"),
        ("/TrackingCategories", "/TrackingCategories"),
        ("/BrandingThemes", "/BrandingThemes"),
        ("/ContactGroups", "/ContactGroups"),
    ],
)
def test_given_settings_when_read_then_responses_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], path: str, spec_path: str
) -> None:
    client.put(f"{API}/ContactGroups", json={"ContactGroups": [{"Name": "Ignition"}]}, headers=headers)
    body = _ok(spec, client.get(f"{API}{path}", headers=headers), spec_path, "get")
    assert next(iter(_data(body).values()))


def test_given_contact_group_when_created_and_filled_then_responses_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str], contact_id: str
) -> None:
    body = {"ContactGroups": [{"Name": "Ignition"}]}
    assert spec.errors(body, spec.schema_ref("/ContactGroups", "put"), strict=True) == []
    created = _ok(
        spec, client.put(f"{API}/ContactGroups", json=body, headers=headers), "/ContactGroups", "put"
    )
    group_id = created["ContactGroups"][0]["ContactGroupID"]
    members = {"Contacts": [{"ContactID": contact_id}]}
    path = "/ContactGroups/{ContactGroupID}/Contacts"
    _ok(
        spec,
        client.put(f"{API}/ContactGroups/{group_id}/Contacts", json=members, headers=headers),
        path,
        "put",
    )
    _ok(
        spec,
        client.get(f"{API}/ContactGroups/{group_id}", headers=headers),
        "/ContactGroups/{ContactGroupID}",
        "get",
    )
