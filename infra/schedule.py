"""The reconciliation schedules: EventBridge rules that invoke the reconcile function.

``IntegrationStack`` adds one per mode: ``full`` on ``reconciliation.schedule``, ``incremental``
and ``xero_events`` on their own (optional) schedules. Each rule passes ``{"mode": ...}`` as the
function's event.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct


class ReconciliationSchedule(Construct):
    """An EventBridge rule that invokes ``function`` on ``schedule`` (validated in ClientConfig).

    A failed invocation is retried twice by EventBridge, then parked in ``dead_letter_queue``
    (the monitoring DLQ alarm covers it when that queue is the sync DLQ's sibling).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        schedule: str,
        mode: str | None = None,
        description: str = "Reconciles Ignition and Xero (catches what webhooks missed)",
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description=description,
            schedule=events.Schedule.expression(schedule),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                retry_attempts=2,
                max_event_age=Duration.hours(2),
                dead_letter_queue=dead_letter_queue,
                event=events.RuleTargetInput.from_object({"mode": mode}) if mode else None,
            )
        )
