"""The Xero emulator behaves like Xero: OAuth rotation, limits, contacts, idempotency, faults."""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from flask.testing import FlaskClient

from sandbox.clock import Clock
from sandbox.xero_emulator import DEFAULT_TENANT_ID, WhereParseError, XeroEmulator, compile_where
from shared.models.xero import parse_xero_datetime

CONTACTS = "/api.xro/2.0/Contacts"
REDIRECT = "http://localhost:8080/callback"


SECRET = "sandbox-client-secret"


def _basic(client_id: str = "sandbox-client-id", secret: str = SECRET) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _refresh(client: FlaskClient, token: str) -> Any:
    return client.post(
        "/connect/token", data={"grant_type": "refresh_token", "refresh_token": token}, headers=_basic()
    )


def _seed(client: FlaskClient, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/_emulator/contacts", json={"Contacts": list(contacts)})
    assert response.status_code == 200
    seeded: list[dict[str, Any]] = response.get_json()["Contacts"]
    return seeded


def _names(response: Any) -> list[str]:
    return [c["Name"] for c in response.get_json()["Contacts"]]


# -- OAuth ---------------------------------------------------------------------------------


def test_given_authorize_with_pkce_when_code_exchanged_with_verifier_then_token_set_issued(
    client: FlaskClient,
) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = client.get(
        "/identity/connect/authorize",
        query_string={
            "response_type": "code",
            "client_id": "sandbox-client-id",
            "redirect_uri": REDIRECT,
            "scope": "offline_access accounting.contacts",
            "state": "xyz",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert redirect.status_code == 302
    query = parse_qs(urlparse(redirect.headers["Location"]).query)
    assert query["state"] == ["xyz"]

    wrong = client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "sandbox-client-id",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": "wrong" * 10,
        },
    )
    assert wrong.get_json() == {"error": "invalid_grant"}  # and the code is now spent

    redirect = client.get(redirect.request.url)
    code = parse_qs(urlparse(redirect.headers["Location"]).query)["code"][0]
    tokens = client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "sandbox-client-id",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    ).get_json()
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer" and tokens["refresh_token"]


def test_given_unknown_scope_when_authorizing_then_redirected_with_invalid_scope(client: FlaskClient) -> None:
    response = client.get(
        "/identity/connect/authorize",
        query_string={
            "response_type": "code",
            "client_id": "sandbox-client-id",
            "redirect_uri": REDIRECT,
            "scope": "accounting.everything",
            "state": "s",
        },
    )
    assert parse_qs(urlparse(response.headers["Location"]).query) == {
        "error": ["invalid_scope"],
        "state": ["s"],
    }


def test_given_wrong_client_id_when_authorizing_then_400_without_redirect(client: FlaskClient) -> None:
    response = client.get(
        "/identity/connect/authorize",
        query_string={
            "response_type": "code",
            "client_id": "nope",
            "redirect_uri": REDIRECT,
            "scope": "openid",
        },
    )
    assert response.status_code == 400 and "Location" not in response.headers


def test_given_wrong_secret_when_requesting_token_then_invalid_client(client: FlaskClient) -> None:
    response = client.post(
        "/connect/token", data={"grant_type": "client_credentials"}, headers=_basic(secret="wrong")
    )
    assert response.status_code in (400, 401)
    assert response.get_json() == {"error": "invalid_client"}


def test_given_client_credentials_when_token_requested_then_access_token_without_refresh_token(
    client: FlaskClient,
) -> None:
    response = client.post(
        "/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
    )
    body = response.get_json()
    assert response.status_code == 200 and "refresh_token" not in body
    connections = client.get("/connections", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert connections.get_json()[0]["tenantId"] == DEFAULT_TENANT_ID


def test_given_refresh_token_when_refreshed_then_rotated_and_counted(
    client: FlaskClient, emulator: XeroEmulator
) -> None:
    first = emulator.issue_token_set()
    second = _refresh(client, first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    third = _refresh(client, second["refresh_token"]).get_json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert emulator.state_snapshot()["token_refreshes"] == 2


def test_given_used_refresh_token_when_reused_within_grace_then_same_successor_returned(
    client: FlaskClient, emulator: XeroEmulator, clock: Clock
) -> None:
    first = emulator.issue_token_set()
    lost = _refresh(client, first["refresh_token"]).get_json()
    clock.advance(29 * 60)
    retry = _refresh(client, first["refresh_token"])
    assert retry.status_code == 200
    assert retry.get_json()["refresh_token"] == lost["refresh_token"]


def test_given_used_refresh_token_when_refreshed_after_grace_then_invalid_grant(
    client: FlaskClient, emulator: XeroEmulator, clock: Clock
) -> None:
    first = emulator.issue_token_set()
    _refresh(client, first["refresh_token"])
    clock.advance(31 * 60)
    response = _refresh(client, first["refresh_token"])
    assert response.status_code == 400 and response.get_json() == {"error": "invalid_grant"}
    assert emulator.state_snapshot()["invalid_grants"] == 1


def test_given_unused_refresh_token_older_than_60_days_when_refreshed_then_invalid_grant(
    client: FlaskClient, emulator: XeroEmulator, clock: Clock
) -> None:
    first = emulator.issue_token_set()
    clock.advance(60 * 86400 + 1)
    assert _refresh(client, first["refresh_token"]).get_json() == {"error": "invalid_grant"}


def test_given_unknown_refresh_token_when_refreshed_then_invalid_grant(client: FlaskClient) -> None:
    assert _refresh(client, "never-issued").status_code == 400


def test_given_revoked_refresh_token_when_refreshed_then_invalid_grant(
    client: FlaskClient, emulator: XeroEmulator
) -> None:
    tokens = emulator.issue_token_set()
    assert (
        client.post(
            "/connect/revocation", data={"token": tokens["refresh_token"]}, headers=_basic()
        ).status_code
        == 200
    )
    assert _refresh(client, tokens["refresh_token"]).get_json() == {"error": "invalid_grant"}


# -- auth on API calls ---------------------------------------------------------------------


def test_given_access_token_older_than_30_minutes_when_calling_api_then_401_token_expired(
    client: FlaskClient, headers: dict[str, str], clock: Clock
) -> None:
    assert client.get(CONTACTS, headers=headers).status_code == 200
    clock.advance(30 * 60 + 1)
    response = client.get(CONTACTS, headers=headers)
    body = response.get_json()
    assert response.status_code == 401
    assert body["Title"] == "Unauthorized" and body["Status"] == 401
    assert body["Detail"].startswith("TokenExpired: token expired at ")


def test_given_wrong_tenant_when_calling_api_then_403_authentication_unsuccessful(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get(
        CONTACTS, headers={**headers, "xero-tenant-id": "00000000-0000-0000-0000-000000000001"}
    )
    body = response.get_json()
    assert response.status_code == 403
    assert (body["Title"], body["Status"], body["Detail"]) == ("Forbidden", 403, "AuthenticationUnsuccessful")


def test_given_no_bearer_when_calling_api_then_401(client: FlaskClient) -> None:
    assert client.get(CONTACTS, headers={"xero-tenant-id": DEFAULT_TENANT_ID}).status_code == 401


# -- rate limits ---------------------------------------------------------------------------


def test_given_minute_limit_reached_when_calling_then_429_with_retry_after_to_window_end(
    client: FlaskClient, headers: dict[str, str], clock: Clock
) -> None:
    client.post("/_emulator/limits", json={"per_minute": 3})
    clock.advance(60 - clock.time() % 60 + 10)  # 10 s into a fresh minute
    remaining = [client.get(CONTACTS, headers=headers).headers["X-MinLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    refused = client.get(CONTACTS, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert refused.headers["Retry-After"] == "50"
    assert "X-DayLimit-Remaining" in refused.headers and "X-AppMinLimit-Remaining" in refused.headers
    clock.advance(50)
    assert client.get(CONTACTS, headers=headers).status_code == 200


def test_given_day_limit_reached_when_calling_then_429_day_until_utc_midnight(
    client: FlaskClient, headers: dict[str, str], clock: Clock
) -> None:
    client.post("/_emulator/limits", json={"per_day": 1})
    assert client.get(CONTACTS, headers=headers).status_code == 200
    refused = client.get(CONTACTS, headers=headers)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "day"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    assert refused.headers["X-DayLimit-Remaining"] == "0"


def test_given_latency_when_six_calls_in_flight_then_one_refused_as_concurrent(
    emulator: XeroEmulator, headers: dict[str, str]
) -> None:
    emulator.app.test_client().post("/_emulator/limits", json={"latency_ms": 300, "per_minute": 100})
    statuses: list[tuple[int, str | None, str | None]] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        client = emulator.app.test_client()
        barrier.wait()
        response = client.get(CONTACTS, headers=headers)
        statuses.append(
            (
                response.status_code,
                response.headers.get("X-Rate-Limit-Problem"),
                response.headers.get("Retry-After"),
            )
        )

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s[0] for s in statuses) == [200] * 5 + [429]
    assert [s[1:] for s in statuses if s[0] == 429] == [("concurrent", "1")]


# -- contacts: reads -----------------------------------------------------------------------


def test_given_archived_contact_when_listing_then_excluded_unless_include_archived(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(client, {"Name": "Live"}, {"Name": "Old", "ContactStatus": "ARCHIVED"})
    assert _names(client.get(CONTACTS, headers=headers)) == ["Live"]
    assert sorted(_names(client.get(f"{CONTACTS}?includeArchived=true", headers=headers))) == ["Live", "Old"]


def test_given_contacts_when_listing_then_envelope_like_xero_and_ordered_by_updated(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(
        client,
        {"Name": "B", "UpdatedDateUTC": "/Date(1700000002000+0000)/"},
        {"Name": "A", "UpdatedDateUTC": "/Date(1700000001000+0000)/"},
    )
    body = client.get(CONTACTS, headers=headers).get_json()
    assert body["Status"] == "OK" and body["DateTimeUTC"].startswith("/Date(")
    assert [c["Name"] for c in body["Contacts"]] == ["A", "B"]
    assert "pagination" not in body


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ('Name=="Acme Ltd"', ["Acme Ltd"]),
        ('Name!="Acme Ltd"', ["Beta Co", "Gamma"]),
        ('Name=="Acme Ltd" OR Name=="Gamma"', ["Acme Ltd", "Gamma"]),
        ('(Name=="Acme Ltd" OR Name=="Gamma") AND EmailAddress!=null', ["Acme Ltd"]),
        ("EmailAddress==null", ["Beta Co", "Gamma"]),
        ('Name.ToLower()=="beta co"', ["Beta Co"]),
        ('Name.Contains("mm")', ["Gamma"]),
        ('Name.StartsWith("Ac") && ContactNumber=="C-1"', ["Acme Ltd"]),
        ('ContactID==Guid("11111111-1111-4111-8111-111111111111")', ["Beta Co"]),
        ("NOT (ContactNumber==null)", ["Acme Ltd"]),
        ("UpdatedDateUTC>=DateTime(2023,11,14,22,13,21)", ["Beta Co", "Gamma"]),
    ],
)
def test_given_where_clause_when_listing_then_only_matching_contacts(
    client: FlaskClient, headers: dict[str, str], where: str, expected: list[str]
) -> None:
    _seed(
        client,
        {
            "Name": "Acme Ltd",
            "EmailAddress": "a@acme.test",
            "ContactNumber": "C-1",
            "UpdatedDateUTC": "/Date(1700000000000+0000)/",
        },
        {
            "Name": "Beta Co",
            "ContactID": "11111111-1111-4111-8111-111111111111",
            "UpdatedDateUTC": "/Date(1700000001000+0000)/",
        },
        {"Name": "Gamma", "UpdatedDateUTC": "/Date(1700000002000+0000)/"},
    )
    response = client.get(CONTACTS, query_string={"where": where}, headers=headers)
    assert response.status_code == 200
    assert _names(response) == expected


@pytest.mark.parametrize(
    "where",
    [
        'Name=="unterminated',
        'Foo=="x"',
        'Name.Delete("x")',
        'Name=="a" AND',
        "System.IO.File==1",
        "Name = 'x'",
    ],
)
def test_given_unsupported_where_when_listing_then_400_query_parse_exception(
    client: FlaskClient, headers: dict[str, str], where: str
) -> None:
    response = client.get(CONTACTS, query_string={"where": where}, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["Type"] == "QueryParseException"


def test_given_where_parser_when_given_field_of_other_type_then_rejected() -> None:
    with pytest.raises(WhereParseError):
        compile_where('__class__=="x"', ["Name"])
    # Field names are case-insensitive; the values compared are not (see the strict tests below).
    assert compile_where('name=="x"', ["Name"])({"Name": "x"}) is True


def test_given_250_contacts_when_paging_then_pages_and_pagination_object(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(
        client,
        *({"Name": f"C{i:03}", "UpdatedDateUTC": f"/Date({1700000000000 + i}+0000)/"} for i in range(250)),
    )
    page3 = client.get(f"{CONTACTS}?page=3", headers=headers).get_json()
    assert page3["pagination"] == {"page": 3, "pageSize": 100, "pageCount": 3, "itemCount": 250}
    assert [c["Name"] for c in page3["Contacts"]] == [f"C{i:03}" for i in range(200, 250)]
    big = client.get(f"{CONTACTS}?page=1&pageSize=5000", headers=headers).get_json()
    assert big["pagination"]["pageSize"] == 1000 and len(big["Contacts"]) == 250


def test_given_if_modified_since_when_listing_then_only_later_changes(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(
        client,
        {"Name": "Before", "UpdatedDateUTC": "2024-01-01T00:00:00Z"},
        {"Name": "After", "UpdatedDateUTC": "2024-01-01T00:00:01Z"},
    )
    rfc1123 = client.get(CONTACTS, headers={**headers, "If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    iso = client.get(CONTACTS, headers={**headers, "If-Modified-Since": "2024-01-01T00:00:00"})
    assert _names(rfc1123) == ["After"] and _names(iso) == ["After"]


def test_given_search_term_ids_order_and_summary_when_listing_then_each_applies(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    seeded = _seed(
        client,
        {"Name": "Zed", "EmailAddress": "zed@example.com"},
        {"Name": "Amy", "FirstName": "Amy", "EmailAddress": "amy@other.test"},
        {"Name": "Bob"},
    )
    assert _names(client.get(f"{CONTACTS}?searchTerm=EXAMPLE", headers=headers)) == ["Zed"]
    ids = ",".join(c["ContactID"] for c in seeded[:2])
    assert sorted(_names(client.get(f"{CONTACTS}?IDs={ids}", headers=headers))) == ["Amy", "Zed"]
    assert _names(client.get(f"{CONTACTS}?order=Name DESC", headers=headers)) == ["Zed", "Bob", "Amy"]
    summary = client.get(f"{CONTACTS}?summaryOnly=true", headers=headers).get_json()["Contacts"][0]
    assert "Addresses" not in summary and "Name" in summary


def test_given_contact_number_when_getting_by_it_then_found_and_unknown_id_is_404(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(client, {"Name": "Numbered", "ContactNumber": "IGN-42", "ContactStatus": "ARCHIVED"})
    assert _names(client.get(f"{CONTACTS}/IGN-42", headers=headers)) == ["Numbered"]
    assert client.get(f"{CONTACTS}/00000000-0000-4000-8000-000000000000", headers=headers).status_code == 404


# -- contacts: writes ----------------------------------------------------------------------


def test_given_new_contact_when_put_then_server_sets_id_status_flags_and_timestamp(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    response = client.put(
        CONTACTS, json={"Contacts": [{"Name": "New Co", "IsCustomer": True}]}, headers=headers
    )
    contact = response.get_json()["Contacts"][0]
    assert response.status_code == 200
    assert (
        contact["ContactStatus"] == "ACTIVE"
        and contact["IsCustomer"] is False
        and contact["IsSupplier"] is False
    )
    assert parse_xero_datetime(contact["UpdatedDateUTC"]) is not None
    assert emulator.state_snapshot()["Contacts"][0]["ContactID"] == contact["ContactID"]


def test_given_existing_contact_when_posted_with_id_then_updated_and_omitted_fields_kept(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    (seeded,) = _seed(
        client, {"Name": "Keep", "EmailAddress": "keep@example.com", "UpdatedDateUTC": "2020-01-01"}
    )
    response = client.post(
        CONTACTS, json={"Contacts": [{"ContactID": seeded["ContactID"], "FirstName": "Kim"}]}, headers=headers
    )
    contact = response.get_json()["Contacts"][0]
    assert (contact["Name"], contact["EmailAddress"], contact["FirstName"]) == (
        "Keep",
        "keep@example.com",
        "Kim",
    )
    assert contact["UpdatedDateUTC"] != seeded["UpdatedDateUTC"]


def test_given_existing_contact_number_when_posted_without_id_then_that_contact_updated(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    (seeded,) = _seed(client, {"Name": "Orig", "ContactNumber": "IGN-1"})
    response = client.post(
        CONTACTS, json={"Contacts": [{"ContactNumber": "IGN-1", "Name": "Renamed"}]}, headers=headers
    )
    assert response.get_json()["Contacts"][0]["ContactID"] == seeded["ContactID"]
    assert [c["Name"] for c in emulator.state_snapshot()["Contacts"]] == ["Renamed"]


def test_given_existing_contact_number_when_put_then_validation_error(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(client, {"Name": "Orig", "ContactNumber": "IGN-1"})
    response = client.put(
        CONTACTS, json={"Contacts": [{"ContactNumber": "IGN-1", "Name": "Other"}]}, headers=headers
    )
    assert response.status_code == 400
    assert "IGN-1" in response.get_json()["Elements"][0]["ValidationErrors"][0]["Message"]


def test_given_active_name_taken_when_put_then_xero_unique_name_message(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(client, {"Name": "Buzz Lightyear"})
    response = client.put(CONTACTS, json={"Contacts": [{"Name": "buzz lightyear"}]}, headers=headers)
    body = response.get_json()
    assert response.status_code == 400
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (
        10,
        "ValidationException",
        "A validation exception occurred",
    )
    assert body["Elements"][0]["ValidationErrors"] == [
        {
            "Message": "The contact name buzz lightyear is already assigned to another contact. "
            "The contact name must be unique across all active contacts."
        }
    ]


def test_given_archived_contact_with_same_name_when_put_then_created(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    _seed(client, {"Name": "Reused", "ContactStatus": "ARCHIVED"})
    assert client.put(CONTACTS, json={"Contacts": [{"Name": "Reused"}]}, headers=headers).status_code == 200


def test_given_batch_with_bad_element_when_summarize_errors_false_then_200_with_per_element_status(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    batch = {"Contacts": [{"Name": "Good"}, {"EmailAddress": "no-name@example.com"}, {"Name": "x" * 256}]}
    response = client.post(f"{CONTACTS}?summarizeErrors=false", json=batch, headers=headers)
    contacts = response.get_json()["Contacts"]
    assert response.status_code == 200
    assert [c["StatusAttributeString"] for c in contacts] == ["OK", "ERROR", "ERROR"]
    assert [c["HasValidationErrors"] for c in contacts] == [False, True, True]
    assert contacts[1]["ValidationErrors"] and contacts[2]["ValidationErrors"]
    assert [c["Name"] for c in emulator.state_snapshot()["Contacts"]] == ["Good"]


def test_given_batch_with_bad_element_when_summarized_then_400_and_good_ones_still_saved(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    batch = {"Contacts": [{"Name": "Good"}, {"Name": "Bad", "EmailAddress": "not-an-email"}]}
    response = client.post(CONTACTS, json=batch, headers=headers)
    elements = response.get_json()["Elements"]
    assert response.status_code == 400
    assert [e["Name"] for e in elements] == ["Bad"]
    assert elements[0]["ValidationErrors"] == [{"Message": "Email address must be valid."}]
    assert [c["Name"] for c in emulator.state_snapshot()["Contacts"]] == ["Good"]


def test_given_six_contact_persons_when_posted_then_validation_error(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    persons = [{"FirstName": f"P{i}"} for i in range(6)]
    response = client.post(
        CONTACTS, json={"Contacts": [{"Name": "Many", "ContactPersons": persons}]}, headers=headers
    )
    assert response.status_code == 400


def test_given_unknown_contact_id_when_posted_then_validation_error_and_404_on_path(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    unknown = "22222222-2222-4222-8222-222222222222"
    in_body = client.post(CONTACTS, json={"Contacts": [{"ContactID": unknown, "Name": "X"}]}, headers=headers)
    assert in_body.status_code == 400
    on_path = client.post(f"{CONTACTS}/{unknown}", json={"Contacts": [{"Name": "X"}]}, headers=headers)
    assert on_path.status_code == 404


def test_given_active_contact_when_posted_archived_then_hidden_from_default_list(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    (seeded,) = _seed(client, {"Name": "Gone"})
    response = client.post(
        f"{CONTACTS}/{seeded['ContactID']}", json={"ContactStatus": "ARCHIVED"}, headers=headers
    )
    assert response.get_json()["Contacts"][0]["ContactStatus"] == "ARCHIVED"
    assert _names(client.get(CONTACTS, headers=headers)) == []


def test_given_malformed_json_when_posted_then_400_post_data_invalid(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post(CONTACTS, data="{nope", headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.get_json()["Type"] == "PostDataInvalidException"


# -- idempotency ---------------------------------------------------------------------------


def test_given_idempotency_key_when_same_request_replayed_then_same_response_and_no_duplicate(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    keyed = {**headers, "Idempotency-Key": "create-acme-1"}
    first = client.put(CONTACTS, json={"Contacts": [{"Name": "Acme"}]}, headers=keyed)
    replay = client.put(CONTACTS, json={"Contacts": [{"Name": "Acme"}]}, headers=keyed)
    assert replay.status_code == 200 and replay.get_data() == first.get_data()
    assert len(emulator.state_snapshot()["Contacts"]) == 1
    assert replay.headers["X-MinLimit-Remaining"] == "58"  # the replay still counted


def test_given_idempotency_key_when_reused_with_different_body_then_400(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    keyed = {**headers, "Idempotency-Key": "k1"}
    client.put(CONTACTS, json={"Contacts": [{"Name": "One"}]}, headers=keyed)
    response = client.put(CONTACTS, json={"Contacts": [{"Name": "Two"}]}, headers=keyed)
    assert response.status_code == 400


def test_given_idempotency_key_when_reused_after_six_minutes_then_executed_again(
    client: FlaskClient, headers: dict[str, str], clock: Clock
) -> None:
    keyed = {**headers, "Idempotency-Key": "k2"}
    client.put(CONTACTS, json={"Contacts": [{"Name": "Once"}]}, headers=keyed)
    clock.advance(6 * 60 + 1)
    again = client.put(CONTACTS, json={"Contacts": [{"Name": "Once"}]}, headers=keyed)
    assert again.status_code == 400  # really ran: the name is now taken


def test_given_idempotency_key_longer_than_128_when_posting_then_400(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.put(
        CONTACTS, json={"Contacts": [{"Name": "A"}]}, headers={**headers, "Idempotency-Key": "k" * 129}
    )
    assert response.status_code == 400


# -- faults and admin ----------------------------------------------------------------------


def test_given_fail_next_503_when_calling_twice_then_plain_text_maintenance_then_recovered(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    client.post("/_emulator/fail-next", json={"status": 503, "count": 2})
    responses = [client.get(CONTACTS, headers=headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [503, 503, 200]
    assert responses[0].mimetype == "text/plain" and b"maintenance" in responses[0].get_data()


def test_given_fail_next_429_when_calling_then_retry_after_and_problem_headers(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    client.post("/_emulator/fail-next", json={"status": 429, "retry_after": 7, "problem": "day"})
    response = client.get(CONTACTS, headers=headers)
    assert response.status_code == 429
    assert (response.headers["Retry-After"], response.headers["X-Rate-Limit-Problem"]) == ("7", "day")


def test_given_calls_when_state_read_then_counts_by_status_and_endpoint_without_admin_calls(
    client: FlaskClient, headers: dict[str, str], emulator: XeroEmulator
) -> None:
    client.get(CONTACTS, headers=headers)
    client.put(CONTACTS, json={"Contacts": [{"Name": "A"}]}, headers=headers)
    client.get(CONTACTS, headers={"xero-tenant-id": DEFAULT_TENANT_ID})
    requests = client.get("/_emulator/state").get_json()["requests"]
    assert requests == {
        "total": 3,
        "by_status": {"200": 2, "401": 1},
        "by_endpoint": {"GET /Contacts": 2, "PUT /Contacts": 1},
    }
    client.post("/_emulator/reset")
    state = emulator.state_snapshot()
    assert state["Contacts"] == [] and state["requests"]["total"] == 0


def test_given_clock_endpoint_when_advanced_then_shared_clock_moves(
    client: FlaskClient, clock: Clock
) -> None:
    before = clock.time()
    client.post("/_emulator/clock", json={"advance_seconds": 3600})
    assert clock.time() - before >= 3600


def test_given_seeded_contacts_when_state_read_then_archived_included_with_ids(
    client: FlaskClient, emulator: XeroEmulator, clock: Clock
) -> None:
    _seed(client, {"Name": "One"}, {"Name": "Two", "ContactStatus": "ARCHIVED"})
    contacts = emulator.state_snapshot()["Contacts"]
    assert [c["Name"] for c in contacts] == ["One", "Two"] and all(c["ContactID"] for c in contacts)
    stamp = parse_xero_datetime(contacts[0]["UpdatedDateUTC"])
    assert stamp is not None and abs(stamp.timestamp() - clock.time()) < 5


# -- strict where Xero is undocumented (integration-facts.md, "Behaviour a first real organisation
# shows"): each test fails against the lenient behaviour the emulator had before -------------------


def test_given_email_differing_in_case_when_where_equals_then_no_match_but_to_lower_matches(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # calcinai/xero-php#416: `==` found case-sensitive; Xero support advised ToLower().
    _seed(client, {"Name": "Bright Accounting", "EmailAddress": "HELLO@bright.test"})

    def where(expression: str) -> list[str]:
        response = client.get(CONTACTS, query_string={"where": expression}, headers=headers)
        assert response.status_code == 200
        return _names(response)

    assert where('EmailAddress=="hello@bright.test"') == []
    assert where('Name=="bright accounting"') == []
    assert where('Name.Contains("bright")') == []
    assert where('EmailAddress.ToLower()=="hello@bright.test"') == ["Bright Accounting"]
    assert where('Name.ToUpper()=="BRIGHT ACCOUNTING"') == ["Bright Accounting"]
    assert where('Name.ToLower().StartsWith("bright")') == ["Bright Accounting"]
    assert where('EmailAddress=="HELLO@bright.test"') == ["Bright Accounting"]


def test_given_guid_in_any_case_when_where_compares_contact_id_then_it_matches(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    (seeded,) = _seed(client, {"Name": "Guid Co"})
    upper = str(seeded["ContactID"]).upper()
    response = client.get(CONTACTS, query_string={"where": f'ContactID==Guid("{upper}")'}, headers=headers)
    assert _names(response) == ["Guid Co"]


@pytest.mark.parametrize(
    "where",
    ['Name=="O""Brien Partners"', 'Name=="O\\"Brien"', 'Name=="Back\\slash"', 'Name=="ends with\\"'],
)
def test_given_quote_or_backslash_inside_a_where_string_then_400_query_parse_exception(
    client: FlaskClient, headers: dict[str, str], where: str
) -> None:
    # XeroAPI/Xero-Java#347: a `"` inside a where string value is a QueryParseException (no escape
    # works); `\` is unsafe too, so the emulator refuses it (the stricter reading).
    _seed(client, {"Name": 'O"Brien Partners'}, {"Name": "Back\\slash"})
    response = client.get(CONTACTS, query_string={"where": where}, headers=headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["Type"] == "QueryParseException" and body["ErrorNumber"] == 16 and body["Message"]


def test_given_search_term_in_another_case_when_listing_then_name_email_number_and_names_are_searched(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # Spec, GET /Contacts searchTerm: "a case-insensitive text search across the Name, FirstName,
    # LastName, ContactNumber and EmailAddress fields"; plain text, so quotes and backslashes are fine.
    _seed(
        client,
        {"Name": 'O"Brien Partners \\ Co 🦘', "EmailAddress": "Team@OBrien.test"},
        {"Name": "Person", "FirstName": "Ada", "LastName": "LOVELACE", "ContactNumber": "CLI_77"},
        {"Name": "Other", "Website": "obrien.test"},
    )

    def search(term: str) -> list[str]:
        return _names(client.get(CONTACTS, query_string={"searchTerm": term}, headers=headers))

    assert search('o"brien partners \\ co 🦘') == ['O"Brien Partners \\ Co 🦘']
    assert search("team@obrien.TEST") == ['O"Brien Partners \\ Co 🦘']
    assert search("lovelace") == search("ada") == search("cli_77") == ["Person"]


def test_given_51_ids_when_listing_then_404_resource_not_found_and_50_are_answered(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # XeroAPI/Xero-OpenAPI#534 (also xero-node#404): more than about 50 IDs answers 404.
    seeded = _seed(client, *({"Name": f"C{i}"} for i in range(51)))
    ids = [c["ContactID"] for c in seeded]
    fifty = client.get(CONTACTS, query_string={"IDs": ",".join(ids[:50])}, headers=headers)
    assert fifty.status_code == 200 and len(fifty.get_json()["Contacts"]) == 50
    over = client.get(CONTACTS, query_string={"IDs": ",".join(ids)}, headers=headers)
    assert over.status_code == 404
    assert over.get_data(as_text=True) == "The resource you're looking for cannot be found"


def test_given_url_over_2000_characters_when_calling_then_404_whatever_the_parameter(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # Xero-NetStandard#471 / XeroAPI/Xero-OpenAPI#534: a URL over about 2,000 characters answers 404.
    # Measured as if sent to https://api.xero.com (the longer of that and the sandbox's own origin).
    base = "https://api.xero.com/api.xro/2.0/Contacts?searchTerm="
    fits = "a" * (2000 - len(base))
    assert client.get(CONTACTS, query_string={"searchTerm": fits}, headers=headers).status_code == 200
    too_long = client.get(CONTACTS, query_string={"searchTerm": fits + "a"}, headers=headers)
    assert too_long.status_code == 404
    where = " OR ".join(f'Name=="{i}"' for i in range(200))
    assert client.get(CONTACTS, query_string={"where": where}, headers=headers).status_code == 404


def test_given_paths_in_another_case_when_called_then_routed_like_xero(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # Xero's paths are not case-sensitive: xero-identity.yaml itself spells /Connections/{id}, and
    # the official SDKs call /Connections while Xero's docs write /connections.
    _seed(client, {"Name": "Cased"})
    assert _names(client.get("/api.xro/2.0/contacts", headers=headers)) == ["Cased"]
    assert _names(client.get("/API.XRO/2.0/CONTACTS", headers=headers)) == ["Cased"]
    connections = client.get("/Connections", headers=headers)
    assert connections.status_code == 200 and connections.get_json()[0]["tenantId"] == DEFAULT_TENANT_ID


def test_given_connection_when_deleted_then_204_gone_from_connections_and_api_refused_until_reauthorised(
    client: FlaskClient, emulator: XeroEmulator, headers: dict[str, str]
) -> None:
    # xero-identity.yaml, deleteConnection: DELETE /Connections/{id} answers 204, unknown id 404.
    (connection,) = client.get("/connections", headers=headers).get_json()
    unknown = client.delete("/Connections/00000000-0000-4000-8000-000000000000", headers=headers)
    assert unknown.status_code == 404
    assert client.delete(f"/Connections/{connection['id']}", headers=headers).status_code == 204
    assert client.get("/connections", headers=headers).get_json() == []
    assert client.get(CONTACTS, headers=headers).status_code == 403
    assert client.delete(f"/connections/{connection['id']}", headers=headers).status_code == 404

    fresh = emulator.issue_token_set()
    again = {**headers, "Authorization": f"Bearer {fresh['access_token']}"}
    assert client.get(CONTACTS, headers=again).status_code == 200


def test_given_contact_with_a_sales_invoice_when_read_then_is_customer_true_and_filterable(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    # Spec, Contact.IsCustomer: "automatically set when an accounts receivable invoice is generated
    # against this contact".
    customer, supplier = _seed(client, {"Name": "Buys From Us"}, {"Name": "Sells To Us"})
    invoices = [
        {"Type": "ACCREC", "Contact": {"ContactID": customer["ContactID"]}, "Status": "AUTHORISED"},
        {"Type": "ACCPAY", "Contact": {"ContactID": supplier["ContactID"]}, "Status": "AUTHORISED"},
    ]
    assert client.post("/_emulator/invoices", json={"Invoices": invoices}).status_code == 200

    listed = {
        c["Name"]: c["IsCustomer"] for c in client.get(CONTACTS, headers=headers).get_json()["Contacts"]
    }
    assert listed == {"Buys From Us": True, "Sells To Us": False}
    one = client.get(f"{CONTACTS}/{customer['ContactID']}", headers=headers).get_json()["Contacts"][0]
    assert one["IsCustomer"] is True
    assert _names(client.get(CONTACTS, query_string={"where": "IsCustomer==true"}, headers=headers)) == [
        "Buys From Us"
    ]
