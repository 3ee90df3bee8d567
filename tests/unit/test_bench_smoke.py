"""The benchmark harness stays importable and its pure parts right (``make bench`` itself is not part
of ``make test``: it takes minutes). Runs in well under a second."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from bench import cost, payloads, report
from bench.core import Figure, percentile, timed
from bench.inventory import summarise
from shared.config import IgnitionConfig, WebhookVerification
from shared.ignition.webhook import verify_webhook
from shared.ingest import WebhookIntake
from shared.models.events import SyncEvent


def test_given_the_bench_webhook_when_built_then_it_is_about_5_kb_and_verifies() -> None:
    body = payloads.envelope("client.created", payloads.client_record(1))
    headers = payloads.signed_headers(body, "secret", WebhookVerification())

    assert 4_900 <= len(body) <= 5_400
    verify_webhook(headers, body, "secret", WebhookVerification(), datetime.now(UTC))
    assert payloads.client_record(1) == payloads.client_record(1)  # fixed seed: repeatable


def test_given_samples_when_percentiles_are_taken_then_they_interpolate() -> None:
    samples = [float(x) for x in range(1, 101)]

    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0


class _Archive:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.keys.append(key)


class _Queue:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def send(self, event: SyncEvent) -> None:
        self.events.append(event)


def test_given_the_intake_with_fakes_when_timed_then_the_sample_has_no_aws_or_http_time() -> None:
    archive, queue = _Archive(), _Queue()
    intake = WebhookIntake(config=IgnitionConfig(), secret=lambda: "secret", archive=archive, queue=queue)
    body = payloads.envelope("client.created", payloads.client_record(2))
    headers = payloads.signed_headers(body, "secret", WebhookVerification())

    result, sample = timed(lambda: intake.handle(headers, body, "req-1"))

    assert result.status == 202 and len(queue.events) == 1 and len(archive.keys) == 1
    assert sample.aws == 0 and sample.http == 0 and sample.own == sample.total > 0


def test_given_schedules_when_counted_then_runs_per_month_follow_the_expression() -> None:
    assert cost.runs_per_month("rate(15 minutes)") == 2_880
    assert cost.runs_per_month("rate(1 hour)") == 720
    assert cost.runs_per_month("rate(1 day)") == 30
    assert cost.runs_per_month("cron(0 16 * * ? *)") == 30


def test_given_measured_profiles_when_costed_then_every_line_is_priced() -> None:
    ingest = cost.FunctionProfile(256, 2.0, {"s3.PutObject": 1, "sqs.SendMessage": 1}, 500, 800)
    sync = cost.FunctionProfile(
        512,
        10.0,
        {"dynamodb.UpdateItem": 5, "dynamodb.TransactWriteItems": 1, "dynamodb.TransactWriteItems#items": 2},
        900,
        1500,
        xero_calls=2,
    )
    per_k = cost.per_thousand_events(ingest, sync, cold_share=0.5)
    stack: dict[str, Any] = {
        "secrets": 5,
        "alarms": 9,
        "dashboards": 1,
        "kms_keys": 1,
        "schedules": [{"expression": "rate(15 minutes)", "mode": "xero_events"}],
    }
    idle = cost.idle_month(stack, {"xero_events": cost.FunctionProfile(1024, 50, {}, 900, 2000)}, 2)

    assert 0 < per_k.total < 5
    assert sync.billed_ms(0) == 10 + 6 * 6 + 400 * 2  # own + 6 DynamoDB calls + 2 Xero calls
    assert cost.ddb_units(sync.aws_calls) == (5 + 2 * 2, 0)
    assert idle.total == pytest.approx(sum(line["usd"] for line in idle.items))
    assert any("secrets" in line["item"] and line["usd"] == pytest.approx(2.0) for line in idle.items)


def test_given_a_template_when_summarised_then_fixed_items_and_schedules_are_counted() -> None:
    template = {
        "Resources": {
            "S1": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "A1": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
            "F1": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512}},
            "R1": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(1 hour)",
                    "Targets": [{"Input": json.dumps({"mode": "incremental"})}],
                },
            },
        }
    }

    found = summarise(template)

    assert (found["secrets"], found["alarms"], found["functions"]) == (1, 1, {"F1": 512})
    assert found["schedules"] == [{"expression": "rate(1 hour)", "mode": "incremental"}]


def test_given_results_when_rendered_then_the_table_shows_goals_and_misses() -> None:
    figures = [
        Figure("x.met", "A met figure", 1.0, "ms", "timed", goal="< 10 ms", met=True),
        Figure(
            "xero.calls_per_record.steady",
            "A missed figure",
            2.0,
            "calls",
            "counted",
            goal="<= 1.1",
            met=False,
        ),
        Figure("y.none", "Not measured", None, "s", "later", goal="< 600 s", notes="not built yet"),
    ]
    doc: dict[str, Any] = {
        "started_at": "2026-11-25T00:00:00+00:00",
        "duration_seconds": 1.0,
        "machine": {"platform": "p", "cpu_model": "c", "cores": 2, "python": "3.11"},
        "figures": {f.key: f.as_json() for f in figures},
        "prices": {"region": "ap-southeast-2", "as_of": "x", "table": {}, "assumptions": {}},
        "raw": {},
    }

    text = report.render(doc)

    assert "| A met figure | 1 ms | < 10 ms | met |" in text
    assert "**missed**" in text and "a new client costs its case-safe lookup" in text
    assert "not built yet" in text
    assert "A missed figure" in report.console(doc)
