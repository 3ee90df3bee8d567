"""The synthesised stack for clients/example.json: security, retention, wiring, monitoring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.queues import VISIBILITY_TIMEOUT_FACTOR
from shared.config import EnvironmentSettings, IngestSettings, IntegrationConfig, SyncSettings
from shared.observability import Metric, metrics_namespace
from tests.infra.conftest import Synthesised

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

VENV_BIN = Path(sys.executable).parent


def _statements(synth: Synthesised, role_fragment: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if role_fragment in roles:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        actions.update([value] if isinstance(value, str) else value)
    return actions


def _alarm_topic_id(synth: Synthesised) -> str:
    (topic_id,) = [k for k in synth.resources("AWS::SNS::Topic") if k.startswith("MonitoringAlarmTopic")]
    return topic_id


def _function(synth: Synthesised, handler: str) -> dict[str, Any]:
    for resource in synth.resources("AWS::Lambda::Function").values():
        if resource["Properties"]["Handler"] == handler:
            return resource
    raise AssertionError(f"no function with handler {handler}")


# --- security gates --------------------------------------------------------------------------


def test_given_the_example_client_when_synthesised_then_cdk_nag_reports_no_unacknowledged_finding(
    synth: Synthesised,
) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert [p for p in report["pluginReports"] if p.get("violations")] == []


def test_given_acknowledged_nag_rules_when_synthesised_then_each_carries_a_written_reason(
    synth: Synthesised,
) -> None:
    acknowledged = [
        rule
        for resource in synth.raw["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "the suppressions should be written into the template metadata"
    for rule in acknowledged:
        assert len(rule["reason"]) >= 40, rule
    ids = {rule["id"] for rule in acknowledged}
    assert {"AwsSolutions-APIG4", "AwsSolutions-COG4", "AwsSolutions-SMG4", "AwsSolutions-L1"} <= ids


def test_given_the_synthesised_template_when_linted_then_cfn_lint_is_clean(synth: Synthesised) -> None:
    template = synth.outdir / f"{synth.stack.stack_name}.template.json"
    # W3005 (redundant DependsOn) is a known false positive on CDK output.
    result = subprocess.run(  # noqa: S603
        [str(VENV_BIN / "cfn-lint"), "--ignore-checks", "W3005", "--", str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_given_any_role_when_synthesised_then_no_action_is_a_wildcard(synth: Synthesised) -> None:
    actions = _actions(
        [
            s
            for p in synth.resources("AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
    )
    assert actions
    assert [a for a in actions if "*" in a] == []


def test_given_the_ingest_role_when_synthesised_then_it_may_only_write_raw_and_quarantine_objects(
    synth: Synthesised,
) -> None:
    statements = _statements(synth, "IngestRole")
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions([s]))]
    assert _actions(s3) == {"s3:PutObject"}
    resources = json.dumps([s["Resource"] for s in s3])
    assert "/raw/*" in resources and "/quarantine/*" in resources and "/reports/" not in resources
    assert not any(a.startswith("dynamodb:") for a in _actions(statements))
    assert {"sqs:SendMessage", "secretsmanager:GetSecretValue"} <= _actions(statements)
    assert "secretsmanager:PutSecretValue" not in _actions(statements)


def test_given_the_sync_role_when_synthesised_then_it_reads_raw_objects_and_rotates_token_secrets_only(
    synth: Synthesised,
) -> None:
    statements = _statements(synth, "SyncRole")
    actions = _actions(statements)
    assert {a for a in actions if a.startswith("s3:")} == {"s3:GetObject"}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    writers = [s for s in statements if "secretsmanager:PutSecretValue" in _actions([s])]
    written = json.dumps([s["Resource"] for s in writers])
    assert "SecretsXeroToken" in written and "SecretsIgnitionApi" in written
    assert "SecretsXeroClient" not in written and "SecretsIgnitionWebhook" not in written


def test_given_the_secrets_when_synthesised_then_no_value_is_in_the_template(synth: Synthesised) -> None:
    text = json.dumps(synth.raw)
    assert "SecretString" not in text.replace("GenerateSecretString", "")
    assert "resolve:secretsmanager" not in text
    secrets = synth.resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 5
    generated = [s for s in secrets.values() if "GenerateSecretString" in s["Properties"]]
    assert [s["Properties"]["Name"] for s in generated] == ["ignition-xero-sync/example/ignition-webhook"]
    for secret in secrets.values():
        assert secret["Properties"]["Name"].startswith("ignition-xero-sync/example/")
        assert secret["DeletionPolicy"] == "Retain"


# --- storage ---------------------------------------------------------------------------------


def test_given_the_tables_when_synthesised_then_they_are_encrypted_recoverable_on_demand_and_retained(
    synth: Synthesised,
) -> None:
    tables = synth.resources("AWS::DynamoDB::Table").values()
    by_ttl = {t["Properties"]["TimeToLiveSpecification"]["AttributeName"]: t for t in tables}
    assert set(by_ttl) == {"expires_at", "expiration"}
    assert [k["AttributeName"] for k in by_ttl["expires_at"]["Properties"]["KeySchema"]] == ["pk", "sk"]
    assert [k["AttributeName"] for k in by_ttl["expiration"]["Properties"]["KeySchema"]] == ["id"]
    for table in by_ttl.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_given_the_archive_bucket_when_synthesised_then_it_is_private_encrypted_versioned_logged_and_expiring(
    synth: Synthesised,
) -> None:
    bucket = next(
        b for b in synth.resources("AWS::S3::Bucket").values() if "LoggingConfiguration" in b["Properties"]
    )
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    rules = {r.get("Prefix", r.get("Id")): r for r in props["LifecycleConfiguration"]["Rules"]}
    archive = synth.config.archive
    assert rules["raw/"]["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": archive.raw_infrequent_access_after_days}
    ]
    assert rules["raw/"]["ExpirationInDays"] == archive.raw_expire_after_days
    assert rules["quarantine/"]["ExpirationInDays"] == archive.quarantine_expire_after_days
    assert rules["quarantine/"]["ExpirationInDays"] > rules["raw/"]["ExpirationInDays"]
    synth.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


# --- queues and the sync function ------------------------------------------------------------


def test_given_the_queues_when_synthesised_then_fifo_dlq_receive_count_and_visibility_ratio_hold(
    synth: Synthesised,
) -> None:
    queues = synth.resources("AWS::SQS::Queue")
    (main_id,) = [k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    (dlq_id,) = [k for k in queues if k != main_id]
    main, dlq = queues[main_id]["Properties"], queues[dlq_id]["Properties"]
    for props in (main, dlq):
        assert props["FifoQueue"] is True
        assert props["ContentBasedDeduplication"] is False
        assert props["SqsManagedSseEnabled"] is True
    assert main["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert main["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    sync_timeout = _function(synth, "functions.sync.handler.handler")["Properties"]["Timeout"]
    assert main["VisibilityTimeout"] >= VISIBILITY_TIMEOUT_FACTOR * sync_timeout
    assert main["VisibilityTimeout"] == 6 * synth.config.sync.timeout_seconds
    policies = synth.resources("AWS::SQS::QueuePolicy").values()
    assert len(policies) == 2
    for policy in policies:
        assert "aws:SecureTransport" in json.dumps(policy["Properties"]["PolicyDocument"])


def test_given_the_sync_event_source_when_synthesised_then_batches_are_small_partial_and_concurrency_capped(
    synth: Synthesised,
) -> None:
    props = synth.only("AWS::Lambda::EventSourceMapping")["Properties"]
    assert props["BatchSize"] <= 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= props["ScalingConfig"]["MaximumConcurrency"] <= 5
    assert props["ScalingConfig"]["MaximumConcurrency"] == synth.config.sync.max_concurrency


def test_given_the_functions_when_synthesised_then_runtime_logging_and_environment_follow_the_contract(
    synth: Synthesised,
) -> None:
    functions: tuple[tuple[str, str, type[EnvironmentSettings]], ...] = (
        ("functions.ingest.handler.handler", "ingest", IngestSettings),
        ("functions.sync.handler.handler", "sync", SyncSettings),
    )
    for handler, service, settings in functions:
        settings_vars = {field.alias for field in settings.model_fields.values() if field.is_required()}
        props = _function(synth, handler)["Properties"]
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props.get("TracingConfig", {"Mode": "PassThrough"})["Mode"] == "PassThrough"
        env = props["Environment"]["Variables"]
        assert settings_vars <= set(env)
        assert env["POWERTOOLS_SERVICE_NAME"] == service
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics_namespace("example")
        assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
        assert IntegrationConfig.model_validate_json(env["INTEGRATION_CONFIG"]) == synth.config.runtime
    assert _function(synth, "functions.ingest.handler.handler")["Properties"]["Timeout"] <= 10
    for group in synth.resources("AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == synth.config.log_retention_days


# --- API -------------------------------------------------------------------------------------


def test_given_the_webhook_api_when_synthesised_then_it_is_throttled_logged_and_verified_by_the_function(
    synth: Synthesised,
) -> None:
    stage = synth.only("AWS::ApiGateway::Stage")["Properties"]
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == synth.config.api.throttle_rate_limit
    assert settings["ThrottlingBurstLimit"] == synth.config.api.throttle_burst_limit
    assert "DestinationArn" in stage["AccessLogSetting"]
    methods = [m["Properties"] for m in synth.resources("AWS::ApiGateway::Method").values()]
    assert len(methods) == 2
    for method in methods:
        assert method["HttpMethod"] == "POST" and method["AuthorizationType"] == "NONE"
        assert method["Integration"]["Type"] == "AWS_PROXY"
        # No edge validation: a missing signature gets the function's counted 401, and an authentic
        # but malformed body reaches the function to be quarantined rather than dropped by API Gateway.
        assert "RequestValidatorId" not in method
    assert synth.resources("AWS::ApiGateway::RequestValidator") == {}
    paths = {r["Properties"]["PathPart"] for r in synth.resources("AWS::ApiGateway::Resource").values()}
    assert paths == {"webhooks", "ignition", "xero"}


# --- monitoring ------------------------------------------------------------------------------


def test_given_the_alarms_when_synthesised_then_each_notifies_the_topic_and_says_what_to_do(
    synth: Synthesised,
) -> None:
    topic_id = _alarm_topic_id(synth)
    alarms = synth.resources("AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 10
    for alarm in alarms:
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic_id}]
        assert props["OKActions"] == [{"Ref": topic_id}]
        assert props["TreatMissingData"] == "notBreaching"
        assert len(json.dumps(props["AlarmDescription"])) > 80
    by_metric = {a["Properties"].get("MetricName"): a["Properties"] for a in alarms}
    assert by_metric["ApproximateNumberOfMessagesVisible"]["Threshold"] == 1
    assert (
        by_metric["ApproximateAgeOfOldestMessage"]["Threshold"]
        == 60 * synth.config.alarms.oldest_message_age_minutes
    )
    assert by_metric["5XXError"]["EvaluationPeriods"] == synth.config.alarms.sustained_periods
    lost = by_metric[Metric.XERO_AUTHORISATION_LOST.value]
    assert lost["Namespace"] == metrics_namespace("example")
    assert lost["Dimensions"] == [{"Name": "service", "Value": "sync"}]
    assert lost["Threshold"] == 1
    budget = by_metric[Metric.XERO_DAY_LIMIT_REMAINING.value]
    assert budget["ComparisonOperator"] == "LessThanThreshold"
    assert budget["Threshold"] == synth.config.alarms.xero_day_limit_remaining_below
    assert "Errors" in by_metric


def test_given_the_alarm_topic_when_synthesised_then_it_is_encrypted_ssl_only_and_mails_the_alarm_email(
    synth: Synthesised,
) -> None:
    topic_id = _alarm_topic_id(synth)
    assert "KmsMasterKeyId" in synth.raw["Resources"][topic_id]["Properties"]
    policy = next(
        p
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    )
    assert "aws:SecureTransport" in json.dumps(policy["Properties"])
    (subscription,) = [
        s["Properties"]
        for s in synth.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == synth.config.alarm_email
    key_policy = json.dumps(synth.only("AWS::KMS::Key")["Properties"]["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in key_policy


def test_given_the_dashboard_when_synthesised_then_it_draws_every_business_metric(synth: Synthesised) -> None:
    body = json.dumps(synth.only("AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    # Xero -> Ignition's metric is drawn (with its alarm) only where that feature is on, which
    # tests/infra/test_ignition_mcp_stack.py synthesises.
    off = (
        set()
        if synth.config.drafts_to_ignition
        else {Metric.IGNITION_MCP_AUTHORISATION_LOST, Metric.IGNITION_DRAFTS_CREATED}
    )
    missing = [m.value for m in Metric if m not in off and f'\\"{m.value}\\"' not in body]
    assert missing == []
    for aws_metric in ("ApproximateAgeOfOldestMessage", "5XXError", "Throttles", "Duration"):
        assert aws_metric in body


# --- outputs and names -----------------------------------------------------------------------


def test_given_the_stack_when_synthesised_then_outputs_tell_the_engineer_what_to_register_and_fill(
    synth: Synthesised,
) -> None:
    outputs = synth.raw["Outputs"]
    assert json.dumps(outputs["IgnitionWebhookUrl"]["Value"]).endswith('/webhooks/ignition"]]}')
    assert "#dashboards:name=" in json.dumps(outputs["DashboardUrl"])
    for key in ("XeroClient", "XeroToken", "IgnitionWebhook", "IgnitionApi"):
        assert outputs[f"{key}SecretName"]["Value"].startswith("ignition-xero-sync/example/")
    assert {"SyncQueueName", "DeadLetterQueueName"} <= set(outputs)


_ACCOUNT_SCOPED_NAMES = {
    "Name", "TableName", "BucketName", "QueueName", "FunctionName", "TopicName", "RoleName",
    "LogGroupName", "AlarmName", "DashboardName", "RuleName",
}  # fmt: skip


def test_given_explicit_physical_names_when_synthesised_then_each_carries_the_client_name(
    synth: Synthesised,
) -> None:
    # Everything else is named by CloudFormation from the stack name (IgnitionXeroSync-<client>).
    named = {
        rid: value
        for rid, resource in synth.raw["Resources"].items()
        for key, value in resource.get("Properties", {}).items()
        if key in _ACCOUNT_SCOPED_NAMES and isinstance(value, str)
    }
    assert named, "secrets, dashboard and API are named explicitly"
    assert {rid: v for rid, v in named.items() if "example" not in v} == {}
    assert synth.stack.stack_name == "IgnitionXeroSync-example"
