"""The Lambda entry points (functions/entry.py) and the sync's batch delivery (shared/delivery.py),
without AWS: a handler is built once per execution environment from the environment, webhook
bodies reach the receivers byte for byte, and one batch keeps its waits, faults and dead letters
apart."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from functions.entry import ApiRequest, from_environment
from shared.config import ConfigError, IntegrationConfig, PollSettings
from shared.delivery import (
    BatchAttempt,
    DeferredBehindLimit,
    DeliveryPolicy,
    HeldByAnotherDelivery,
    QueuedMessage,
    SyncDelivery,
)
from shared.models.events import SyncEvent
from shared.observability import Metric
from shared.xero.errors import XeroRateLimited
from tests.unit.test_delivery_policy import RULES, InMemoryLedger

POLL_ENVIRONMENT = {
    "STATE_TABLE_NAME": "state",
    "SYNC_QUEUE_URL": "https://sqs/queue.fifo",
    "IGNITION_API_SECRET_ID": "ignition-api",
}


def test_given_the_environment_when_the_lambda_handler_is_invoked_twice_then_it_is_built_once_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in POLL_ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("INTEGRATION_CONFIG", '{"ignition": {"page_limit": 100}}')
    built: list[tuple[PollSettings, IntegrationConfig]] = []

    def factory(settings: PollSettings, config: IntegrationConfig) -> Any:
        built.append((settings, config))
        return lambda event, context: {"event": event}

    handler = from_environment(factory, PollSettings)

    assert built == []  # importing a handler module reads nothing
    assert handler({"n": 1}, None) == {"event": {"n": 1}}
    assert handler({"n": 2}, None) == {"event": {"n": 2}}
    ((settings, config),) = built
    assert settings.state_table == "state" and settings.ignition_api_secret_id == "ignition-api"
    assert config.ignition.page_limit == 100


def test_given_a_variable_missing_when_the_first_invocation_builds_the_handler_then_it_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in POLL_ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STATE_TABLE_NAME", "state")
    handler = from_environment(lambda settings, config: lambda event, context: None, PollSettings)

    with pytest.raises(ConfigError) as raised:
        handler({}, None)
    assert "SYNC_QUEUE_URL" in str(raised.value) and "IGNITION_API_SECRET_ID" in str(raised.value)


def test_given_a_binary_body_sent_base64_when_read_then_the_receiver_gets_the_exact_bytes() -> None:
    body = b"\xff\x00signed bytes"
    event = {"body": base64.b64encode(body).decode(), "isBase64Encoded": True, "headers": {"X-Sig": "s"}}

    request = ApiRequest.from_event(event, SimpleNamespace(aws_request_id="from-context"))

    assert request == ApiRequest(headers={"X-Sig": "s"}, body=body, request_id="from-context")


def test_given_a_text_body_with_a_gateway_request_id_when_read_then_utf8_bytes_and_that_id() -> None:
    event = {"body": "café", "headers": None, "requestContext": {"requestId": "gw-1"}}

    request = ApiRequest.from_event(event, SimpleNamespace(aws_request_id="from-context"))

    assert (request.body, request.request_id, dict(request.headers)) == ("café".encode(), "gw-1", {})


# -- one batch -------------------------------------------------------------------------------


class Recorder:
    """The DLQ, the queue's visibility delays, the metrics and the log, as one batch uses them."""

    def __init__(self) -> None:
        self.dead: list[dict[str, str]] = []
        self.delays: dict[str, int] = {}
        self.metrics: list[Metric] = []
        self.keys: dict[str, object] = {}

    def send(self, body: str, *, group_id: str, dedup_id: str, category: str, reason: str) -> None:
        self.dead.append({"group_id": group_id, "dedup_id": dedup_id, "category": category, "reason": reason})

    def delay(self, receipt_handle: str, seconds: int) -> bool:
        self.delays[receipt_handle] = seconds
        return True

    def append_keys(self, **keys: object) -> None:
        self.keys.update(keys)

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None: ...


AT = "2026-11-02T00:00:00Z"
UPDATED = {"event_type": "client.updated", "record_type": "client", "occurred_at": AT, "received_at": AT}


def event(slug: str, group: str = "cli_1") -> SyncEvent:
    ids = {"event_id": f"evt-{slug}", "record_id": slug, "group_id": group, "correlation_id": f"corr-{slug}"}
    return SyncEvent.model_validate({**UPDATED, **ids, "payload_sha256": "0" * 64})


def message(body: str, message_id: str, group: str = "cli_1", receives: int = 1) -> QueuedMessage:
    return QueuedMessage(
        message_id=message_id, body=body, receipt_handle=f"rh-{message_id}", receives=receives, group_id=group
    )


def delivery(recorder: Recorder, apply: Any) -> SyncDelivery:
    return SyncDelivery(
        policy=DeliveryPolicy(InMemoryLedger(), RULES),
        apply=apply,
        dead_letters=recorder,
        queue=recorder,
        count=recorder.metrics.append,
        log=recorder,
    )


def test_given_a_batch_when_xero_rate_limits_the_first_record_then_the_rest_wait_untried_behind_it() -> None:
    recorder, applied = Recorder(), []

    def apply(sync_event: SyncEvent) -> Mapping[str, object]:
        applied.append(sync_event.record_id)
        raise XeroRateLimited(30, "minute")

    attempt = BatchAttempt(delivery(recorder, apply))
    with pytest.raises(XeroRateLimited):
        attempt.handle(message(event("cli_1").model_dump_json(), "m1"))
    with pytest.raises(DeferredBehindLimit):
        attempt.handle(message(event("cli_2", group="cli_2").model_dump_json(), "m2", group="cli_2"))

    assert applied == ["cli_1"]  # the second record spent no Xero call
    assert recorder.delays == {"rh-m1": 31, "rh-m2": 31}
    assert recorder.metrics == [Metric.EVENTS_DEFERRED, Metric.EVENTS_DEFERRED]
    assert recorder.dead == []


def test_given_a_message_not_a_sync_event_when_handled_then_it_is_dead_lettered_as_malformed() -> None:
    recorder = Recorder()
    attempt = BatchAttempt(delivery(recorder, lambda sync_event: {}))

    attempt.handle(message('{"not": "an event"}', "m1"))

    assert [(d["group_id"], d["dedup_id"], d["category"]) for d in recorder.dead] == [
        ("malformed", "m1", "malformed_message")
    ]
    assert recorder.metrics == [Metric.EVENTS_FAILED_PERMANENT]


def test_given_an_invoice_created_when_handled_then_it_is_counted_and_logged_with_its_ids() -> None:
    recorder = Recorder()
    result = {"action": "created", "record_type": "invoice", "total_mismatch": True}
    attempt = BatchAttempt(delivery(recorder, lambda sync_event: result))

    attempt.handle(message(event("inv_1").model_dump_json(), "m1"))

    assert recorder.metrics == [Metric.EVENTS_SYNCED, Metric.INVOICES_CREATED, Metric.AMOUNT_MISMATCHES]
    # xero_invoice_id None: a Xero invoice event earlier in the batch leaves no key behind.
    assert recorder.keys == {
        "correlation_id": "corr-inv_1",
        "event_id": "evt-inv_1",
        "ignition_id": "inv_1",
        "xero_invoice_id": None,
    }


def test_given_another_delivery_of_the_event_in_progress_when_handled_then_it_waits_and_is_not_a_fault() -> (
    None
):
    """SQS hands a message out again when its visibility lapses while the first delivery still
    works on it: Powertools then refuses the second with IdempotencyAlreadyInProgressError."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    from functions.sync.handler import once

    def in_progress_elsewhere(*, event: SyncEvent, service: Any) -> dict[str, Any]:
        raise IdempotencyAlreadyInProgressError("Execution already in progress with idempotency key")

    recorder = Recorder()
    policy = DeliveryPolicy(InMemoryLedger(), RULES)
    apply_once = once(in_progress_elsewhere)
    attempt = BatchAttempt(
        SyncDelivery(
            policy=policy,
            apply=lambda sync_event: apply_once(event=sync_event, service=lambda: None),
            dead_letters=recorder,
            queue=recorder,
            count=recorder.metrics.append,
            log=recorder,
        )
    )

    for receives in range(1, RULES.max_fault_attempts + 3):
        with pytest.raises(HeldByAnotherDelivery):
            attempt.handle(message(event("cli_1").model_dump_json(), "m1", receives=receives))

    assert recorder.dead == []  # more deliveries than the fault allowance, none parked
    assert recorder.delays == {"rh-m1": 31}
    assert set(recorder.metrics) == {Metric.EVENTS_DEFERRED}
