"""The reconciliation schedule: where the scheduled reconcile function plugs in.

Not part of the stack yet: the reconcile function (``functions.reconcile.handler.handler``) comes
with a later issue. When it exists, ``IntegrationStack`` creates it like the other functions (same
code asset and environment, ``POWERTOOLS_SERVICE_NAME=reconcile``; grants: state table read/write,
Ignition API secret read/write, Xero secrets as for sync, queue send to re-queue drift, bucket write
to ``reports/*``) and adds ``ReconciliationSchedule(self, "Reconciliation", function=...,
schedule=config.reconciliation.schedule)``. The dashboard already has a ``reconcile`` service
dimension in ``shared.observability``.
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
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Reconciles Ignition and Xero (catches what webhooks missed)",
            schedule=events.Schedule.expression(schedule),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                function,
                retry_attempts=2,
                max_event_age=Duration.hours(2),
                dead_letter_queue=dead_letter_queue,
            )
        )
