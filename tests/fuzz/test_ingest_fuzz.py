"""Bad input: thousands of malformed, oversized, wrongly encoded, wrongly signed and replayed
requests against the real ingest handler (in-process, against moto's server), in two
configurations: the default (hex HMAC, no timestamp) and a timestamped one (base64 HMAC behind a
``sha256=`` prefix, signed timestamp header, 5-minute window, small size limit).

Properties:
- the status is never >= 500;
- unsigned or forged (including stale or future timestamps) -> 401, nothing stored, nothing queued;
- authentic and valid -> 202, the exact bytes archived under ``raw/``, exactly one message with that
  event id on the queue, however often the identical request is replayed (SQS FIFO deduplication:
  the dedup id is the event id + the body's hash; past SQS's 5-minute window the sync's
  idempotency on the same pair takes over, tested in the integration suite);
- authentic but unusable -> 400/413 with a message, the exact bytes quarantined with the reason,
  nothing queued.

``make test`` runs a CI-sized sample; ``make test-slow`` runs the same properties ten times longer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sandbox.runtime import ApiGatewayFront
from sandbox.server import serve_in_thread
from shared.config import WebhookVerification
from tests.fuzz import strategies as fz
from tests.fuzz.conftest import SENT, IngestHarness, Response

pytestmark = pytest.mark.xdist_group("fuzz")

CI = {"forged": 250, "authentic": 90, "replay": 15, "timestamps": 20, "http": 20}
SLOW_FACTOR = 10


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def sent(harness: IngestHarness, kind: str) -> None:
    event(kind)
    SENT[f"{harness.name}: {kind}"] += 1


def assert_no_server_error(response: Response) -> None:
    assert response.status < 500, response


# ---------------------------------------------------------------------------------------------
# Strategies that need the harness (its secret and configuration)
# ---------------------------------------------------------------------------------------------


def any_body(harness: IngestHarness) -> st.SearchStrategy[bytes]:
    """Forged requests carry any body: the signature is checked before the body is read."""
    return st.one_of(
        st.binary(max_size=256),
        fz.valid_bodies().map(lambda pair: pair[1]),
        fz.malformed_bodies(harness.webhook.max_body_bytes).map(lambda pair: pair[1]),
    )


FORGERIES = [
    "no-signature",
    "empty-signature",
    "random-hex",
    "random-base64",
    "random-text",
    "wrong-secret",
    "signature-of-other-body",
    "wrong-encoding",
    "prefix-mismatch",
    "truncated-signature",
    "flipped-bit",
    "signature-in-other-header",
]
TIMESTAMP_FORGERIES = [
    "missing-timestamp",
    "timestamp-not-signed",
    "stale-timestamp",
    "future-timestamp",
    "malformed-timestamp",
]


@dataclass(frozen=True)
class _Forging:
    """What every forgery of one drawn request starts from."""

    draw: st.DrawFn
    harness: IngestHarness
    body: bytes
    now: datetime
    header: str
    ts_header: str | None
    stamp: str
    real: bytes
    other_body: bytes

    @property
    def config(self) -> WebhookVerification:
        return self.harness.webhook

    @property
    def encoded(self) -> str:
        return fz.encode(self.real, self.config.encoding)

    def signed(self, value: str, *, stamped: bool = True) -> dict[str, str]:
        headers = {self.header: value, "Content-Type": "application/json"}
        if self.ts_header and stamped:
            headers[self.ts_header] = self.stamp
        return headers

    def unsigned(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with the (fresh) timestamp when the scheme has one, and no signature header."""
        if self.ts_header:
            headers[self.ts_header] = self.stamp
        return headers

    def digest_by(self, body: bytes, secret: str) -> bytes:
        return fz.digest(body, secret, self.stamp if self.ts_header else None)


@st.composite
def forged_requests(draw: st.DrawFn, harness: IngestHarness) -> tuple[str, bytes, dict[str, str]]:
    """(class, body, headers) that must not pass: no, wrong or stale proof of the secret."""
    config = harness.webhook
    kind = draw(st.sampled_from(FORGERIES + (TIMESTAMP_FORGERIES if config.timestamp_header else [])))
    body = draw(any_body(harness))
    now = datetime.now(UTC)
    header = draw(fz.cased(config.header))
    ts_header = draw(fz.cased(config.timestamp_header)) if config.timestamp_header else None
    stamp = str(int(now.timestamp()))
    real = fz.digest(body, harness.secret, stamp if ts_header else None)
    other_body = draw(st.binary(max_size=64).filter(lambda b: b != body))
    forging = _Forging(draw, harness, body, now, header, ts_header, stamp, real, other_body)
    if kind in TIMESTAMP_FORGERIES:
        return kind, body, _timestamp_forgery(kind, forging)
    if kind in _MADE_UP:
        return kind, body, _made_up_signature(kind, forging)
    return kind, body, _near_miss_signature(kind, forging)


# Signatures that owe nothing to the secret.
_MADE_UP = {"no-signature", "empty-signature", "random-hex", "random-base64", "random-text"}


def _made_up_signature(kind: str, forging: _Forging) -> dict[str, str]:
    draw, prefix = forging.draw, forging.config.prefix
    if kind == "no-signature":
        return forging.unsigned({"Content-Type": "application/json"})
    if kind == "empty-signature":
        return forging.signed(draw(st.sampled_from(["", " ", prefix, "\t"])))
    if kind == "random-hex":
        return forging.signed(prefix + draw(st.binary(min_size=32, max_size=32)).hex())
    if kind == "random-base64":
        return forging.signed(prefix + fz.encode(draw(st.binary(min_size=32, max_size=32)), "base64"))
    # random-text
    return forging.signed(prefix + draw(st.text(st.characters(exclude_categories=("Cs",)), max_size=90)))


def _near_miss_signature(kind: str, forging: _Forging) -> dict[str, str]:
    """A signature close to the real one: another secret or body, the wrong encoding or prefix,
    cut short, one bit flipped, or sent under another header."""
    draw, config, real, encoded = forging.draw, forging.config, forging.real, forging.encoded
    if kind == "wrong-secret":
        wrong = draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != forging.harness.secret))
        return forging.signed(
            config.prefix + fz.encode(forging.digest_by(forging.body, wrong), config.encoding)
        )
    if kind == "signature-of-other-body":
        forged = forging.digest_by(forging.other_body, forging.harness.secret)
        return forging.signed(config.prefix + fz.encode(forged, config.encoding))
    if kind == "wrong-encoding":
        return forging.signed(
            config.prefix + fz.encode(real, "base64" if config.encoding == "hex" else "hex")
        )
    if kind == "prefix-mismatch":
        # The expected prefix missing, or one that is not configured added.
        return forging.signed(encoded if config.prefix else "sha256=" + encoded)
    if kind == "truncated-signature":
        return forging.signed(config.prefix + encoded[: draw(st.integers(0, len(encoded) - 1))])
    if kind == "flipped-bit":
        index = draw(st.integers(0, len(real) - 1))
        flipped = real[:index] + bytes([real[index] ^ (1 << draw(st.integers(0, 7)))]) + real[index + 1 :]
        return forging.signed(config.prefix + fz.encode(flipped, config.encoding))
    # signature-in-other-header
    return forging.unsigned(
        {"X-Signature": config.prefix + encoded, "X-Hub-Signature-256": config.prefix + encoded}
    )


def _timestamp_forgery(kind: str, forging: _Forging) -> dict[str, str]:
    draw, config, body, now = forging.draw, forging.config, forging.body, forging.now
    if kind == "missing-timestamp":
        return forging.signed(config.prefix + forging.encoded, stamped=False)
    if kind == "timestamp-not-signed":
        # A fresh timestamp on a signature that covers the body alone (or another timestamp).
        old = str(int(now.timestamp()) - draw(st.integers(1, 10_000)))
        mac = fz.digest(body, forging.harness.secret, draw(st.sampled_from([None, old])))
        return forging.signed(config.prefix + fz.encode(mac, config.encoding))
    if kind in {"stale-timestamp", "future-timestamp"}:
        # An authentic, correctly signed request outside the window: a replay or a skewed clock.
        seconds = draw(st.integers(config.max_age_seconds + 2, 10 * 365 * 86_400))
        at = (
            now - timedelta(seconds=seconds)
            if kind == "stale-timestamp"
            else now + timedelta(seconds=seconds)
        )
        headers = dict(forging.harness.sign(body, at=at))
        return {draw(fz.cased(k)): v for k, v in headers.items()}
    # malformed-timestamp
    headers = forging.signed(
        config.prefix + draw(st.sampled_from([forging.encoded, fz.encode(b"x" * 32, config.encoding)]))
    )
    headers[forging.ts_header or ""] = draw(fz.malformed_timestamps)
    return headers


@st.composite
def authentic_requests(draw: st.DrawFn, harness: IngestHarness) -> tuple[str, bytes, dict[str, str], bool]:
    """(class, body, headers, base64?) correctly signed now, with any body."""
    if draw(st.integers(0, 3)) == 0:
        kind, body = "valid", draw(fz.valid_bodies())[1]
    else:
        kind, body = draw(fz.malformed_bodies(harness.webhook.max_body_bytes))
    headers = {draw(fz.cased(k)): v for k, v in harness.sign(body).items()}
    as_base64 = draw(st.booleans())
    return kind + (" (base64 event)" if as_base64 else ""), body, headers, as_base64


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def check_forged(harness: IngestHarness, request: tuple[str, bytes, dict[str, str]], as_base64: bool) -> None:
    kind, body, headers = request
    sent(harness, f"forged/{kind}")
    before = harness.mark()
    response = harness.post(body, headers, as_base64=as_base64)
    assert_no_server_error(response)
    assert response.status == 401, (kind, response)
    assert response.body == {"error": "unauthorized", "message": "missing or invalid webhook signature"}
    assert harness.mark() == before, "a request without a valid signature stored or queued something"


def check_authentic(harness: IngestHarness, request: tuple[str, bytes, dict[str, str], bool]) -> None:
    kind, body, headers, as_base64 = request
    sent(harness, f"authentic/{kind}")
    puts_before, sent_before = harness.mark()
    response = harness.post(body, headers, as_base64=as_base64)
    assert_no_server_error(response)
    new_puts = harness.archive.puts[puts_before:]
    new_sends = harness.queue.sent[sent_before:]
    assert len(new_puts) == 1, "an authentic request must be archived or quarantined, once"
    put = new_puts[0]
    stored, metadata = harness.s3_object(put.key)
    assert stored == body, "the archive must hold the exact bytes received"
    if response.status == 202:
        assert put.key.startswith("raw/")
        assert [e.event_id for e in new_sends] == [response.body["event_id"]]
        assert new_sends[0].payload_sha256 == hashlib.sha256(body).hexdigest()
    else:
        assert response.status in {400, 413}, (kind, response)
        assert response.body["message"], "a refusal must say what is wrong"
        assert put.key.startswith("quarantine/")
        assert metadata.get("reason"), "a quarantined body must carry its reason"
        assert metadata.get("error") in {"invalid_payload", "payload_too_large"}
        assert (response.status == 413) == (len(body) > harness.webhook.max_body_bytes)
        assert new_sends == [], "an unusable body must not be queued"
    if kind.startswith("valid"):
        assert response.status == 202, response


def check_replayed(harness: IngestHarness, body: bytes, times: int, as_base64: bool) -> None:
    """The identical signed request delivered ``times`` times: one logical event on the queue."""
    sent(harness, f"replayed x{times}")
    harness.drain_queue()  # what other properties queued
    headers = harness.sign(body)
    statuses = [harness.post(body, headers, as_base64=as_base64) for _ in range(times)]
    assert {r.status for r in statuses} == {202}, statuses
    event_id = statuses[0].body["event_id"]
    queued = harness.drain_queue()
    assert [m["event_id"] for m in queued] == [event_id], "a replay must not queue a second message"


# -- CI-sized ----------------------------------------------------------------------------------


@fuzz_settings(CI["forged"])
@given(data=st.data())
def test_given_requests_without_a_valid_signature_when_posted_then_401_and_nothing_is_stored_or_queued(
    ingest: IngestHarness, data: st.DataObject
) -> None:
    check_forged(ingest, data.draw(forged_requests(ingest)), data.draw(st.booleans()))


@fuzz_settings(CI["authentic"])
@given(data=st.data())
def test_given_authentic_requests_with_any_body_when_posted_then_accepted_once_or_quarantined_with_reason(
    ingest: IngestHarness, data: st.DataObject
) -> None:
    check_authentic(ingest, data.draw(authentic_requests(ingest)))


@fuzz_settings(CI["replay"])
@given(body=fz.valid_bodies(), times=st.integers(1, 3), as_base64=st.booleans())
def test_given_an_authentic_webhook_when_the_identical_request_is_replayed_then_one_message_is_queued(
    ingest: IngestHarness, body: tuple[dict[str, Any], bytes], times: int, as_base64: bool
) -> None:
    check_replayed(ingest, body[1], times, as_base64)


@fuzz_settings(CI["timestamps"])
@given(body=fz.valid_bodies(), offset=st.integers(-280, 280), late=st.integers(2, 30 * 86_400))
def test_given_the_timestamp_scheme_when_a_captured_request_is_replayed_after_the_window_then_401(
    timestamped_ingest: IngestHarness, body: tuple[dict[str, Any], bytes], offset: int, late: int
) -> None:
    harness = timestamped_ingest
    raw = body[1]
    sent(harness, "captured, then replayed after the window")
    signed_at = datetime.now(UTC) + timedelta(seconds=offset)
    headers = harness.sign(raw, at=signed_at)
    assert harness.post(raw, headers).status == 202  # delivered inside the window
    harness.drain_queue()
    before = harness.mark()
    # The same bytes and headers, replayed once the window has passed (the clock moved on).
    harness.ingest.intake.now = lambda: signed_at + timedelta(seconds=harness.webhook.max_age_seconds + late)
    try:
        replay = harness.post(raw, headers)
    finally:
        harness.ingest.intake.now = lambda: datetime.now(UTC)
    assert replay.status == 401
    assert harness.mark() == before


def test_given_the_fuzz_runs_when_the_bucket_is_read_then_it_holds_only_what_authentic_requests_put(
    plain_ingest: IngestHarness, timestamped_ingest: IngestHarness
) -> None:
    """Cross-check the recorders against moto itself: every object in the bucket was put by an
    authentic request (raw/ or quarantine/), and nothing else is there."""
    for harness in (plain_ingest, timestamped_ingest):
        recorded = {put.key for put in harness.archive.puts}
        in_bucket = set(harness.s3_keys())
        assert in_bucket == recorded
        assert all(key.startswith(("raw/", "quarantine/")) for key in in_bucket)


# -- the same through the sandbox's HTTP front (API Gateway's proxy event built from real HTTP) ----


@pytest.fixture(scope="module")
def http_front(plain_ingest: IngestHarness) -> Any:
    server = serve_in_thread(
        "fuzz-api", ApiGatewayFront({("POST", "/webhooks/ignition"): ("ingest", plain_ingest.ingest)})
    )
    yield f"{server.url}/webhooks/ignition"
    server.stop()


@fuzz_settings(CI["http"])
@given(data=st.data())
def test_given_real_http_requests_when_posted_to_the_front_then_never_5xx_and_only_signed_ones_stored(
    plain_ingest: IngestHarness, http_front: str, data: st.DataObject
) -> None:
    import httpx

    harness = plain_ingest
    forged = data.draw(st.booleans())
    if forged:
        kind, body, headers = data.draw(forged_requests(harness))
    else:
        kind, body, headers, _ = data.draw(authentic_requests(harness))
    sent(harness, f"http/{'forged' if forged else 'authentic'}/{kind}")
    # HTTP header values are Latin-1 on the wire; drop what a client could not send.
    headers = {k: v for k, v in headers.items() if v.isascii() and v == v.strip() and v.isprintable()}
    before = harness.mark()
    response = httpx.post(http_front, content=body, headers=headers, timeout=30)
    assert response.status_code < 500, response.text
    if response.status_code == 401:
        assert harness.mark() == before
    else:
        assert not forged, (kind, response.status_code)
        assert response.status_code in {202, 400, 413}
        assert harness.mark()[0] == before[0] + 1


# -- longer runs -------------------------------------------------------------------------------


def _slow(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A property's longer run (``make test-slow``): SLOW_FACTOR times its CI-sized sample."""

    def longer(check: Callable[..., None]) -> Callable[..., None]:
        return pytest.mark.slow(fuzz_settings(examples * SLOW_FACTOR)(given(data=st.data())(check)))

    return longer


@_slow(CI["forged"])
def test_slow_given_requests_without_a_valid_signature_when_posted_then_401_and_nothing_stored(
    ingest: IngestHarness, data: st.DataObject
) -> None:
    check_forged(ingest, data.draw(forged_requests(ingest)), data.draw(st.booleans()))


@_slow(CI["authentic"])
def test_slow_given_authentic_requests_with_any_body_when_posted_then_accepted_once_or_quarantined(
    ingest: IngestHarness, data: st.DataObject
) -> None:
    check_authentic(ingest, data.draw(authentic_requests(ingest)))
