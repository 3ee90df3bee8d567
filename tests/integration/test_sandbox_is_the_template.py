"""The sandbox's AWS resources are the synthesized template's (sandbox/template.py): what moto holds
has the template's key schemas, TTL, queue attributes and redrive, and every function sees the
environment variables the template gives it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.environment import Sandbox
from shared import aws

pytestmark = pytest.mark.integration


def _template(sandbox: Sandbox) -> dict[str, Any]:
    assert sandbox.resources is not None
    return sandbox.resources.stack.template


def _props(sandbox: Sandbox, env_variable: str) -> dict[str, Any]:
    assert sandbox.resources is not None
    stack = sandbox.resources.stack
    props: dict[str, Any] = stack.resources[stack.logical_id_of_env(env_variable)]["Properties"]
    return props


def test_given_the_template_when_the_sandbox_starts_then_its_tables_have_the_template_keys_and_ttl(
    sandbox: Sandbox,
) -> None:
    assert sandbox.resources is not None
    ddb = aws.client("dynamodb")
    for variable, table in (
        ("STATE_TABLE_NAME", sandbox.resources.state_table),
        ("IDEMPOTENCY_TABLE_NAME", sandbox.resources.idempotency_table),
    ):
        props = _props(sandbox, variable)
        described = ddb.describe_table(TableName=table)["Table"]
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]

        assert described["KeySchema"] == props["KeySchema"]
        assert sorted(described["AttributeDefinitions"], key=str) == sorted(
            props["AttributeDefinitions"], key=str
        )
        assert len(described.get("GlobalSecondaryIndexes", [])) == len(
            props.get("GlobalSecondaryIndexes", [])
        )
        assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_given_the_template_when_the_sandbox_starts_then_the_queues_have_its_attributes_and_redrive(
    sandbox: Sandbox,
) -> None:
    assert sandbox.resources is not None
    sqs = aws.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=sandbox.resources.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    dlq = sqs.get_queue_attributes(QueueUrl=sandbox.resources.dlq_url, AttributeNames=["All"])["Attributes"]
    props, dlq_props = _props(sandbox, "SYNC_QUEUE_URL"), _props(sandbox, "DLQ_URL")

    for attributes, expected in ((queue, props), (dlq, dlq_props)):
        assert attributes["FifoQueue"] == "true" and expected["FifoQueue"] is True
        assert attributes["ContentBasedDeduplication"] == str(expected["ContentBasedDeduplication"]).lower()
        assert attributes["MessageRetentionPeriod"] == str(expected["MessageRetentionPeriod"])
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    # The two settings the sandbox shortens for tests, and only those, come from its options.
    assert queue["VisibilityTimeout"] == str(sandbox.options.visibility_timeout)
    assert int(redrive["maxReceiveCount"]) == sandbox.options.max_receive_count


def test_given_the_template_when_the_functions_start_then_they_see_every_variable_it_sets(
    sandbox: Sandbox,
) -> None:
    variables: set[str] = set()
    for resource in _template(sandbox)["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"]["Handler"].startswith(
            "functions."
        ):
            variables |= set(resource["Properties"]["Environment"]["Variables"])

    missing = sorted(variables - set(sandbox.function_environment))
    assert missing == []
    assert sandbox.resources is not None
    secret = aws.client("secretsmanager").describe_secret(
        SecretId=sandbox.function_environment["XERO_TOKEN_SECRET_ID"]
    )
    assert secret["ARN"] == sandbox.resources.stack.secret_arns[secret["Name"]]
