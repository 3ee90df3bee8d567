"""Xero webhooks: signature, intent to receive, parsing, and the state-table items they leave."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import aws
from shared.observability import Metric
from shared.xero.webhooks import (
    DynamoXeroEventStore,
    WebhookKey,
    WebhookKeyError,
    XeroWebhookAuthError,
    XeroWebhookReceiver,
    XeroWebhookResult,
    parse,
    sign,
    verify,
)
from tests.unit.moto_env import STATE_TABLE

KEY = "xero-webhook-key-0123456789abcdef"
TENANT = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f"
OTHER_TENANT = "aef86862-2015-4b6b-88bc-d89032cecc50"
CONTACT_ID = "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777"
INVOICE_ID = "55d84274-a3da-4829-a7c0-0cab601b95cc"
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def event(
    resource_id: str = CONTACT_ID,
    *,
    category: str = "CONTACT",
    event_type: str = "UPDATE",
    date: str = "2026-11-02T01:15:39.902",
    tenant: str = TENANT,
) -> dict[str, Any]:
    plural = {"CONTACT": "Contacts", "INVOICE": "Invoices", "CREDITNOTE": "CreditNotes"}.get(category, "X")
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{plural}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": date,
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant,
        "tenantType": "ORGANISATION",
    }


def delivery(*events: dict[str, Any]) -> bytes:
    return json.dumps(
        {"events": list(events), "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "S0m3r4Nd0m"}
    ).encode()


class MemoryArchive:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.objects[key] = (body, dict(metadata))


@pytest.fixture
def archive() -> MemoryArchive:
    return MemoryArchive()


@pytest.fixture
def receiver(state_table: str, archive: MemoryArchive) -> XeroWebhookReceiver:
    return XeroWebhookReceiver(
        key=lambda: WebhookKey(webhook_key=KEY, tenant_id=TENANT),
        store=DynamoXeroEventStore(STATE_TABLE),
        archive=archive,
        now=lambda: NOW,
    )


def post(
    receiver: XeroWebhookReceiver, body: bytes, *, key: str = KEY, header: str = "x-xero-signature"
) -> XeroWebhookResult:
    return receiver.handle({header: sign(body, key), "Content-Type": "application/json"}, body, "req-1")


def items() -> list[dict[str, Any]]:
    scanned = aws.client("dynamodb").scan(TableName=STATE_TABLE)["Items"]
    return sorted(
        ({name: next(iter(value.values())) for name, value in item.items()} for item in scanned),
        key=lambda item: (item["pk"], item["sk"]),
    )


# --- signature -----------------------------------------------------------------------------


def test_given_a_body_signed_with_the_key_when_verified_then_it_passes_whatever_the_header_case() -> None:
    body = delivery(event())
    for header in ("x-xero-signature", "X-Xero-Signature", "X-XERO-SIGNATURE"):
        verify({header: sign(body, KEY)}, body, KEY)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"x-xero-signature": "  "}, "missing_signature"),
        ({"x-xero-signature": "not base64!"}, "malformed_signature"),
        ({"x-xero-signature": sign(b"another body", KEY)}, "signature_mismatch"),
        ({"x-xero-signature": sign(delivery(event()), "another-key")}, "signature_mismatch"),
    ],
)
def test_given_a_missing_or_wrong_signature_when_verified_then_it_is_refused_with_a_safe_reason(
    headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(XeroWebhookAuthError) as exc:
        verify(headers, delivery(event()), KEY)
    assert exc.value.reason == reason
    assert KEY not in str(exc.value)


def test_given_a_tampered_body_when_verified_then_the_original_signature_no_longer_matches() -> None:
    body = delivery(event())
    with pytest.raises(XeroWebhookAuthError):
        verify({"x-xero-signature": sign(body, KEY)}, body.replace(b"UPDATE", b"CREATE"), KEY)


def test_given_an_empty_key_when_verifying_then_it_is_a_setup_error_not_a_pass() -> None:
    with pytest.raises(WebhookKeyError):
        verify({"x-xero-signature": "AAAA"}, b"{}", "")


# --- the secret ------------------------------------------------------------------------------


def test_given_the_secret_as_a_bare_key_or_json_when_read_then_key_and_tenant_are_known() -> None:
    assert WebhookKey.from_secret(f" {KEY}\n") == WebhookKey(webhook_key=KEY)
    assert WebhookKey.from_secret(json.dumps({"webhook_key": KEY, "tenant_id": TENANT})) == WebhookKey(
        webhook_key=KEY, tenant_id=TENANT
    )


@pytest.mark.parametrize("value", ["", "   ", '{"key": "x"}', '{"webhook_key": ""}', "{not json"])
def test_given_an_empty_or_malformed_secret_when_read_then_the_error_never_shows_its_value(
    value: str,
) -> None:
    with pytest.raises(WebhookKeyError) as exc:
        WebhookKey.from_secret(value)
    assert value.strip() == "" or value not in str(exc.value)


# --- intent to receive -----------------------------------------------------------------------


def test_given_intent_to_receive_signed_with_the_key_when_posted_then_200_with_an_empty_body(
    receiver: XeroWebhookReceiver,
) -> None:
    result = post(receiver, delivery())
    assert result.response() == {"statusCode": 200, "headers": {}, "body": ""}
    assert items() == []


def test_given_intent_to_receive_signed_wrongly_when_posted_then_401_with_an_empty_body_and_counted(
    receiver: XeroWebhookReceiver, archive: MemoryArchive
) -> None:
    result = post(receiver, delivery(), key="not-our-key")
    assert result.response() == {"statusCode": 401, "headers": {}, "body": ""}
    assert result.metrics == {Metric.XERO_WEBHOOKS_REJECTED: 1}
    unsigned = receiver.handle({}, delivery(event()), "req-2")
    assert unsigned.status == 401
    assert items() == [] and archive.objects == {}


# --- recording -------------------------------------------------------------------------------


def test_given_contact_invoice_and_credit_note_events_when_posted_then_one_item_each_with_ttl(
    receiver: XeroWebhookReceiver,
) -> None:
    body = delivery(
        event(CONTACT_ID.upper(), event_type="CREATE"),
        event(INVOICE_ID, category="INVOICE", date="2026-11-02T01:16:00"),
        event(INVOICE_ID, category="CREDITNOTE"),
    )
    result = post(receiver, body)
    assert result.response()["statusCode"] == 200 and result.response()["body"] == ""
    assert result.metrics == {Metric.XERO_EVENTS_RECORDED: 3}
    contact, credit_note, invoice = items()
    assert (contact["pk"], contact["sk"]) == ("xero-event#CONTACT", CONTACT_ID)  # canonical lower case
    assert contact["event_type"] == "CREATE"
    assert contact["event_date_utc"] == "2026-11-02T01:15:39.902Z"
    assert contact["tenant_id"] == TENANT
    assert int(contact["expires_at"]) == int((NOW + timedelta(days=30)).timestamp())
    assert (invoice["pk"], invoice["sk"], invoice["event_date_utc"]) == (
        "xero-event#INVOICE",
        INVOICE_ID,
        "2026-11-02T01:16:00.000Z",
    )
    assert credit_note["pk"] == "xero-event#CREDITNOTE"


def test_given_the_same_event_delivered_twice_when_posted_then_one_item_refreshed_not_duplicated(
    receiver: XeroWebhookReceiver,
) -> None:
    body = delivery(event())
    post(receiver, body)
    (first,) = items()
    second = post(receiver, body)
    (item,) = items()
    assert second.metrics == {Metric.XERO_EVENTS_RECORDED: 1}
    assert {k: v for k, v in item.items() if k != "revision"} == {
        k: v for k, v in first.items() if k != "revision"
    }
    assert (first["revision"], item["revision"]) == ("1", "2")


def test_given_an_older_event_after_a_newer_one_when_posted_then_the_item_keeps_the_newer(
    receiver: XeroWebhookReceiver,
) -> None:
    post(receiver, delivery(event(event_type="UPDATE", date="2026-11-02T02:00:00")))
    late = post(receiver, delivery(event(event_type="CREATE", date="2026-11-02T01:00:00")))
    (item,) = items()
    assert late.status == 200 and late.metrics == {Metric.XERO_EVENTS_STALE: 1}
    assert (item["event_type"], item["event_date_utc"]) == ("UPDATE", "2026-11-02T02:00:00.000Z")


def test_given_one_record_twice_in_a_batch_when_posted_then_the_newest_event_is_kept(
    receiver: XeroWebhookReceiver,
) -> None:
    post(
        receiver,
        delivery(
            event(event_type="UPDATE", date="2026-11-02T02:00:00"),
            event(event_type="CREATE", date="2026-11-02T01:00:00"),
        ),
    )
    (item,) = items()
    assert item["event_type"] == "UPDATE"


def test_given_an_event_of_another_organisation_when_posted_then_it_is_ignored_and_counted(
    receiver: XeroWebhookReceiver,
) -> None:
    result = post(receiver, delivery(event(tenant=OTHER_TENANT), event(INVOICE_ID, category="INVOICE")))
    assert result.status == 200
    assert result.metrics == {Metric.XERO_EVENTS_IGNORED: 1, Metric.XERO_EVENTS_RECORDED: 1}
    assert [item["pk"] for item in items()] == ["xero-event#INVOICE"]


def test_given_no_tenant_in_the_secret_when_posted_then_every_organisations_events_are_recorded(
    state_table: str, archive: MemoryArchive
) -> None:
    receiver = XeroWebhookReceiver(
        key=lambda: WebhookKey(webhook_key=KEY), store=DynamoXeroEventStore(STATE_TABLE), archive=archive
    )
    post(receiver, delivery(event(tenant=OTHER_TENANT)))
    assert [item["tenant_id"] for item in items()] == [OTHER_TENANT]


def test_given_a_subscription_event_when_posted_then_it_is_acknowledged_but_not_recorded(
    receiver: XeroWebhookReceiver,
) -> None:
    result = post(receiver, delivery(event(category="SUBSCRIPTION")))
    assert result.status == 200 and result.metrics == {Metric.XERO_EVENTS_IGNORED: 1}
    assert items() == []


# --- authentic but malformed -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"no": "events"}',
        delivery({**event(), "resourceId": "not-a-uuid"}),
        delivery({**event(), "eventType": "DELETE"}),
    ],
)
def test_given_an_authentic_body_that_is_not_understood_when_posted_then_200_and_kept_byte_for_byte(
    receiver: XeroWebhookReceiver, archive: MemoryArchive, body: bytes
) -> None:
    result = post(receiver, body)
    assert result.response() == {"statusCode": 200, "headers": {}, "body": ""}
    assert result.metrics == {Metric.XERO_WEBHOOKS_QUARANTINED: 1}
    ((key, (kept, metadata)),) = archive.objects.items()
    assert key.startswith("quarantine/xero/2026/11/02/") and kept == body
    assert metadata["request-id"] == "req-1" and metadata["reason"]
    assert items() == []


def test_given_a_timestamp_with_an_offset_when_parsed_then_it_is_stored_in_utc() -> None:
    (parsed,) = parse(delivery(event(date="2026-11-02T12:15:39.902+11:00"))).events
    assert parsed.event_date_iso == "2026-11-02T01:15:39.902Z"
