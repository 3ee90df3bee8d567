"""Reconciliation and Xero webhooks in the synthesised stack: the reconcile function, its three
schedules, the Xero webhook route, least privilege, alarms, dashboard and outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

import app as cdk_app
from infra.config import ClientConfig, load_client_config
from infra.monitoring import DISCREPANCY_CATEGORIES
from infra.stack import IntegrationStack
from shared import config as shared_config
from shared.config import ReconcileSettings
from shared.observability import metrics_namespace
from tests.infra.conftest import Synthesised

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

RECONCILE = "functions.reconcile.handler.handler"
XERO_WEBHOOK = "functions.xero_webhook.handler.handler"


def _function_id(synth: Synthesised, handler: str) -> str:
    (function_id,) = [
        k
        for k, r in synth.resources("AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == handler
    ]
    return function_id


def _props(synth: Synthesised, handler: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.raw["Resources"][_function_id(synth, handler)]["Properties"]
    return props


def _statements(synth: Synthesised, handler: str) -> list[dict[str, Any]]:
    role = _props(synth, handler)["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statements: list[dict[str, Any]], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        found.update(a for a in ([value] if isinstance(value, str) else value) if a.startswith(prefix))
    return found


def _with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in _actions([s])]


def _logical_id_prefix(synth: Synthesised, prefix: str, type_name: str | None = None) -> str:
    (logical_id,) = [
        k
        for k, r in synth.raw["Resources"].items()
        if k.startswith(prefix) and type_name in (None, r["Type"])
    ]
    return logical_id


def _report_topic_id(synth: Synthesised) -> str:
    return _logical_id_prefix(synth, "ReportsTopic", "AWS::SNS::Topic")


# --- the reconcile function ------------------------------------------------------------------


def test_given_the_reconcile_function_when_synthesised_then_it_has_15_minutes_1024_mb_and_the_environment(
    synth: Synthesised,
) -> None:
    props = _props(synth, RECONCILE)
    assert (props["Timeout"], props["MemorySize"]) == (900, 1024)
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    env = props["Environment"]["Variables"]
    assert {field.alias for field in ReconcileSettings.model_fields.values()} <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == "reconcile"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics_namespace("example")
    assert env["ALERT_TOPIC_ARN"] == {"Ref": _report_topic_id(synth)}
    # The same code asset as the other functions (synthesis never imports the handler module).
    assert props["Code"] == _props(synth, "functions.sync.handler.handler")["Code"]


def test_given_a_failed_scheduled_run_when_invoked_asynchronously_then_lambda_does_not_retry_it(
    synth: Synthesised,
) -> None:
    (config,) = [
        c["Properties"]
        for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": _function_id(synth, RECONCILE)}
    ]
    assert config["MaximumRetryAttempts"] == 0


def test_given_the_three_schedules_when_synthesised_then_each_rule_invokes_reconcile_with_its_mode(
    synth: Synthesised,
) -> None:
    reconcile_id = _function_id(synth, RECONCILE)
    rules = {}
    for rule in synth.resources("AWS::Events::Rule").values():
        (target,) = rule["Properties"]["Targets"]
        if target["Arn"] != {"Fn::GetAtt": [reconcile_id, "Arn"]}:
            continue  # the poller's schedule (tests/infra/test_poll_stack.py)
        assert rule["Properties"]["State"] == "ENABLED"
        rules[json.loads(target["Input"])["mode"]] = rule["Properties"]["ScheduleExpression"]
    assert rules == {
        "full": synth.config.reconciliation.schedule,
        "incremental": "rate(1 hour)",
        "xero_events": "rate(15 minutes)",
    }
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
        and p["Properties"]["FunctionName"] == {"Fn::GetAtt": [reconcile_id, "Arn"]}
    ]
    assert len(permissions) == 3


def test_given_the_reconcile_role_when_synthesised_then_it_gets_what_the_run_needs_and_nothing_broader(
    synth: Synthesised,
) -> None:
    statements = _statements(synth, RECONCILE)
    assert _actions(statements, "s3:") == {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"}
    assert "/reports/*" in json.dumps(_with(statements, "s3:PutObject"))
    # Reads its working set, and its reports (the e-mailed link is signed by the role, so the role
    # must be able to read what it links to); deletes only its working set; never raw/ bodies.
    readers = json.dumps(_with(statements, "s3:GetObject"))
    assert "/reconcile/work/*" in readers and "/reports/*" in readers and "/raw/" not in readers
    deleters = json.dumps(_with(statements, "s3:DeleteObject"))
    assert "/reconcile/work/*" in deleters and "/reports/" not in deleters
    (lister,) = _with(statements, "s3:ListBucket")
    assert _actions([lister]) == {"s3:ListBucket"}

    queue_id, dlq_id = (
        _logical_id_prefix(synth, "QueuesSyncQueue", "AWS::SQS::Queue"),
        _logical_id_prefix(synth, "QueuesDeadLetterQueue", "AWS::SQS::Queue"),
    )
    assert json.dumps(_with(statements, "sqs:SendMessage")).count(queue_id) >= 1
    # The DLQ: read for the report; delete and send only to put back, or keep with a reason, what
    # the redrive moved there without one. Never the sync queue's messages.
    (dlq_read,) = _with(statements, "sqs:ReceiveMessage")
    assert dlq_read["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    (deleter,) = _with(statements, "sqs:DeleteMessage")
    assert deleter["Resource"] == {"Fn::GetAtt": [dlq_id, "Arn"]}

    (publish,) = _with(statements, "sns:Publish")
    assert publish["Resource"] == {"Ref": _report_topic_id(synth)}
    assert _actions(statements, "sns:") == {"sns:Publish"}

    written = json.dumps([s["Resource"] for s in _with(statements, "secretsmanager:PutSecretValue")])
    assert "SecretsXeroToken" in written and "SecretsIgnitionApi" in written
    assert "SecretsXeroClient" not in written and "SecretsXeroWebhook" not in written
    assert {"dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:PutItem"} <= _actions(statements)
    idempotency_table = _logical_id_prefix(synth, "StorageIdempotencyTable", "AWS::DynamoDB::Table")
    assert idempotency_table not in json.dumps(statements)


# --- the Xero webhook ------------------------------------------------------------------------


def test_given_the_xero_webhook_route_when_synthesised_then_post_proxies_to_its_own_function_unvalidated(
    synth: Synthesised,
) -> None:
    (resource_id,) = [
        k
        for k, r in synth.resources("AWS::ApiGateway::Resource").items()
        if r["Properties"]["PathPart"] == "xero"
    ]
    (method,) = [
        m["Properties"]
        for m in synth.resources("AWS::ApiGateway::Method").values()
        if m["Properties"]["ResourceId"] == {"Ref": resource_id}
    ]
    assert method["HttpMethod"] == "POST" and method["AuthorizationType"] == "NONE"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert "RequestValidatorId" not in method and "RequestParameters" not in method
    assert _function_id(synth, XERO_WEBHOOK) in json.dumps(method["Integration"]["Uri"])
    props = _props(synth, XERO_WEBHOOK)
    assert props["Timeout"] <= 10
    assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "xero-webhook"
    assert (
        props["Environment"]["Variables"]["XERO_WEBHOOK_SECRET_ID"]
        == "ignition-xero-sync/example/xero-webhook"
    )


def test_given_the_xero_webhook_role_when_synthesised_then_it_only_upserts_xero_events_quarantines_and_queues(
    synth: Synthesised,
) -> None:
    statements = _statements(synth, XERO_WEBHOOK)
    assert _actions(statements, "dynamodb:") == {"dynamodb:UpdateItem"}
    (update,) = _with(statements, "dynamodb:UpdateItem")
    assert update["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["xero-event#*"]}}
    assert _actions(statements, "s3:") == {"s3:PutObject"}
    assert "/quarantine/xero/*" in json.dumps(_with(statements, "s3:PutObject"))
    # Xero -> Ignition's invoice events go on to the sync worker: send only, to the sync queue only
    # (docs/security.md's role table).
    assert _actions(statements, "sqs:") == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    (send,) = _with(statements, "sqs:SendMessage")
    assert "QueuesSyncQueue" in json.dumps(send["Resource"]) and "DeadLetter" not in json.dumps(send)
    assert _actions(statements, "sns:") == set()
    read = json.dumps([s["Resource"] for s in _with(statements, "secretsmanager:GetSecretValue")])
    assert "SecretsXeroWebhook" in read and "SecretsXeroToken" not in read
    assert "secretsmanager:PutSecretValue" not in _actions(statements)


def test_given_data_resources_when_granted_then_no_statement_uses_a_wildcard_action_or_a_bare_star_resource(
    synth: Synthesised,
) -> None:
    for handler in (RECONCILE, XERO_WEBHOOK):
        for statement in _statements(synth, handler):
            assert not any("*" in a for a in _actions([statement])), statement
            assert statement["Resource"] != "*", statement


# --- secrets, topics, outputs ----------------------------------------------------------------


def test_given_the_xero_webhook_secret_when_synthesised_then_it_is_empty_retained_and_its_name_output(
    synth: Synthesised,
) -> None:
    (secret,) = [
        s
        for s in synth.resources("AWS::SecretsManager::Secret").values()
        if s["Properties"]["Name"] == "ignition-xero-sync/example/xero-webhook"
    ]
    assert "GenerateSecretString" not in secret["Properties"] and "SecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "Retain"
    assert synth.raw["Outputs"]["XeroWebhookSecretName"]["Value"] == "ignition-xero-sync/example/xero-webhook"


def test_given_the_stack_when_synthesised_then_the_xero_url_reconcile_function_and_report_topic_are_output(
    synth: Synthesised,
) -> None:
    outputs = synth.raw["Outputs"]
    assert json.dumps(outputs["XeroWebhookUrl"]["Value"]).endswith('/webhooks/xero"]]}')
    assert outputs["ReconcileFunctionName"]["Value"] == {"Ref": _function_id(synth, RECONCILE)}
    assert outputs["ReportTopicArn"]["Value"] == {"Ref": _report_topic_id(synth)}


def test_given_the_report_topic_when_synthesised_then_it_is_encrypted_ssl_only_and_mails_the_recipients(
    synth: Synthesised,
) -> None:
    topic_id = _report_topic_id(synth)
    assert "alias/aws/sns" in json.dumps(synth.raw["Resources"][topic_id]["Properties"]["KmsMasterKeyId"])
    policies = [
        p
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    assert len(policies) == 1 and "aws:SecureTransport" in json.dumps(policies[0])
    emails = [
        s["Properties"]["Endpoint"]
        for s in synth.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    assert emails == synth.config.report_recipients


# --- monitoring ------------------------------------------------------------------------------


def _alarm(synth: Synthesised, name: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.raw["Resources"][_logical_id_prefix(synth, f"Monitoring{name}")][
        "Properties"
    ]
    return props


def test_given_reconcile_alarms_when_synthesised_then_they_fire_on_errors_failures_and_many_discrepancies(
    synth: Synthesised,
) -> None:
    errors = _alarm(synth, "ReconcileErrors")
    assert errors["MetricName"] == "Errors" and errors["Threshold"] == 1
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": _function_id(synth, RECONCILE)}}
    ]
    failures = _alarm(synth, "ReconcileFailures")
    assert failures["MetricName"] == "ReconcileFailures" and failures["Threshold"] == 1
    assert failures["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert failures["Dimensions"] == [{"Name": "service", "Value": "reconcile"}]

    high = _alarm(synth, "ReconcileDiscrepanciesHigh")
    assert high["Threshold"] == synth.config.alarms.reconcile_discrepancies_above
    assert high["ComparisonOperator"] == "GreaterThanThreshold"
    queries = high["Metrics"]
    # CloudWatch's limits for one alarm: at most 10 metrics and 10 expressions (PutMetricAlarm).
    assert len([q for q in queries if "MetricStat" in q]) <= 10
    assert len([q for q in queries if "Expression" in q]) <= 10
    (expression,) = [q for q in queries if "Expression" in q]
    assert expression["Expression"] == "SUM(METRICS())" and expression["ReturnData"] is True
    categories = {
        d["Value"] for q in queries if "MetricStat" in q for d in q["MetricStat"]["Metric"]["Dimensions"]
    } - {"reconcile"}
    assert categories == set(DISCREPANCY_CATEGORIES)
    for alarm in (errors, failures, high):
        assert "python -m cli reconcile --now --client example" in json.dumps(alarm["AlarmDescription"])
        assert alarm["TreatMissingData"] == "notBreaching"
    for alarm in (failures, high):
        assert "/reports/" in json.dumps(alarm["AlarmDescription"])


def test_given_the_engines_categories_when_known_then_the_alarm_sums_all_but_dead_letters() -> None:
    engine = getattr(shared_config, "ReconcileCategory", None)
    if engine is None:
        pytest.skip("the reconciliation engine's categories are not defined yet")
    from typing import get_args

    assert set(get_args(engine)) - {"dead_letter"} == set(DISCREPANCY_CATEGORIES)


def test_given_the_dashboard_when_synthesised_then_reconciliation_and_xero_webhooks_have_widgets(
    synth: Synthesised,
) -> None:
    body = json.dumps(synth.only("AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    for name in (
        "ReconcileRuns",
        "ReconcileFailures",
        "ReconcileHealed",
        "ReconcileDurationSeconds",
        "XeroWebhooksReceived",
        "XeroWebhooksRejected",
        "XeroEventsRecorded",
    ):
        assert f'\\"{name}\\"' in body, name
    assert "SEARCH(" in body and "category,service" in body
    assert "Discrepancies by category" in body


# --- configuration variants (one light synthesis, no bundling, no cdk-nag) -------------------


def _variant(tmp_path: Path, **changes: Any) -> tuple[ClientConfig, Template]:
    data = json.loads((Path(__file__).resolve().parents[2] / "clients" / "example.json").read_text())
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    (tmp_path / "variant.json").write_text(json.dumps(data))
    config = load_client_config("variant", tmp_path)
    # cdk.json's feature flags, as app.py sets them; inline code: no asset to stage.
    app = App(context=cdk_app._context([]))
    stack = IntegrationStack(app, config=config, code=lambda_.Code.from_inline("def handler(e, c): pass"))
    return config, Template.from_stack(stack)


def test_given_optional_schedules_off_and_report_emails_when_synthesised_then_one_rule_and_those_recipients(
    tmp_path: Path,
) -> None:
    config, template = _variant(
        tmp_path,
        reconciliation={
            "incremental_schedule": None,
            "xero_events_schedule": None,
            "report_emails": ["books@example.com", "manager@example.com"],
        },
        alarms={"reconcile_discrepancies_above": 5},
    )
    rules = template.find_resources("AWS::Events::Rule")
    targets = [r["Properties"]["Targets"][0] for r in rules.values()]
    # The poller's rule carries no input; every reconcile rule names its mode.
    assert [json.loads(t["Input"]) for t in targets if "Input" in t] == [{"mode": "full"}]
    endpoints = sorted(
        s["Properties"]["Endpoint"] for s in template.find_resources("AWS::SNS::Subscription").values()
    )
    assert endpoints == sorted(["books@example.com", "manager@example.com", config.alarm_email])
    thresholds = [
        a["Properties"]["Threshold"]
        for k, a in template.find_resources("AWS::CloudWatch::Alarm").items()
        if "ReconcileDiscrepanciesHigh" in k
    ]
    assert thresholds == [5]
