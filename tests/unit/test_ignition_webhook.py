"""Ignition webhook adapter: signing, verification, parsing, normalisation to SyncEvent."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import IgnitionConfig, RecordType, WebhookVerification
from shared.ignition import exact_json
from shared.ignition.webhook import (
    IgnitionEnvelope,
    WebhookAuthError,
    WebhookPayloadError,
    WebhookTooLargeError,
    parse_webhook,
    sign_webhook,
    to_sync_event,
    verify_webhook,
)
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice, IgnitionPayment
from shared.money import parse_amount
from tests.ignition_records import line

SECRET = "whsec-test-0123456789"
NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
BODY = b'{"id":"evt_1","type":"client.updated","occurred_at":"2025-03-01T09:29:00Z","data":{"slug":"cli_1"}}'

SCHEMES = {
    "hex": WebhookVerification(),
    "base64": WebhookVerification(encoding="base64"),
    "prefixed-hex": WebhookVerification(prefix="sha256="),
    "timestamped": WebhookVerification(timestamp_header="X-Ignition-Timestamp", encoding="base64"),
    "shared-token": WebhookVerification(scheme="shared-token", header="X-Bridge-Token"),
}


def client_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "slug": "cli_42",
        "name": "Nguyen, Anh",
        "email": "anh@example.com",
        "state": "active",
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-03-01T09:00:00Z",
    }
    return {**record, **overrides}


def envelope_body(**overrides: Any) -> bytes:
    document: dict[str, Any] = {
        "id": "evt_abc",
        "type": "client.updated",
        "occurred_at": "2025-03-01T09:00:00Z",
        "data": client_record(),
    }
    document.update(overrides)
    return json.dumps(document).encode()


def sync_event_for(body: bytes, config: IgnitionConfig | None = None) -> Any:
    cfg = config or IgnitionConfig()
    return to_sync_event(
        parse_webhook(body, cfg),
        config=cfg,
        received_at=NOW,
        payload_sha256=hashlib.sha256(body).hexdigest(),
        archive_key="raw/evt_abc.json",
        correlation_id="corr-1",
    )


# -- verification -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
def test_given_a_signed_body_when_verified_then_it_is_accepted(scheme: WebhookVerification) -> None:
    headers = sign_webhook(BODY, SECRET, scheme, timestamp=NOW)

    verify_webhook(headers, BODY, SECRET, scheme, now=NOW)


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
def test_given_lowercased_header_names_when_verified_then_it_is_accepted(scheme: WebhookVerification) -> None:
    headers = {k.lower(): v for k, v in sign_webhook(BODY, SECRET, scheme, timestamp=NOW).items()}

    verify_webhook(headers, BODY, SECRET, scheme, now=NOW)


def test_given_the_prefixed_scheme_when_signed_then_the_header_carries_the_prefix_and_hex() -> None:
    headers = sign_webhook(BODY, SECRET, SCHEMES["prefixed-hex"])

    value = headers["X-Ignition-Signature"]
    assert value.startswith("sha256=")
    assert len(value.removeprefix("sha256=")) == 64


@pytest.mark.parametrize("name", ["hex", "base64", "prefixed-hex", "timestamped"])
def test_given_a_tampered_body_when_verified_then_signature_mismatch(name: str) -> None:
    scheme = SCHEMES[name]
    headers = sign_webhook(BODY, SECRET, scheme, timestamp=NOW)

    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(headers, BODY.replace(b"cli_1", b"cli_2"), SECRET, scheme, now=NOW)

    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
def test_given_the_wrong_secret_when_verified_then_rejected_without_leaking_secrets(
    scheme: WebhookVerification,
) -> None:
    headers = sign_webhook(BODY, "another-secret", scheme, timestamp=NOW)

    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(headers, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason in ("signature_mismatch", "token_mismatch")
    message = str(caught.value)
    assert SECRET not in message and "another-secret" not in message
    assert all(v.removeprefix("sha256=") not in message for v in headers.values())


@pytest.mark.parametrize("scheme", SCHEMES.values(), ids=SCHEMES.keys())
def test_given_no_signature_header_when_verified_then_missing_signature(scheme: WebhookVerification) -> None:
    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook({"Content-Type": "application/json"}, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason == "missing_signature"


@pytest.mark.parametrize(
    ("value", "scheme"),
    [
        ("zz-not-hex", SCHEMES["hex"]),
        ("not base64!!", SCHEMES["base64"]),
        ("a" * 64, SCHEMES["prefixed-hex"]),  # prefix missing
    ],
    ids=["bad-hex", "bad-base64", "missing-prefix"],
)
def test_given_an_undecodable_signature_when_verified_then_malformed(
    value: str, scheme: WebhookVerification
) -> None:
    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook({scheme.header: value}, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason == "malformed_signature"


def test_given_an_uppercase_prefix_and_hex_when_verified_then_accepted() -> None:
    scheme = SCHEMES["prefixed-hex"]
    signed = sign_webhook(BODY, SECRET, scheme)["X-Ignition-Signature"]

    verify_webhook({"x-ignition-signature": signed.upper()}, BODY, SECRET, scheme, now=NOW)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(timedelta(seconds=-301), "stale_timestamp"), (timedelta(hours=1), "future_timestamp")],
    ids=["older_than_max_age", "far_in_the_future"],
)
def test_given_a_timestamp_outside_the_allowed_window_when_verified_then_rejected_with_why(
    offset: timedelta, reason: str
) -> None:
    scheme = SCHEMES["timestamped"]
    headers = sign_webhook(BODY, SECRET, scheme, timestamp=NOW + offset)

    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(headers, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason == reason


def test_given_a_timestamp_within_max_age_when_verified_then_accepted() -> None:
    scheme = SCHEMES["timestamped"]
    headers = sign_webhook(BODY, SECRET, scheme, timestamp=NOW - timedelta(seconds=299))

    verify_webhook(headers, BODY, SECRET, scheme, now=NOW)


def test_given_a_fresh_timestamp_swapped_onto_an_old_signature_when_verified_then_mismatch() -> None:
    scheme = SCHEMES["timestamped"]
    old = sign_webhook(BODY, SECRET, scheme, timestamp=NOW - timedelta(hours=2))
    replayed = {**old, "X-Ignition-Timestamp": str(int(NOW.timestamp()))}

    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(replayed, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "missing_timestamp"), ("yesterday", "malformed_timestamp")]
)
def test_given_a_missing_or_unreadable_timestamp_when_verified_then_rejected(
    value: str | None, reason: str
) -> None:
    scheme = SCHEMES["timestamped"]
    headers = {
        "X-Ignition-Signature": sign_webhook(BODY, SECRET, scheme, timestamp=NOW)["X-Ignition-Signature"]
    }
    if value is not None:
        headers["X-Ignition-Timestamp"] = value

    with pytest.raises(WebhookAuthError) as caught:
        verify_webhook(headers, BODY, SECRET, scheme, now=NOW)

    assert caught.value.reason == reason


def test_given_an_empty_secret_when_signing_or_verifying_then_it_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        sign_webhook(BODY, "", WebhookVerification())
    with pytest.raises(ValueError, match="secret is empty"):
        verify_webhook({"X-Ignition-Signature": "00"}, BODY, " \n", WebhookVerification(), now=NOW)


def test_given_a_stored_token_with_a_trailing_newline_when_verified_then_accepted() -> None:
    scheme = SCHEMES["shared-token"]

    verify_webhook({"x-bridge-token": SECRET}, BODY, SECRET + "\n", scheme, now=NOW)


@settings(max_examples=150, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=512),
    secret=st.text(min_size=1, max_size=64).filter(str.strip),
    scheme=st.sampled_from(sorted(SCHEMES)),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_property_any_signed_body_verifies_and_any_single_byte_change_fails(
    body: bytes, secret: str, scheme: str, position: int, flip: int
) -> None:
    config = SCHEMES[scheme]
    headers = sign_webhook(body, secret, config, timestamp=NOW)
    verify_webhook(headers, body, secret, config, now=NOW)

    if config.scheme == "shared-token":
        return  # a shared token does not cover the body by design
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(WebhookAuthError):
        verify_webhook(headers, tampered, secret, config, now=NOW)


# -- parsing ------------------------------------------------------------------------------------


def test_given_a_well_formed_body_when_parsed_then_the_envelope_carries_its_fields() -> None:
    envelope = parse_webhook(envelope_body(source={"application_slug": "ignition"}), IgnitionConfig())

    assert isinstance(envelope, IgnitionEnvelope)
    assert envelope.id == "evt_abc"
    assert envelope.type == "client.updated"
    assert envelope.occurred_at == datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert envelope.source == {"application_slug": "ignition"}
    assert envelope.slug == "cli_42"


def test_given_a_naive_occurred_at_when_parsed_then_it_is_read_as_utc() -> None:
    envelope = parse_webhook(envelope_body(occurred_at="2025-03-01T09:00:00"), IgnitionConfig())

    assert envelope.occurred_at.tzinfo is not None
    assert envelope.occurred_at == datetime(2025, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON list, expected an object"),
        (
            json.dumps(
                {"type": "client.updated", "occurred_at": "2025-03-01T09:00:00Z", "data": {}}
            ).encode(),
            "'id'",
        ),
        (envelope_body(occurred_at="last tuesday"), "field 'occurred_at'"),
        (envelope_body(type="proposal.accepted"), 'unknown event type "proposal.accepted"'),
        (envelope_body(data={"name": "No Slug Ltd"}), 'data has no "slug"'),
        (envelope_body(data={"slug": ""}), 'data has no "slug"'),
        (envelope_body(data="cli_1"), "field 'data'"),
    ],
    ids=[
        "not-utf8",
        "not-json",
        "array",
        "missing-id",
        "bad-time",
        "unknown-type",
        "no-slug",
        "empty-slug",
        "data",
    ],
)
def test_given_an_unusable_body_when_parsed_then_the_error_says_what_is_wrong(
    body: bytes, expected: str
) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(body, IgnitionConfig())

    assert expected in str(caught.value)


def test_given_an_unknown_event_type_when_parsed_then_the_known_prefixes_are_listed() -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(envelope_body(type="foo.bar"), IgnitionConfig())

    assert str(caught.value) == 'unknown event type "foo.bar" (known prefixes: client, invoice, payment)'


def test_given_a_body_over_the_size_limit_when_parsed_then_too_large() -> None:
    config = IgnitionConfig(webhook=WebhookVerification(max_body_bytes=1_024))
    body = envelope_body(data=client_record(notes="x" * 2_000))

    with pytest.raises(WebhookTooLargeError, match="over the limit of 1024"):
        parse_webhook(body, config)


def test_given_a_validation_error_when_parsed_then_the_message_does_not_echo_the_payload() -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(envelope_body(occurred_at="secret-personal-data"), IgnitionConfig())

    assert "secret-personal-data" not in str(caught.value)


# -- normalisation ------------------------------------------------------------------------------


def test_given_a_complete_client_when_normalised_then_the_record_travels_with_the_event() -> None:
    body = envelope_body()

    event = sync_event_for(body)

    assert event.record_type is RecordType.CLIENT
    assert event.record_id == "cli_42"
    assert event.group_id == "cli_42"
    assert event.record == client_record()
    assert event.event_id == "evt_abc"
    assert event.event_type == "client.updated"
    assert event.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert event.archive_key == "raw/evt_abc.json"
    assert event.received_at == NOW and event.source == "webhook"


def test_given_a_client_missing_fields_when_normalised_then_no_defaults_are_invented() -> None:
    # "state" is absent: the model would default it to "active", the event must not.
    record = {k: v for k, v in client_record().items() if k != "state"}

    event = sync_event_for(envelope_body(data=record))

    assert event.record == record


@pytest.mark.parametrize(
    "data",
    [{"slug": "cli_42"}, {"slug": "cli_42", "name": "Anh"}, client_record(state="deleted")],
    ids=["slug-only", "incomplete", "invalid-state"],
)
def test_given_a_hint_payload_when_normalised_then_record_is_none(data: dict[str, Any]) -> None:
    event = sync_event_for(envelope_body(data=data))

    assert event.record is None
    assert event.record_id == "cli_42"


def test_given_custom_event_prefixes_when_normalised_then_the_configuration_decides_the_type() -> None:
    config = IgnitionConfig(event_prefixes={"contact": RecordType.CLIENT})

    event = sync_event_for(envelope_body(type="contact.changed", data={"slug": "cli_5"}), config)

    assert event.record_type is RecordType.CLIENT
    assert event.group_id == "cli_5"


# -- invoices and payments --------------------------------------------------------------------


def invoice_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "slug": "inv_7",
        "reference_number": "INV-0007",
        "state": "awaiting_payment",
        "client": {"slug": "cli_42"},
        "amount": {"total": "1234.50", "currency": "AUD"},
        "date": "2025-03-01",
        "due_date": "2025-03-15",
        "reference": "Proposal PR-12",
        "payment_state": "unpaid",
        "items": [line("1122.27", service={"slug": "svc_1", "name": "Bookkeeping"})],
        "created_at": "2025-03-01T08:00:00Z",
        "updated_at": "2025-03-01T09:00:00Z",
    }
    return {**record, **overrides}


def payment_record(**overrides: Any) -> dict[str, Any]:
    # No updated_at: Ignition's payments may carry only created_at.
    record: dict[str, Any] = {
        "slug": "pypay_3",
        "state": "succeeded",
        "client": {"slug": "cli_9"},
        "amount": {"amount": "1234.50", "currency": "AUD"},
        "invoices": [{"slug": "inv_7", "amount": {"amount": "1234.50", "currency": "AUD"}}],
        "paid_on": "2025-03-05",
        "created_at": "2025-03-05T01:00:00Z",
    }
    return {**record, **overrides}


@pytest.mark.parametrize(
    ("event_type", "data", "record_type", "group", "complete"),
    [
        (
            "invoice.created",
            {"slug": "inv_7", "client": {"slug": "cli_42"}},
            RecordType.INVOICE,
            "cli_42",
            False,
        ),
        ("invoice.updated", {"slug": "inv_7"}, RecordType.INVOICE, "inv_7", False),
        (
            "payment.created",
            {"slug": "pypay_3", "client": {"slug": "cli_9"}},
            RecordType.PAYMENT,
            "cli_9",
            False,
        ),
        ("payment.created", {"slug": "pypay_3", "client": None}, RecordType.PAYMENT, "pypay_3", False),
        ("invoice.created", invoice_record(), RecordType.INVOICE, "cli_42", True),
        (
            "invoice.updated",
            invoice_record(tax_inclusive=True, due_date=None),
            RecordType.INVOICE,
            "cli_42",
            True,
        ),
        ("payment.created", payment_record(), RecordType.PAYMENT, "cli_9", True),
        (
            "payment.updated",
            payment_record(updated_at="2025-03-06T00:00:00Z"),
            RecordType.PAYMENT,
            "cli_9",
            True,
        ),
    ],
    ids=[
        "partial-invoice",
        "partial-invoice-without-client",
        "partial-payment",
        "partial-payment-client-null",
        "invoice",
        "invoice-tax-inclusive",
        "payment-without-updated-at",
        "payment",
    ],
)
def test_given_invoice_or_payment_events_when_normalised_then_grouped_by_client_and_complete_records_kept(
    event_type: str, data: dict[str, Any], record_type: RecordType, group: str, complete: bool
) -> None:
    event = sync_event_for(envelope_body(type=event_type, data=data))

    assert event.record_type is record_type
    assert event.record_id == data["slug"]
    assert event.group_id == group
    # A partial payload is a hint (the sync reads the API); a complete record travels as received,
    # with no defaults invented (tax_inclusive, state, ...).
    assert event.record == (data if complete else None)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("invoice.updated", {k: v for k, v in invoice_record().items() if k != "items"}),
        ("invoice.updated", invoice_record(items=[])),
        ("invoice.updated", invoice_record(amount={"total": "10.00"})),
        ("invoice.updated", invoice_record(payment_state="overdue")),
        ("payment.created", payment_record(invoices=[])),
        ("payment.created", {k: v for k, v in payment_record().items() if k != "amount"}),
    ],
    ids=["no-items", "empty-items", "no-currency", "unknown-payment-state", "no-invoices", "no-amount"],
)
def test_given_an_incomplete_invoice_or_payment_when_normalised_then_it_is_a_hint_grouped_by_client(
    event_type: str, data: dict[str, Any]
) -> None:
    event = sync_event_for(envelope_body(type=event_type, data=data))

    assert event.record is None
    assert event.group_id == data["client"]["slug"]


def test_given_json_number_amounts_when_parsed_then_they_are_decimals_not_floats() -> None:
    body = envelope_body(type="invoice.updated", data=invoice_record()).replace(
        b'"total": "1234.50"', b'"total": 33.335'
    )

    envelope = parse_webhook(body, IgnitionConfig())

    total = envelope.data["amount"]["total"]
    assert isinstance(total, Decimal) and str(total) == "33.335"


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_given_a_non_finite_number_when_parsed_then_the_body_is_refused_as_not_json(token: bytes) -> None:
    body = envelope_body(type="invoice.updated", data=invoice_record()).replace(b'"1234.50"', token)

    with pytest.raises(WebhookPayloadError, match="not JSON"):
        parse_webhook(body, IgnitionConfig())


def test_given_number_amounts_when_the_event_crosses_the_queue_then_the_invoice_keeps_them_exact() -> None:
    # Amounts as JSON numbers, the reading that would lose precision through a float.
    body = (
        envelope_body(type="invoice.updated", data=invoice_record())
        .replace(b'"total": "1234.50"', b'"total": 33.335')
        .replace(b'"amount": "1122.27"', b'"amount": 30.3045')
        .replace(b'"quantity": "1"', b'"quantity": 1.1')
    )
    event = sync_event_for(body)

    queued = SyncEvent.model_validate_json(event.model_dump_json())  # what SQS carries
    assert queued.record is not None
    invoice = IgnitionInvoice.model_validate(queued.record)

    assert invoice.amount.raw == "33.335"  # a string on the queue, never 33.334999...
    assert parse_amount(invoice.amount.raw, "major") == Decimal("33.335")
    assert parse_amount(invoice.items[0].unit_price.raw, "major") == Decimal("30.3045")
    assert invoice.items[0].quantity == Decimal("1.1")
    assert invoice.items[0].tax_rate == Decimal("10")


def test_given_integer_cent_amounts_when_the_event_crosses_the_queue_then_both_unit_readings_hold() -> None:
    body = envelope_body(type="payment.created", data=payment_record()).replace(
        b'"amount": {"amount": "1234.50"', b'"amount": {"amount": 123450'
    )
    event = sync_event_for(body)

    queued = SyncEvent.model_validate_json(event.model_dump_json())
    assert queued.record is not None
    payment = IgnitionPayment.model_validate(queued.record)

    assert payment.amount.raw == 123450
    assert parse_amount(payment.amount.raw, "cents") == Decimal("1234.50")
    assert parse_amount(payment.amount.raw, "major") == Decimal("123450")
    assert payment.version_at == datetime(2025, 3, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize("token", ["33.335", "0.1", "1234.50", "-0.00", "1E+2", "2.5e-3", "12", "123450"])
def test_given_a_json_number_when_read_and_written_exactly_then_its_value_and_digits_survive(
    token: str,
) -> None:
    value = exact_json.loads(f'{{"total": {token}, "items": [{token}]}}')

    written = exact_json.dumps(value, compact=True)

    assert not isinstance(value["total"], float)
    assert exact_json.loads(written) == value
    # The decimal's own digits (trailing zeros and all), never a float's repr.
    assert written == f'{{"total":{Decimal(token)},"items":[{Decimal(token)}]}}'


def test_given_a_non_finite_decimal_when_written_then_value_error() -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        exact_json.dumps({"total": Decimal("NaN")})
