"""The emulator's Contacts and identity answers (and the bodies the tests send) validate against
Xero's official OpenAPI spec (XeroAPI/Xero-OpenAPI, ``../shared/xero-openapi``).

OpenAPI 3.0 schemas are close to JSON Schema draft 7 but not equal: ``nullable`` becomes a
``null`` type, ``x-*``/``example``/``externalDocs``/``discriminator`` keys go. ``$ref``s resolve
against the converted document. The spec never sets ``additionalProperties: false``, so a
"strict" variant adds it: a misspelt field (``ContactId``) then fails instead of passing silently.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.xero_emulator import XeroEmulator

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "xero-openapi"
ACCOUNTING_SPEC = SPEC_DIR / "xero_accounting.yaml"
IDENTITY_SPEC = SPEC_DIR / "xero-identity.yaml"
CONTACTS = "/api.xro/2.0/Contacts"
ENVELOPE = ("Id", "Status", "ProviderName", "DateTimeUTC")
_MS_DATE = re.compile(r"^/Date\(\d+(\+0000)?\)/$")
_DROP = ("example", "externalDocs", "discriminator", "xml")

pytestmark = pytest.mark.skipif(
    not ACCOUNTING_SPEC.is_file(),
    reason=f"Xero OpenAPI spec not found at {ACCOUNTING_SPEC} (a plain clone has no ../shared)",
)

# Request bodies the tests send; each is itself checked against the spec's request schema.
GOOD_BATCH: dict[str, Any] = {
    "Contacts": [
        {
            "Name": "Contract Co",
            "ContactNumber": "IGN-100",
            "EmailAddress": "accounts@contract.test",
            "FirstName": "Cora",
            "LastName": "Tract",
            "Addresses": [{"AddressType": "STREET", "AddressLine1": "1 Main St", "City": "Sydney"}],
            "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "0400 000 000"}],
            "ContactPersons": [
                {"FirstName": "Pat", "EmailAddress": "pat@contract.test", "IncludeInEmails": True}
            ],
        },
        {"Name": "Second Co"},
    ]
}
BAD_BATCH: dict[str, Any] = {
    "Contacts": [{"Name": "Valid One"}, {"Name": "Bad Email", "EmailAddress": "nope"}]
}
SEEDS: dict[str, Any] = {
    "Contacts": [
        {"Name": "Seeded Ltd", "ContactNumber": "IGN-1", "EmailAddress": "s@seeded.test"},
        {"Name": "Old Pty", "ContactStatus": "ARCHIVED"},
    ]
}


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~0.5 s instead of ~8 s
    with path.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=loader)
    return loaded


def _convert(node: Any, *, strict: bool) -> Any:
    if isinstance(node, list):
        return [_convert(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        key: _convert(value, strict=strict)
        for key, value in node.items()
        if not key.startswith("x-") and key not in _DROP and key != "nullable"
    }
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if strict and isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Spec:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self._documents = {
            strict: {"components": _convert(raw["components"], strict=strict)} for strict in (False, True)
        }

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a path-level ``$ref`` (e.g. ``#/components/responses/400Error``) in the raw spec."""
        while "$ref" in node:
            target: Any = self.raw
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def schema_ref(self, path: str, method: str, status: str | None = None) -> str:
        operation = self.raw["paths"][path][method]
        holder = self.deref(operation["responses"][status]) if status else operation["requestBody"]
        ref: str = holder["content"]["application/json"]["schema"]["$ref"]
        return ref

    def errors(self, instance: Any, ref: str, *, strict: bool) -> list[str]:
        jsonschema = pytest.importorskip("jsonschema")
        schema = {"$ref": ref, **self._documents[strict]}
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
        ]


@pytest.fixture
def client(emulator: XeroEmulator) -> FlaskClient:
    test_client = emulator.app.test_client()
    assert test_client.post("/_emulator/contacts", json=copy.deepcopy(SEEDS)).status_code == 200
    return test_client


def _assert_contacts_response(spec: Spec, body: dict[str, Any], ref: str) -> None:
    assert body["Status"] == "OK" and _MS_DATE.match(body["DateTimeUTC"]), body
    data = {k: v for k, v in body.items() if k not in ENVELOPE}
    assert spec.errors(data, ref, strict=True) == []
    for contact in body["Contacts"]:
        assert contact["HasValidationErrors"] or _MS_DATE.match(contact["UpdatedDateUTC"]), contact


@pytest.mark.parametrize("body", [GOOD_BATCH, BAD_BATCH, SEEDS], ids=["good", "bad", "seeds"])
def test_given_test_request_bodies_when_checked_then_valid_per_request_schema(spec: Spec, body: Any) -> None:
    # The bad batch is bad by Xero's rules (email format), not by the schema: it must still parse.
    ref = spec.schema_ref("/Contacts", "put")
    assert spec.errors(body, ref, strict=True) == []
    assert spec.errors(body, spec.schema_ref("/Contacts", "post"), strict=True) == []


def test_given_misspelt_field_when_checked_strictly_then_rejected(spec: Spec) -> None:
    # Guards the guard: strict validation must catch a field Xero does not have.
    bad = {"Contacts": [{"Name": "X", "ContactId": "abc", "ContactStatus": "DELETED"}]}
    assert len(spec.errors(bad, "#/components/schemas/Contacts", strict=True)) == 2


def test_given_contacts_when_listed_with_paging_then_response_matches_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get(f"{CONTACTS}?page=1&includeArchived=true", headers=headers)
    body = response.get_json()
    assert response.status_code == 200 and len(body["Contacts"]) == 2
    _assert_contacts_response(spec, body, spec.schema_ref("/Contacts", "get", "200"))
    summary = client.get(f"{CONTACTS}?summaryOnly=true", headers=headers).get_json()
    _assert_contacts_response(spec, summary, spec.schema_ref("/Contacts", "get", "200"))


def test_given_contact_number_when_fetched_then_response_matches_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str]
) -> None:
    body = client.get(f"{CONTACTS}/IGN-1", headers=headers).get_json()
    _assert_contacts_response(spec, body, spec.schema_ref("/Contacts/{ContactNumber}", "get", "200"))


def test_given_good_batch_when_put_and_updated_then_responses_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str]
) -> None:
    created = client.put(CONTACTS, json=GOOD_BATCH, headers=headers)
    assert created.status_code == 200
    _assert_contacts_response(spec, created.get_json(), spec.schema_ref("/Contacts", "put", "200"))
    contact_id = created.get_json()["Contacts"][0]["ContactID"]
    update = {
        "Contacts": [{"ContactID": contact_id, "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "1"}]}]
    }
    assert spec.errors(update, spec.schema_ref("/Contacts/{ContactID}", "post"), strict=True) == []
    updated = client.post(f"{CONTACTS}/{contact_id}", json=update, headers=headers)
    _assert_contacts_response(
        spec, updated.get_json(), spec.schema_ref("/Contacts/{ContactID}", "post", "200")
    )


def test_given_bad_batch_without_summarize_errors_when_posted_then_per_element_errors_match_spec(
    spec: Spec, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post(f"{CONTACTS}?summarizeErrors=false", json=BAD_BATCH, headers=headers)
    body = response.get_json()
    assert response.status_code == 200
    assert [c["StatusAttributeString"] for c in body["Contacts"]] == ["OK", "ERROR"]
    _assert_contacts_response(spec, body, spec.schema_ref("/Contacts", "post", "200"))


@pytest.mark.parametrize(("path", "method"), [("/Contacts", "put"), ("/Contacts/{ContactID}", "post")])
def test_given_invalid_contact_when_written_then_400_matches_error_schema(
    spec: Spec, client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator, path: str, method: str
) -> None:
    if path == "/Contacts":
        response = client.put(CONTACTS, json={"Contacts": [{"Name": "Seeded Ltd"}]}, headers=headers)
    else:
        seeded = next(c for c in emulator.state_snapshot()["Contacts"] if c["Name"] == "Old Pty")
        response = client.post(
            f"{CONTACTS}/{seeded['ContactID']}", json={"Contacts": [{"EmailAddress": "bad"}]}, headers=headers
        )
    body = response.get_json()
    assert response.status_code == 400 and body["Type"] == "ValidationException"
    assert spec.errors(body, spec.schema_ref(path, method, "400"), strict=False) == []
    for element in body["Elements"]:
        # Xero echoes the submitted contact plus ValidationErrors: it must be a valid Contact too.
        assert spec.errors(element, "#/components/schemas/Contact", strict=True) == []
        assert element["ValidationErrors"][0]["Message"]


def test_given_unsupported_where_when_listed_then_400_matches_error_schema(
    spec: Spec, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get(CONTACTS, query_string={"where": "Nope==1"}, headers=headers)
    assert response.status_code == 400
    assert spec.errors(response.get_json(), "#/components/schemas/Error", strict=True) == []


@pytest.mark.skipif(not IDENTITY_SPEC.is_file(), reason=f"identity spec not found at {IDENTITY_SPEC}")
def test_given_token_when_listing_connections_then_identity_shapes_match_spec(client: FlaskClient) -> None:
    identity = Spec(_load(IDENTITY_SPEC))
    token = client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
    ).get_json()
    assert identity.errors(token, "#/components/schemas/AccessToken", strict=False) == []
    assert isinstance(token["expires_in"], int)
    connections = client.get("/connections", headers={"Authorization": f"Bearer {token['access_token']}"})
    body = connections.get_json()
    item_ref = identity.raw["paths"]["/Connections"]["get"]["responses"]["200"]["content"]["application/json"]
    assert item_ref["schema"]["type"] == "array"
    assert [identity.errors(c, "#/components/schemas/Connection", strict=True) for c in body] == [[]]
