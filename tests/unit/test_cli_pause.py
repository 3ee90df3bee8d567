"""``pause`` / ``resume`` on a deployed stack (moto): the sync's event source mapping and the
stack's EventBridge rules are switched through the calls AWS documents, found by the stack's own
resource list."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest

from cli import pause
from cli.target import Target

TEMPLATE = {
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "sync.fifo", "FifoQueue": True}},
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
        },
        "FunctionsSync": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context): pass"},
            },
        },
        "SyncMapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "FunctionsSync"},
                "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "BatchSize": 10,
            },
        },
        "PollRule": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(2 minutes)"}},
        "ReconcileRule": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(1 hour)"}},
    }
}


@pytest.fixture
def stack(aws_each: None) -> Target:
    boto3.client("cloudformation").create_stack(
        StackName="IgnitionXeroSync-acme", TemplateBody=json.dumps(TEMPLATE)
    )
    url = boto3.client("sqs").get_queue_url(QueueName="sync.fifo")["QueueUrl"]
    settings = cast(Any, SimpleNamespace(sync_queue_url=url))
    return Target("stack", "acme", settings, cast(Any, None), {}, "ap-southeast-2")


def _states() -> dict[str, str]:
    resources = boto3.client("cloudformation").list_stack_resources(StackName="IgnitionXeroSync-acme")
    states = {}
    for resource in resources["StackResourceSummaries"]:
        physical = resource["PhysicalResourceId"]
        if resource["ResourceType"] == "AWS::Lambda::EventSourceMapping":
            states["mapping"] = boto3.client("lambda").get_event_source_mapping(UUID=physical)["State"]
        elif resource["ResourceType"] == "AWS::Events::Rule":
            states[resource["LogicalResourceId"]] = boto3.client("events").describe_rule(Name=physical)[
                "State"
            ]
    return states


def test_given_a_running_stack_when_paused_then_the_mapping_and_both_rules_are_disabled(
    stack: Target,
) -> None:
    result = pause.set_paused(stack, True)

    assert _states() == {"mapping": "Disabled", "PollRule": "DISABLED", "ReconcileRule": "DISABLED"}
    assert result["paused"] is True and result["queued"] == 0 and result["retention_days"] == 4.0
    assert pause.summary(stack)["paused"] is True


def test_given_a_paused_stack_when_resumed_then_everything_runs_again(stack: Target) -> None:
    pause.set_paused(stack, True)

    result = pause.set_paused(stack, False)

    assert _states() == {"mapping": "Enabled", "PollRule": "ENABLED", "ReconcileRule": "ENABLED"}
    assert result["paused"] is False


def test_given_one_rule_left_enabled_then_the_state_is_partly_paused(stack: Target) -> None:
    pause.set_paused(stack, True)
    rule = next(s["name"] for s in pause.state(stack)["switches"] if s["kind"] == "schedule")
    boto3.client("events").enable_rule(Name=rule)

    assert pause.state(stack)["paused"] is None
