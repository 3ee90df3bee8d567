"""The Reporting API poller in the stack: its function, least-privilege role, schedule and alarm,
and the sources setting deciding what is deployed (with polling only, no Ignition webhook route)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synthesised, synthesise_variant

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _poll_function(synth: Synthesised) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (logical_id, resource)
        for logical_id, resource in synth.resources("AWS::Lambda::Function").items()
        if resource["Properties"]["Handler"] == "functions.poll.handler.handler"
    ]
    return item


def _poll_role_statements(synth: Synthesised) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if any(ref["Ref"].startswith("FunctionsPollRole") for ref in policy["Properties"]["Roles"]):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_given_the_example_client_when_synthesised_then_a_rule_runs_the_poller_every_two_minutes(
    synth: Synthesised,
) -> None:
    logical_id, _ = _poll_function(synth)
    rules = [
        rule["Properties"]
        for rule in synth.resources("AWS::Events::Rule").values()
        if any(
            target["Arn"].get("Fn::GetAtt", [""])[0] == logical_id for target in rule["Properties"]["Targets"]
        )
    ]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(2 minutes)"]


def test_given_the_poll_role_when_synthesised_then_only_its_own_items_the_queue_and_ignitions_secret(
    synth: Synthesised,
) -> None:
    statements = _poll_role_statements(synth)
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }

    dynamo = [s for s in statements if any(str(a).startswith("dynamodb:") for a in s["Action"])]
    assert len(dynamo) == 1
    assert dynamo[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "poll#*",
        "lock#poll-run",
        "lock#ignition-token",
        # The practice's Ignition request budget, shared with the sync and the reconciliation.
        "budget#ignition",
    ]
    assert "sqs:SendMessage" in actions and "sqs:ReceiveMessage" not in actions
    assert not any(a.startswith("s3:") for a in actions)
    secrets = {
        json.dumps(s["Resource"])
        for s in statements
        if any(str(a).startswith("secretsmanager:") for a in s["Action"])
    }
    assert secrets and all("SecretsIgnitionApi" in resource for resource in secrets)


def test_given_the_poller_when_synthesised_then_an_alarm_fires_when_runs_keep_failing(
    synth: Synthesised,
) -> None:
    logical_id, _ = _poll_function(synth)
    alarms = [
        alarm["Properties"]
        for name, alarm in synth.resources("AWS::CloudWatch::Alarm").items()
        if name.startswith("MonitoringPollFailing")
    ]
    (alarm,) = alarms
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"][0]["Value"] == {"Ref": logical_id}
    assert alarm["EvaluationPeriods"] == synth.config.alarms.sustained_periods
    assert alarm["AlarmActions"], "the alarm e-mails a person"


def _synth_with_sources(sources: list[str], tmp_path: Path) -> dict[str, Any]:
    return synthesise_variant(tmp_path, {"ignition": {"sources": sources}}).raw


def _paths(raw: dict[str, Any]) -> set[str]:
    return {
        r["Properties"]["PathPart"]
        for r in raw["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }


def _handlers(raw: dict[str, Any]) -> set[str]:
    return {
        r["Properties"]["Handler"] for r in raw["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    }


def test_given_poll_only_when_synthesised_then_no_ignition_webhook_route_and_no_url_to_register(
    tmp_path: Path,
) -> None:
    raw = _synth_with_sources(["poll"], tmp_path)

    assert "ignition" not in _paths(raw)
    assert "xero" in _paths(raw)
    assert "IgnitionWebhookUrl" not in raw["Outputs"]
    assert "functions.poll.handler.handler" in _handlers(raw)


def test_given_webhook_only_when_synthesised_then_no_poller_is_deployed(tmp_path: Path) -> None:
    raw = _synth_with_sources(["webhook"], tmp_path)

    assert "functions.poll.handler.handler" not in _handlers(raw)
    assert "ignition" in _paths(raw)
    assert not any(name.startswith("MonitoringPollFailing") for name in raw["Resources"])
