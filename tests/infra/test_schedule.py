"""The reconciliation schedule construct, ready for the reconcile function (not in the stack yet)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from infra.schedule import ReconciliationSchedule

pytestmark = [pytest.mark.infra]


def test_given_a_function_and_schedule_when_scheduled_then_a_rule_invokes_it_with_retries() -> None:
    stack = Stack(App(), "ScheduleTest")
    function = lambda_.Function(
        stack,
        "Reconcile",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="functions.reconcile.handler.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    ReconciliationSchedule(stack, "Reconciliation", function=function, schedule="cron(0 16 * * ? *)")
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 16 * * ? *)",
            "State": "ENABLED",
            "Targets": [
                Match.object_like(
                    {"RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 7200}}
                )
            ],
        },
    )
    template.resource_count_is("AWS::Lambda::Permission", 1)
