"""The Ignition emulator: webhook delivery a real verifier accepts, OAuth, pagination, admin API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.clock import Clock
from sandbox.ignition_emulator import IgnitionEmulator, default_window
from sandbox.server import RunningServer, serve_in_thread
from shared.config import IgnitionConfig, RecordType, WebhookVerification
from shared.ignition import exact_json
from shared.ignition.webhook import WebhookAuthError, parse_webhook, to_sync_event, verify_webhook
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice, IgnitionPayment
from tests.ignition_records import line

SECRET = "emulator-test-secret"
API = "/external/api/v1/reporting"
TIMESTAMPED = WebhookVerification(timestamp_header="X-Ignition-Timestamp", prefix="sha256=")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verdict: str  # "ok" or the WebhookAuthError reason


@dataclass
class Receiver:
    """A tiny webhook endpoint that verifies like ingest does and answers 202 or 401."""

    clock: Clock
    scheme: WebhookVerification
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        try:
            verify_webhook(headers, body, SECRET, self.scheme, now=self.clock.now())
            verdict, status = "ok", "202 Accepted"
        except WebhookAuthError as exc:
            verdict, status = exc.reason, "401 Unauthorized"
        with self.lock:
            self.received.append(Received(headers, body, verdict))
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps({"verdict": verdict}).encode()]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Receiver, RunningServer]]:
    # One loopback server per module: stopping one costs ~0.5 s (werkzeug's poll interval).
    app = Receiver(Clock(), WebhookVerification())
    running = serve_in_thread("webhook-receiver", app)
    yield app, running
    running.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[WebhookVerification(), TIMESTAMPED], ids=["hex", "timestamped"])
def scheme(request: pytest.FixtureRequest) -> WebhookVerification:
    config: WebhookVerification = request.param
    return config


@pytest.fixture
def receiver(
    server: tuple[Receiver, RunningServer], clock: Clock, scheme: WebhookVerification
) -> tuple[Receiver, RunningServer]:
    app, running = server
    with app.lock:
        app.received.clear()
        app.clock, app.scheme = clock, scheme
    return app, running


@pytest.fixture
def emulator(
    clock: Clock, scheme: WebhookVerification, receiver: tuple[Receiver, RunningServer]
) -> IgnitionEmulator:
    emulator = IgnitionEmulator(clock=clock, webhook_secret=SECRET, webhook=scheme)
    emulator.set_webhook_url(f"{receiver[1].url}/webhooks/ignition")
    return emulator


@pytest.fixture
def bare() -> IgnitionEmulator:
    return IgnitionEmulator(clock=Clock())


def client_body(slug: str, **fields: Any) -> dict[str, Any]:
    return {"slug": slug, "name": f"Client {slug}", "email": f"{slug}@example.com", **fields}


def bearer(emulator: IgnitionEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emulator.issue_token_set()['access_token']}"}


# -- webhook delivery ----------------------------------------------------------------------------


def test_given_a_new_client_when_put_then_a_signed_client_created_webhook_is_accepted_by_the_verifier(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    response = emulator.app.test_client().put("/_emulator/clients/cli_1", json=client_body("cli_1"))

    assert response.status_code == 201
    result = response.get_json()
    assert result["delivery"]["status"] == 202
    assert json.loads(result["delivery"]["body"]) == {"verdict": "ok"}
    [received] = receiver[0].received
    assert received.verdict == "ok"
    envelope = parse_webhook(received.body, IgnitionConfig())
    assert (envelope.id, envelope.type) == (result["delivery"]["event_id"], "client.created")
    assert envelope.data == result["client"]
    assert envelope.data["created_at"] == envelope.data["updated_at"]


def test_given_an_existing_client_when_put_again_then_client_updated_carries_a_complete_record(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    admin = emulator.app.test_client()
    first = admin.put("/_emulator/clients/cli_1", json=client_body("cli_1")).get_json()["client"]
    emulator.clock.advance(60)

    response = admin.put("/_emulator/clients/cli_1", json=client_body("cli_1", name="Renamed Ltd"))

    assert response.status_code == 200
    stored = response.get_json()["client"]
    assert stored["created_at"] == first["created_at"]
    assert stored["updated_at"] > first["updated_at"]
    envelope = parse_webhook(receiver[0].received[-1].body, IgnitionConfig())
    assert envelope.type == "client.updated"
    event = to_sync_event(
        envelope,
        config=IgnitionConfig(),
        received_at=datetime.now(UTC),
        payload_sha256="0" * 64,
        archive_key=None,
        correlation_id="c",
    )
    assert event.record is not None and event.record["name"] == "Renamed Ltd"


def test_given_payload_id_when_put_then_the_webhook_is_a_hint_with_only_the_slug(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    emulator.app.test_client().put("/_emulator/clients/cli_1?payload=id", json=client_body("cli_1"))

    envelope = parse_webhook(receiver[0].received[0].body, IgnitionConfig())
    assert envelope.data == {"slug": "cli_1"}


def test_given_deliver_false_when_put_then_the_client_is_stored_and_nothing_is_sent(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    response = emulator.app.test_client().put(
        "/_emulator/clients/cli_1?deliver=false", json=client_body("cli_1")
    )

    assert response.get_json()["delivery"] is None
    assert receiver[0].received == []
    state = emulator.state_snapshot()
    assert [c["slug"] for c in state["clients"]] == ["cli_1"]
    assert state["deliveries"] == []


def test_given_a_past_delivery_when_redelivered_later_then_the_body_is_byte_identical_and_verifies(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    admin = emulator.app.test_client()
    event_id = admin.put("/_emulator/clients/cli_1", json=client_body("cli_1")).get_json()["delivery"][
        "event_id"
    ]
    emulator.clock.advance(600)  # beyond max_age: a retry must be signed afresh

    response = admin.post("/_emulator/webhooks/redeliver", json={"event_id": event_id})

    assert response.get_json()["delivery"]["status"] == 202
    first, second = receiver[0].received
    assert second.body == first.body
    assert second.verdict == "ok"
    kinds = [(d["event_id"], d["kind"]) for d in emulator.state_snapshot()["deliveries"]]
    assert kinds == [(event_id, "original"), (event_id, "redelivery")]


@pytest.mark.parametrize("scheme", [TIMESTAMPED], ids=["timestamped"])
def test_given_a_captured_timestamped_request_when_replayed_late_then_the_verifier_rejects_it(
    emulator: IgnitionEmulator, clock: Clock, receiver: tuple[Receiver, RunningServer]
) -> None:
    admin = emulator.app.test_client()
    event_id = admin.put("/_emulator/clients/cli_1", json=client_body("cli_1")).get_json()["delivery"][
        "event_id"
    ]
    clock.advance(600)

    response = admin.post("/_emulator/webhooks/redeliver", json={"event_id": event_id, "replay": True})

    assert response.get_json()["delivery"]["status"] == 401
    assert receiver[0].received[-1].verdict == "stale_timestamp"
    assert receiver[0].received[-1].headers == receiver[0].received[0].headers


def test_given_an_older_update_when_sent_then_it_arrives_with_the_given_occurred_at(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    response = emulator.app.test_client().post(
        "/_emulator/webhooks/send",
        json={"type": "client.updated", "data": {"slug": "cli_1"}, "occurred_at": "2024-12-31T23:59:00Z"},
    )

    assert response.get_json()["delivery"]["status"] == 202
    envelope = parse_webhook(receiver[0].received[0].body, IgnitionConfig())
    assert envelope.occurred_at == datetime(2024, 12, 31, 23, 59, tzinfo=UTC)


def test_given_an_unknown_event_id_when_redelivered_then_404(bare: IgnitionEmulator) -> None:
    response = bare.app.test_client().post("/_emulator/webhooks/redeliver", json={"event_id": "evt_nope"})

    assert response.status_code == 404


def test_given_no_receiver_when_put_then_the_delivery_records_the_failure(bare: IgnitionEmulator) -> None:
    emulator = bare
    emulator.set_webhook_url("http://127.0.0.1:9/unreachable")  # discard port: nothing listens
    admin = emulator.app.test_client()

    delivery = admin.put("/_emulator/clients/cli_1", json=client_body("cli_1")).get_json()["delivery"]
    emulator.set_webhook_url(None)
    unset = admin.put("/_emulator/clients/cli_2", json=client_body("cli_2")).get_json()["delivery"]

    assert delivery["status"] is None and delivery["error"] == "ConnectError"
    assert unset["error"] == "no webhook url configured"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/_emulator/clients/cli_1", {"slug": "cli_2", "name": "X"}, "differs from the URL slug"),
        ("/_emulator/clients/cli_1", {"name": ""}, "not a valid client: name"),
        ("/_emulator/clients/cli_1", {"name": "X", "updated_at": "soon"}, "updated_at is not ISO-8601"),
        ("/_emulator/widgets/w_1", {"name": "X"}, "unknown resource 'widgets'"),
    ],
)
def test_given_a_bad_admin_put_when_sent_then_it_is_refused_with_a_reason(
    bare: IgnitionEmulator, path: str, body: dict[str, Any], message: str
) -> None:
    response = bare.app.test_client().put(path, json=body)

    assert response.status_code in (400, 404)
    assert message in response.get_json()["message"]
    assert bare.state_snapshot()["clients"] == []


# -- OAuth ---------------------------------------------------------------------------------------


def token_request(emulator: IgnitionEmulator, **form: str) -> Any:
    creds = {"client_id": "sandbox-ignition-client", "client_secret": "sandbox-ignition-secret"}
    return emulator.app.test_client().post("/oauth2/token", data={**creds, **form})


def test_given_an_authorization_code_when_exchanged_then_tokens_work_and_the_code_is_single_use(
    bare: IgnitionEmulator,
) -> None:
    http = bare.app.test_client()
    redirect = http.get(
        "/oauth2/authorize?client_id=sandbox-ignition-client&redirect_uri=http://localhost/cb"
        "&response_type=code&scope=reporting&state=xyz"
    )
    query = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert redirect.status_code == 302 and query["state"] == ["xyz"]
    grant = {
        "grant_type": "authorization_code",
        "code": query["code"][0],
        "redirect_uri": "http://localhost/cb",
    }

    tokens = token_request(bare, **grant).get_json()
    again = token_request(bare, **grant)

    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert (
        http.get(f"{API}/clients", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
        == 200
    )
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"


def test_given_a_refresh_token_when_used_then_it_rotates_and_the_old_one_is_dead(
    bare: IgnitionEmulator,
) -> None:
    first = bare.issue_token_set()

    second = token_request(bare, grant_type="refresh_token", refresh_token=first["refresh_token"])
    reused = token_request(bare, grant_type="refresh_token", refresh_token=first["refresh_token"])
    third = token_request(bare, grant_type="refresh_token", refresh_token=second.get_json()["refresh_token"])

    assert second.status_code == 200
    assert second.get_json()["refresh_token"] != first["refresh_token"]
    assert reused.status_code == 400 and reused.get_json()["error"] == "invalid_grant"
    assert third.status_code == 200


def test_given_basic_client_auth_when_refreshing_then_accepted_and_a_wrong_secret_is_refused(
    bare: IgnitionEmulator,
) -> None:
    refresh = bare.issue_token_set()["refresh_token"]
    http = bare.app.test_client()
    good = base64.b64encode(b"sandbox-ignition-client:sandbox-ignition-secret").decode()
    bad = base64.b64encode(b"sandbox-ignition-client:wrong").decode()
    form = {"grant_type": "refresh_token", "refresh_token": refresh}

    refused = http.post("/oauth2/token", data=form, headers={"Authorization": f"Basic {bad}"})
    accepted = http.post("/oauth2/token", data=form, headers={"Authorization": f"Basic {good}"})

    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    assert accepted.status_code == 200


def test_given_an_access_token_when_an_hour_passes_then_the_api_answers_401(bare: IgnitionEmulator) -> None:
    http = bare.app.test_client()
    headers = bearer(bare)
    assert http.get(f"{API}/clients", headers=headers).status_code == 200

    http.post("/_emulator/clock", json={"advance_seconds": 3_600})

    assert http.get(f"{API}/clients", headers=headers).status_code == 401
    assert http.get(f"{API}/clients").status_code == 401


def test_given_a_revoked_refresh_token_when_used_then_invalid_grant(bare: IgnitionEmulator) -> None:
    refresh = bare.issue_token_set()["refresh_token"]
    creds = {"client_id": "sandbox-ignition-client", "client_secret": "sandbox-ignition-secret"}
    bare.app.test_client().post("/oauth2/revoke", data={**creds, "token": refresh})

    assert token_request(bare, grant_type="refresh_token", refresh_token=refresh).status_code == 400


# -- Reporting API -------------------------------------------------------------------------------


def seed(emulator: IgnitionEmulator, count: int) -> None:
    admin = emulator.app.test_client()
    for i in range(count):
        body = client_body(f"cli_{i}", updated_at=f"2025-02-01T00:00:0{i}Z")
        admin.put(f"/_emulator/clients/cli_{i}?deliver=false", json=body)


def test_given_records_change_mid_pagination_when_paging_on_then_nothing_is_skipped(
    bare: IgnitionEmulator,
) -> None:
    seed(bare, 6)
    http, headers = bare.app.test_client(), bearer(bare)
    page1 = http.get(f"{API}/clients?limit=2", headers=headers).get_json()
    # One seen and one unseen record change: both move to the end of the order.
    for slug in ("cli_0", "cli_3"):
        http.put(f"/_emulator/clients/{slug}?deliver=false", json=client_body(slug, name="Changed"))

    slugs = [r["slug"] for r in page1["data"]]
    cursor = page1["meta"]["pagination"]["next_cursor"]
    while cursor:
        page = http.get(
            f"{API}/clients", query_string={"limit": 2, "cursor": cursor}, headers=headers
        ).get_json()
        slugs += [r["slug"] for r in page["data"]]
        cursor = page["meta"]["pagination"]["next_cursor"]

    assert set(slugs) == {f"cli_{i}" for i in range(6)}
    assert slugs[-2:] == ["cli_0", "cli_3"]  # the changed ones, in their new place


def test_given_the_same_query_twice_when_paged_then_pages_and_cursors_are_identical(
    bare: IgnitionEmulator,
) -> None:
    seed(bare, 5)
    http, headers = bare.app.test_client(), bearer(bare)

    runs = [http.get(f"{API}/clients?limit=3", headers=headers).get_json() for _ in range(2)]

    assert runs[0] == runs[1]
    assert runs[0]["meta"]["pagination"] == {
        "has_more": True,
        "next_cursor": runs[0]["meta"]["pagination"]["next_cursor"],
        "limit": 3,
    }


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=251", "limit=ten", "cursor=%21%21", "updated_from=yesterday"]
)
def test_given_bad_list_parameters_when_listed_then_400(bare: IgnitionEmulator, query: str) -> None:
    response = bare.app.test_client().get(f"{API}/clients?{query}", headers=bearer(bare))

    assert response.status_code == 400


def test_given_requests_when_state_is_read_then_counts_and_rate_headers_are_reported() -> None:
    emulator = IgnitionEmulator(clock=Clock(), rate_limit=2)
    http, headers = emulator.app.test_client(), bearer(emulator)

    first = http.get(f"{API}/clients", headers=headers)
    http.get(f"{API}/clients/cli_x", headers=headers)
    limited = http.get(f"{API}/clients", headers=headers)

    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert limited.status_code == 429 and 3_590 < int(limited.headers["Retry-After"]) <= 3_600
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(first.headers["X-RateLimit-Reset"])
    state = http.get("/_emulator/state").get_json()
    assert state["requests"] == {"total": 3, "by_status": {"200": 1, "404": 1, "429": 1}}


def test_given_state_when_reset_then_data_is_cleared_but_the_connection_survives(
    bare: IgnitionEmulator,
) -> None:
    seed(bare, 2)
    http, headers = bare.app.test_client(), bearer(bare)

    http.post("/_emulator/reset")

    listed = http.get(f"{API}/clients", headers=headers)
    assert listed.status_code == 200 and listed.get_json()["data"] == []
    assert bare.state_snapshot()["clients"] == []


# -- invoices and payments -----------------------------------------------------------------------


def invoice_body(slug: str, client: str = "cli_1", **fields: Any) -> dict[str, Any]:
    return {
        "reference_number": f"INV-{slug}",
        "client": {"slug": client},
        "amount": {"total": "1234.50", "currency": "AUD"},
        "date": "2025-03-01",
        "due_date": "2025-03-15",
        "payment_state": "unpaid",
        "items": [
            line("1122.27", description="Annual accounts", service={"slug": "svc_1", "name": "Compliance"})
        ],
        **fields,
    }


def payment_body(invoices: list[str], client: str = "cli_1", **fields: Any) -> dict[str, Any]:
    return {
        "state": "succeeded",
        "client": {"slug": client},
        "amount": {"amount": "1234.50", "currency": "AUD"},
        "invoices": [{"slug": slug} for slug in invoices],
        "paid_on": "2025-03-05",
        **fields,
    }


def put_exact(emulator: IgnitionEmulator, path: str, body: dict[str, Any]) -> Any:
    """PUT with Decimals as JSON numbers; the response read back without floats."""
    response = emulator.app.test_client().put(
        path, data=exact_json.dumps(body), content_type="application/json"
    )
    return response.status_code, exact_json.loads(response.data)


def normalise(body: bytes) -> SyncEvent:
    return to_sync_event(
        parse_webhook(body, IgnitionConfig()),
        config=IgnitionConfig(),
        received_at=datetime.now(UTC),
        payload_sha256="0" * 64,
        archive_key=None,
        correlation_id="c",
    )


@pytest.mark.parametrize(
    ("path", "body", "model", "record_type"),
    [
        ("/_emulator/invoices/inv_1", invoice_body("inv_1"), IgnitionInvoice, RecordType.INVOICE),
        (
            "/_emulator/payments/pypay_1",
            payment_body(["inv_1", "inv_2"]),
            IgnitionPayment,
            RecordType.PAYMENT,
        ),
    ],
    ids=["invoice", "payment"],
)
def test_given_a_new_invoice_or_payment_when_put_then_a_signed_created_webhook_carries_the_complete_record(
    emulator: IgnitionEmulator,
    receiver: tuple[Receiver, RunningServer],
    path: str,
    body: dict[str, Any],
    model: type[IgnitionInvoice] | type[IgnitionPayment],
    record_type: RecordType,
) -> None:
    status, result = put_exact(emulator, path, body)

    assert status == 201 and result["delivery"]["status"] == 202
    [received] = receiver[0].received
    assert received.verdict == "ok"
    event = normalise(received.body)
    assert (event.event_type, event.record_type) == (f"{record_type.value}.created", record_type)
    assert event.group_id == "cli_1"
    assert event.record is not None and event.record == result[record_type.value]
    model.model_validate(event.record)


def test_given_an_existing_payment_when_put_again_then_payment_updated_and_no_updated_at_is_invented(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    put_exact(emulator, "/_emulator/payments/pypay_1", payment_body(["inv_1"]))
    emulator.clock.advance(60)

    status, result = put_exact(
        emulator, "/_emulator/payments/pypay_1", payment_body(["inv_1"], state="refunded")
    )

    assert status == 200
    assert "updated_at" not in result["payment"]
    event = normalise(receiver[0].received[-1].body)
    assert event.event_type == "payment.updated"
    assert event.record is not None and event.record["state"] == "refunded"


def test_given_payload_ref_when_an_invoice_is_put_then_the_hint_carries_slug_and_client(
    emulator: IgnitionEmulator, receiver: tuple[Receiver, RunningServer]
) -> None:
    put_exact(emulator, "/_emulator/invoices/inv_1?payload=ref", invoice_body("inv_1", client="cli_9"))
    put_exact(emulator, "/_emulator/invoices/inv_1?payload=id", invoice_body("inv_1", client="cli_9"))

    hint, bare_hint = (normalise(r.body) for r in receiver[0].received)
    assert (hint.record, hint.group_id) == (None, "cli_9")
    assert json.loads(receiver[0].received[0].body)["data"] == {"slug": "inv_1", "client": {"slug": "cli_9"}}
    assert (bare_hint.record, bare_hint.group_id) == (None, "inv_1")


def test_given_amounts_as_strings_and_numbers_when_put_then_every_output_keeps_them_exact() -> None:
    received: list[bytes] = []

    def capture(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        received.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("202 Accepted", [])
        return [b""]

    emulator = IgnitionEmulator(clock=Clock(), webhook_transport=httpx.WSGITransport(app=capture))
    emulator.set_webhook_url("http://receiver.test/webhooks/ignition")
    body = invoice_body("inv_1", amount={"total": Decimal("33.335"), "currency": "AUD"})

    put_exact(emulator, "/_emulator/invoices/inv_1", body)
    http = emulator.app.test_client()
    # The invoice is dated 2025: outside the default (current month) window.
    got = http.get(f"{API}/invoices/inv_1", query_string=WIDE, headers=bearer(emulator)).data
    listed = http.get(f"{API}/invoices", query_string=WIDE, headers=bearer(emulator)).data
    state = http.get("/_emulator/state").data

    for raw in (received[0], got, listed, state):
        assert b'"total": 33.335' in raw or b'"total":33.335' in raw  # the number token, unchanged
        assert b'"1122.27"' in raw  # the string, still a string
    webhook = normalise(received[0])
    assert webhook.record is not None
    invoice = IgnitionInvoice.model_validate(SyncEvent.model_validate_json(webhook.model_dump_json()).record)
    assert invoice.amount.raw == "33.335"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/_emulator/invoices/inv_1", invoice_body("inv_1", items=[]), "not a valid invoice: items"),
        ("/_emulator/invoices/inv_1", invoice_body("inv_1", amount={"total": "1"}), "amount.currency"),
        ("/_emulator/invoices/inv_1", {"client": {"slug": "cli_1"}}, "not a valid invoice"),
        ("/_emulator/payments/pypay_1", payment_body([]), "not a valid payment: invoices"),
        ("/_emulator/payments/pypay_1", payment_body(["inv_1"], created_at="later"), "created_at is not ISO"),
        ("/_emulator/invoices/inv_1?payload=all", invoice_body("inv_1"), "payload must be one of"),
    ],
)
def test_given_a_bad_invoice_or_payment_put_when_sent_then_400_with_the_reason_and_nothing_stored(
    bare: IgnitionEmulator, path: str, body: dict[str, Any], message: str
) -> None:
    response = bare.app.test_client().put(path, json=body)

    assert response.status_code == 400
    assert message in response.get_json()["message"]
    state = bare.state_snapshot()
    assert state["invoices"] == [] and state["payments"] == []


def test_given_references_to_unknown_records_when_put_then_stored_and_state_lists_every_resource(
    bare: IgnitionEmulator,
) -> None:
    admin = bare.app.test_client()
    admin.put("/_emulator/clients/cli_1?deliver=false", json=client_body("cli_1"))
    invoice = admin.put(
        "/_emulator/invoices/inv_1?deliver=false", json=invoice_body("inv_1", client="cli_nobody")
    )
    payment = admin.put("/_emulator/payments/pypay_1?deliver=false", json=payment_body(["inv_1", "inv_gone"]))

    assert (invoice.status_code, payment.status_code) == (201, 201)
    state = admin.get("/_emulator/state").get_json()
    assert [c["slug"] for c in state["clients"]] == ["cli_1"]
    assert [(i["slug"], i["client"]["slug"]) for i in state["invoices"]] == [("inv_1", "cli_nobody")]
    assert [[a["slug"] for a in p["invoices"]] for p in state["payments"]] == [["inv_1", "inv_gone"]]
    assert state["deliveries"] == []


def test_given_payments_with_and_without_updated_at_when_paged_then_ordered_by_updated_or_created_at(
    bare: IgnitionEmulator,
) -> None:
    admin, headers = bare.app.test_client(), bearer(bare)
    for slug, created, updated in [
        ("pypay_a", "2025-03-04T00:00:00Z", None),
        ("pypay_b", "2025-03-01T00:00:00Z", "2025-03-06T00:00:00Z"),
        ("pypay_c", "2025-03-02T00:00:00Z", None),
    ]:
        extra = {"created_at": created, **({"updated_at": updated} if updated else {})}
        admin.put(f"/_emulator/payments/{slug}?deliver=false", json=payment_body(["inv_1"], **extra))

    slugs, cursor = [], None
    while True:
        query = {"limit": 2, "updated_from": "2025-03-02T00:00:00Z", **({"cursor": cursor} if cursor else {})}
        page = admin.get(f"{API}/payments", query_string=query, headers=headers).get_json()
        slugs += [p["slug"] for p in page["data"]]
        cursor = page["meta"]["pagination"]["next_cursor"]
        if not cursor:
            break

    assert slugs == ["pypay_c", "pypay_a", "pypay_b"]


# -- the defaults that hide data (integration-facts, "Defaults that hide data": observed live by an
# -- integrator, Motta-Financial/v0-motta-hub lib/ignition/sync.ts) ------------------------------

WIDE = {"date_from": "2013-01-01", "date_to": "2099-12-31"}


def listed(emulator: IgnitionEmulator, resource: str, **query: str) -> list[str]:
    response = emulator.app.test_client().get(
        f"{API}/{resource}", query_string={"limit": 250, **query}, headers=bearer(emulator)
    )
    assert response.status_code == 200, response.get_json()
    return [record["slug"] for record in response.get_json()["data"]]


def dated_invoices(emulator: IgnitionEmulator) -> dict[str, date]:
    """One invoice dated in each of last month, this month and next month (by the emulator's clock)."""
    today = emulator.clock.now().date()
    first = today.replace(day=1)
    dates = {
        "inv_last_month": first - timedelta(days=1),
        "inv_this_month": today,
        "inv_next_month": (first + timedelta(days=32)).replace(day=1),
    }
    admin = emulator.app.test_client()
    for slug, on in dates.items():
        admin.put(f"/_emulator/invoices/{slug}?deliver=false", json=invoice_body(slug, date=on.isoformat()))
    return dates


def test_given_invoices_of_three_months_when_listed_without_a_window_then_only_this_months_are_returned(
    bare: IgnitionEmulator,
) -> None:
    dated_invoices(bare)

    assert listed(bare, "invoices") == ["inv_this_month"]
    assert sorted(listed(bare, "invoices", **WIDE)) == ["inv_last_month", "inv_next_month", "inv_this_month"]


def test_given_only_date_from_when_invoices_are_listed_then_date_to_is_still_the_end_of_this_month(
    bare: IgnitionEmulator,
) -> None:
    dated_invoices(bare)

    assert sorted(listed(bare, "invoices", date_from="2013-01-01")) == ["inv_last_month", "inv_this_month"]
    assert sorted(listed(bare, "invoices", date_to="2099-12-31")) == ["inv_next_month", "inv_this_month"]


def test_given_an_invoice_dated_last_month_when_fetched_by_slug_without_a_window_then_404(
    bare: IgnitionEmulator,
) -> None:
    dated_invoices(bare)
    http, headers = bare.app.test_client(), bearer(bare)

    assert http.get(f"{API}/invoices/inv_last_month", headers=headers).status_code == 404
    found = http.get(f"{API}/invoices/inv_last_month", query_string=WIDE, headers=headers)
    assert found.status_code == 200 and found.get_json()["slug"] == "inv_last_month"


@pytest.mark.parametrize(
    "query", ["date_from=2025-13-01", "date_to=yesterday", "date_from=2025-03-02&date_to=2025-03-01"]
)
def test_given_a_bad_date_window_when_invoices_are_listed_then_400(
    bare: IgnitionEmulator, query: str
) -> None:
    response = bare.app.test_client().get(f"{API}/invoices?{query}", headers=bearer(bare))

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("today", "kind", "expected"),
    [
        (date(2026, 11, 26), "month", (date(2026, 11, 1), date(2026, 11, 30))),
        (date(2026, 12, 31), "month", (date(2026, 12, 1), date(2026, 12, 31))),
        (date(2028, 2, 10), "month", (date(2028, 2, 1), date(2028, 2, 29))),
        (date(2026, 11, 26), "week", (date(2026, 11, 23), date(2026, 11, 29))),
        (date(2026, 11, 23), "week", (date(2026, 11, 23), date(2026, 11, 29))),
    ],
)
def test_given_a_day_when_the_default_window_is_taken_then_it_is_that_calendar_month_or_monday_week(
    today: date, kind: Any, expected: tuple[date, date]
) -> None:
    assert default_window(today, kind) == expected


def terminal_records(emulator: IgnitionEmulator) -> None:
    today = emulator.clock.now().date().isoformat()
    admin = emulator.app.test_client()
    for slug, state in [("cli_live", "active"), ("cli_gone", "archived"), ("cli_lead", "lead")]:
        admin.put(f"/_emulator/clients/{slug}?deliver=false", json=client_body(slug, state=state))
    for slug, state in [("inv_live", "awaiting_payment"), ("inv_void", "voided")]:
        admin.put(
            f"/_emulator/invoices/{slug}?deliver=false", json=invoice_body(slug, state=state, date=today)
        )
    for slug, state in [("pypay_live", "succeeded"), ("pypay_cancelled", "cancelled")]:
        admin.put(f"/_emulator/payments/{slug}?deliver=false", json=payment_body(["inv_live"], state=state))


@pytest.mark.parametrize(
    ("resource", "live", "terminal", "state"),
    [
        ("clients", ["cli_lead", "cli_live"], "cli_gone", "archived"),
        ("invoices", ["inv_live"], "inv_void", "voided"),
        ("payments", ["pypay_live"], "pypay_cancelled", "cancelled"),
    ],
)
def test_given_a_record_in_a_terminal_state_when_listed_then_only_an_explicit_state_returns_it(
    bare: IgnitionEmulator, resource: str, live: list[str], terminal: str, state: str
) -> None:
    terminal_records(bare)

    assert sorted(listed(bare, resource)) == live
    assert listed(bare, resource, state=state) == [terminal]
    assert listed(bare, resource, state="active" if resource == "clients" else "nothing") == (
        ["cli_live"] if resource == "clients" else []
    )


def test_given_an_archived_client_or_cancelled_payment_when_fetched_by_slug_then_found_only_with_its_state(
    bare: IgnitionEmulator,
) -> None:
    terminal_records(bare)
    http, headers = bare.app.test_client(), bearer(bare)

    for path, state in [("clients/cli_gone", "archived"), ("payments/pypay_cancelled", "cancelled")]:
        assert http.get(f"{API}/{path}", headers=headers).status_code == 404
        assert http.get(f"{API}/{path}", query_string={"state": state}, headers=headers).status_code == 200
    assert (
        http.get(f"{API}/clients/cli_live", query_string={"state": "archived"}, headers=headers).status_code
        == 404
    )


def test_given_the_default_incremental_parameter_when_updated_since_is_sent_then_400_naming_updated_from(
    bare: IgnitionEmulator,
) -> None:
    seed(bare, 2)

    response = bare.app.test_client().get(
        f"{API}/clients", query_string={"updated_since": "2025-02-01T00:00:01Z"}, headers=bearer(bare)
    )

    assert response.status_code == 400
    assert "updated_from" in response.get_json()["message"]


def test_given_updated_since_configured_when_listed_then_it_filters_and_updated_from_is_refused() -> None:
    emulator = IgnitionEmulator(clock=Clock(), incremental_param="updated_since")
    seed(emulator, 3)
    http, headers = emulator.app.test_client(), bearer(emulator)

    assert listed(emulator, "clients", updated_since="2025-02-01T00:00:01Z") == ["cli_1", "cli_2"]
    refused = http.get(
        f"{API}/clients", query_string={"updated_from": "2025-02-01T00:00:01Z"}, headers=headers
    )
    assert refused.status_code == 400 and "updated_since" in refused.get_json()["message"]


def test_given_an_unknown_incremental_parameter_name_when_the_emulator_is_built_then_value_error() -> None:
    with pytest.raises(ValueError, match="incremental_param"):
        IgnitionEmulator(incremental_param="since")


def test_given_limit_250_when_listed_then_200_and_251_is_refused_with_400(bare: IgnitionEmulator) -> None:
    http, headers = bare.app.test_client(), bearer(bare)

    assert http.get(f"{API}/clients?limit=250", headers=headers).status_code == 200
    refused = http.get(f"{API}/clients?limit=251", headers=headers)
    assert refused.status_code == 400 and "250" in refused.get_json()["message"]
