"""The requests the fuzz suite found answered 5xx, kept as plain examples (each was a crash before
its fix; see docs/security.md)."""

from __future__ import annotations

import json

import pytest

from tests.fuzz.conftest import IngestHarness

pytestmark = pytest.mark.xdist_group("fuzz")

ENVELOPE = {"id": "evt_regression", "type": "client.updated", "occurred_at": "2026-11-01T00:00:00Z"}


def _body(**fields: object) -> bytes:
    return json.dumps({**ENVELOPE, "data": {"slug": "cli_regression"}, **fields}).encode()


def test_given_an_authentic_event_type_with_a_carriage_return_when_posted_then_accepted_not_5xx(
    plain_ingest: IngestHarness,
) -> None:
    # S3 metadata is sent as HTTP headers: a CR in the event type made the archive put raise.
    body = _body(type="client.updated\r\nx-injected: 1")
    response = plain_ingest.post(body, plain_ingest.sign(body))
    assert response.status == 202


def test_given_an_authentic_body_with_a_lone_surrogate_escape_when_posted_then_400_and_quarantined(
    plain_ingest: IngestHarness,
) -> None:
    # JSON allows "\ud800"; no UTF-8 string (pydantic, SQS, S3) can hold it: SyncEvent raised.
    body = _body(data={"slug": "cli_\ud800"})
    puts = len(plain_ingest.archive.puts)
    response = plain_ingest.post(body, plain_ingest.sign(body))
    assert response.status == 400
    assert "surrogate" in response.body["message"]
    assert plain_ingest.archive.puts[puts].key.startswith("quarantine/")


def test_given_an_authentic_body_nested_thousands_deep_when_posted_then_400_not_5xx(
    plain_ingest: IngestHarness,
) -> None:
    # Python's JSON parser raises RecursionError (not a ValueError) past ~1,000 levels.
    body = b"[" * 50_000 + b"]" * 50_000
    response = plain_ingest.post(body, plain_ingest.sign(body))
    assert response.status == 400
    assert "nested too deeply" in response.body["message"]


@pytest.mark.parametrize(
    "stamp", ["\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660", "\uff11\uff17"]
)
def test_given_a_timestamp_in_non_ascii_digits_when_posted_then_401_not_5xx(
    timestamped_ingest: IngestHarness, stamp: str
) -> None:
    # int() reads Unicode digits; the signed message is ASCII: encoding the stamp raised.
    body = _body()
    headers = {**timestamped_ingest.sign(body), "X-Ignition-Timestamp": stamp}
    before = timestamped_ingest.mark()
    assert timestamped_ingest.post(body, headers).status == 401
    assert timestamped_ingest.mark() == before
