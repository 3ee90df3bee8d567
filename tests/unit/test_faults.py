"""Fault injection in the sandbox: the profiles' contracts (unknown keys refused, ``{}`` clears,
seeded decisions) and each fault's observable effect on a client of the emulators."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from sandbox.faults import AwsFaultProfile, AwsFaults, WebhookFaultProfile, WebhookFaults
from sandbox.ignition_emulator import IgnitionEmulator
from sandbox.runtime import SqsEventSource, WorkerKilled
from sandbox.xero_emulator import XeroEmulator
from sandbox.xero_emulator.faults import XeroFaultProfile, XeroFaults


def xero_with_token() -> tuple[XeroEmulator, Any, dict[str, str]]:
    emulator = XeroEmulator()
    tokens = emulator.issue_token_set()
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": emulator.tenant_id}
    return emulator, emulator.app.test_client(), {**headers, "refresh_token": tokens["refresh_token"]}


def api_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "refresh_token"}


# -- Xero profile -----------------------------------------------------------------------------------


def test_given_an_unknown_key_when_posting_a_xero_profile_then_400_names_it() -> None:
    _, client, _ = xero_with_token()

    response = client.post("/_emulator/faults", json={"error_rate": 0.1, "eror_rate": 0.2})

    assert response.status_code == 400
    assert "eror_rate" in response.get_json()["error"]


@pytest.mark.parametrize(
    "profile",
    [{"error_rate": 2}, {"error_statuses": [404]}, {"latency_ms": [50, 10]}, {"expire_tokens": "yes"}],
)
def test_given_an_invalid_value_when_posting_a_xero_profile_then_400(profile: dict[str, Any]) -> None:
    _, client, _ = xero_with_token()

    assert client.post("/_emulator/faults", json=profile).status_code == 400


def test_given_every_call_fails_when_profile_cleared_with_empty_object_then_calls_succeed() -> None:
    _, client, headers = xero_with_token()
    client.post("/_emulator/faults", json={"error_rate": 1.0, "error_statuses": [502]})
    assert client.get("/api.xro/2.0/Contacts", headers=api_headers(headers)).status_code == 502

    client.post("/_emulator/faults", json={})

    assert client.get("/api.xro/2.0/Contacts", headers=api_headers(headers)).status_code == 200
    assert client.get("/_emulator/faults").get_json()["injected"] == {"502": 1}


def test_given_a_seed_when_the_profile_is_replayed_then_the_same_calls_fail() -> None:
    def pattern() -> list[bool]:
        faults = XeroFaults()
        faults.configure(XeroFaultProfile.parse({"seed": 7, "error_rate": 0.3}))
        return [faults.plan(0.0).response is not None for _ in range(50)]

    assert pattern() == pattern()
    assert 5 < sum(pattern()) < 25


def test_given_503_injected_then_the_body_is_xeros_plain_text_maintenance_page() -> None:
    _, client, headers = xero_with_token()
    client.post("/_emulator/faults", json={"error_rate": 1.0, "error_statuses": [503]})

    response = client.get("/api.xro/2.0/Contacts", headers=api_headers(headers))

    assert response.status_code == 503
    assert response.mimetype == "text/plain"


def test_given_a_rate_limit_burst_then_every_call_in_it_gets_429_minute_with_retry_after() -> None:
    _, client, headers = xero_with_token()
    client.post("/_emulator/faults", json={"rate_limit_bursts": True, "burst_rate": 1.0, "burst_seconds": 5})

    answers = [client.get("/api.xro/2.0/Contacts", headers=api_headers(headers)) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 429, 429]
    assert all(a.headers["X-Rate-Limit-Problem"] == "minute" for a in answers)
    assert all(1 <= int(a.headers["Retry-After"]) <= 5 for a in answers)


def test_given_expire_tokens_when_a_valid_old_enough_token_is_used_then_401_token_expired_once() -> None:
    emulator, client, headers = xero_with_token()
    client.post(
        "/_emulator/faults", json={"expire_tokens": True, "expire_rate": 1.0, "min_token_age_seconds": 0}
    )

    first = client.get("/api.xro/2.0/Contacts", headers=api_headers(headers))
    again = client.get("/api.xro/2.0/Contacts", headers=api_headers(headers))

    assert first.status_code == again.status_code == 401
    assert "TokenExpired" in first.get_json()["Detail"]
    assert emulator.state_snapshot()["faults"]["injected"] == {"tokens_expired": 1}


def test_given_expire_tokens_when_the_token_was_just_refreshed_then_it_is_spared() -> None:
    _, client, headers = xero_with_token()
    client.post("/_emulator/faults", json={"expire_tokens": True, "expire_rate": 1.0})

    # min_token_age_seconds defaults to 1 s: a token issued a moment ago is not expired again.
    assert client.get("/api.xro/2.0/Contacts", headers=api_headers(headers)).status_code == 200


def test_given_a_dropped_token_response_when_the_same_refresh_token_is_retried_then_no_invalid_grant() -> (
    None
):
    emulator, client, headers = xero_with_token()
    client.post("/_emulator/faults", json={"drop_token_responses": 1.0})
    form = {"grant_type": "refresh_token", "refresh_token": headers["refresh_token"]}
    auth = {"Authorization": "Basic " + base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode()}

    lost = client.post("/connect/token", data=form, headers=auth)
    client.post("/_emulator/faults", json={})
    retried = client.post("/connect/token", data=form, headers=auth)

    assert int(lost.headers["Content-Length"]) > len(lost.get_data())  # the answer never completes
    assert retried.status_code == 200  # the previous refresh token, inside the grace period
    state = emulator.state_snapshot()
    assert (state["token_refreshes"], state["invalid_grants"]) == (2, 0)


# -- Ignition webhooks ------------------------------------------------------------------------------


class Recorder(httpx.BaseTransport):
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        return httpx.Response(202)


def ignition_with(profile: dict[str, Any]) -> tuple[Any, Recorder]:
    recorder = Recorder()
    emulator = IgnitionEmulator(webhook_transport=recorder)
    emulator.set_webhook_url("http://ingest.test/webhooks/ignition")
    client = emulator.app.test_client()
    assert client.post("/_emulator/faults", json=profile).status_code == 200
    return client, recorder


def put_client(client: Any, slug: str) -> None:
    body = {"slug": slug, "name": slug, "created_at": "2026-11-01T09:00:00Z"}
    assert client.put(f"/_emulator/clients/{slug}", json=body).status_code == 201


def test_given_an_unknown_key_when_posting_an_ignition_profile_then_400() -> None:
    client = IgnitionEmulator().app.test_client()

    response = client.post("/_emulator/faults", json={"duplicate_rate": 0.1, "shuffle": True})

    assert response.status_code == 400
    assert "shuffle" in response.get_json()["message"]


def test_given_duplicate_rate_1_when_a_record_is_put_then_the_webhook_arrives_twice_byte_for_byte() -> None:
    client, recorder = ignition_with({"duplicate_rate": 1.0})

    put_client(client, "cli_a")

    assert len(recorder.bodies) == 2 and recorder.bodies[0] == recorder.bodies[1]


def test_given_reorder_when_two_records_are_put_then_the_first_arrives_after_the_second() -> None:
    client, recorder = ignition_with({"reorder": 1.0})
    put_client(client, "cli_a")
    assert recorder.bodies == []  # held back
    client.post("/_emulator/faults", json={"seed": 1})  # a changed profile flushes what is held

    assert b"cli_a" in recorder.bodies[0]
    client.post("/_emulator/faults", json={"reorder": 0.5, "seed": 3})
    for slug in ("cli_b", "cli_c", "cli_d", "cli_e"):
        put_client(client, slug)
    client.post("/_emulator/faults", json={})
    order = [
        next(s for s in ("cli_b", "cli_c", "cli_d", "cli_e") if s.encode() in b) for b in recorder.bodies[1:]
    ]
    assert sorted(order) == ["cli_b", "cli_c", "cli_d", "cli_e"] and order != sorted(order)


def test_given_drop_rate_1_when_a_record_is_put_then_nothing_is_sent_and_the_loss_is_recorded() -> None:
    client, recorder = ignition_with({"drop_rate": 1.0})

    put_client(client, "cli_a")

    assert recorder.bodies == []
    (delivery,) = client.get("/_emulator/state").get_json()["deliveries"]
    assert delivery["error"] == "dropped"


def test_given_a_seed_then_webhook_decisions_replay() -> None:
    def decisions() -> list[tuple[bool, bool, bool]]:
        faults = WebhookFaults()
        faults.configure(WebhookFaultProfile.parse({"seed": 5, "duplicate_rate": 0.3, "drop_rate": 0.1}))
        return [(p.drop, p.hold, p.duplicate) for p in (faults.plan() for _ in range(40))]

    assert decisions() == decisions()


# -- AWS side -------------------------------------------------------------------------------------


def test_given_an_unknown_key_then_the_aws_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="crash_rat"):
        AwsFaultProfile.parse({"crash_rat": 0.1})


class FakeSqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]


def messages(n: int) -> list[dict[str, Any]]:
    return [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "{}"} for i in range(n)]


def test_given_a_crash_after_two_records_then_two_are_processed_and_nothing_is_deleted() -> None:
    seen: list[int] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        seen.append(len(event["Records"]))
        return {"batchItemFailures": []}

    source = SqsEventSource(
        queue_url="q", handler=handler, function_name="sync", timeout_seconds=5, crash_point=lambda n: 2
    )
    sqs = FakeSqs()

    source._invoke(sqs, "arn", messages(5))

    assert seen == [2]
    assert sqs.deleted == []
    assert (source.stats.crashed_invocations, source.stats.crashed_records) == (1, 5)


def test_given_a_worker_killed_mid_batch_then_its_environment_is_discarded_and_the_next_cold_starts() -> None:
    made: list[int] = []

    def factory(index: int) -> Any:
        made.append(index)

        def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
            if len(made) == 1:
                raise WorkerKilled("out of memory")
            return {"batchItemFailures": []}

        return handler

    source = SqsEventSource(
        queue_url="q",
        handler=lambda e, c: None,
        function_name="sync",
        timeout_seconds=5,
        handler_factory=factory,
    )
    sqs = FakeSqs()

    source._invoke(sqs, "arn", messages(3), index=0)
    source._invoke(sqs, "arn", messages(3), index=0)

    assert made == [0, 0]  # a second cold start
    assert sqs.deleted == ["r0", "r1", "r2"]  # only by the invocation that lived


def test_given_conflict_rate_1_when_a_sync_worker_writes_a_mapping_then_transaction_canceled() -> None:
    faults = AwsFaults(worker_thread_prefix="MainThread")
    faults.configure(AwsFaultProfile(conflict_rate=1.0))
    body = b'{"TransactItems": [{"Put": {"Item": {"pk": {"S": "map#client#cli_a"}}}}]}'

    answer = faults._before_transaction({"body": body})

    assert answer is not None
    http, parsed = answer
    assert http.status_code == 400 and parsed["Error"]["Code"] == "TransactionCanceledException"
    assert (
        faults._before_transaction(
            {"body": b'{"TransactItems": [{"Put": {"Item": {"pk": {"S": "lock#x"}}}}]}'}
        )
        is None
    )


def test_given_kill_rate_1_when_a_mapping_is_written_then_the_worker_dies() -> None:
    faults = AwsFaults(worker_thread_prefix="MainThread")
    faults.configure(AwsFaultProfile(kill_rate=1.0))

    with pytest.raises(WorkerKilled):
        faults._before_transaction(
            {"body": b'{"TransactItems": [{"Put": {"Item": {"pk": {"S": "map#x"}}}}]}'}
        )
