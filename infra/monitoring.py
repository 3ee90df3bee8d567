"""Dashboard ("is it working?") and the alarms that need a person, e-mailed through SNS.

Business metrics come from the functions (Powertools EMF): namespace and metric names are
``shared.observability``'s, dimension ``service``. AWS metrics (API Gateway, SQS, Lambda) fill in
the rest. An alarm exists only where a person has to act; each description says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import ClientConfig
from infra.queues import SyncQueues
from shared.observability import Metric, Service, metrics_namespace

PERIOD = Duration.minutes(5)
NOT_BREACHING = cloudwatch.TreatMissingData.NOT_BREACHING


@dataclass(frozen=True)
class Watched:
    stage: apigateway.Stage
    queues: SyncQueues
    functions: dict[Service, lambda_.Function]


class Monitoring(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: ClientConfig, watched: Watched
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._namespace = metrics_namespace(config.name)
        self._watched = watched

        # A customer-managed key: CloudWatch alarms cannot publish to a topic encrypted with the
        # AWS-managed aws/sns key (its policy cannot grant cloudwatch.amazonaws.com).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the alarm topic of ignition-xero-sync/{config.name}",
            enable_key_rotation=True,
            # Protects only in-flight notifications; nothing to keep after the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        self.alarms = self._alarms()
        action = cw_actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)  # so the person also learns that it recovered

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Named from the stack (and so from the client) so it is easy to find in the console.
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.days(1),
        )
        self._widgets()

    # --- metrics ----------------------------------------------------------------------------

    def _metric(
        self, metric: Metric, service: Service, statistic: str = "Sum", label: str | None = None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._namespace,
            metric_name=metric.value,
            dimensions_map={"service": service.value},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )

    def _ingest(self, metric: Metric) -> cloudwatch.Metric:
        return self._metric(metric, Service.INGEST)

    def _sync(self, metric: Metric, statistic: str = "Sum") -> cloudwatch.Metric:
        return self._metric(metric, Service.SYNC, statistic)

    # --- alarms -----------------------------------------------------------------------------

    def _alarms(self) -> list[cloudwatch.Alarm]:
        config, queues = self._config.alarms, self._watched.queues
        sync_fn = self._watched.functions[Service.SYNC]
        sustained = config.sustained_periods
        return [
            cloudwatch.Alarm(
                self,
                "DeadLetterQueueNotEmpty",
                alarm_description=(
                    "An event failed every delivery attempt and is parked in the dead-letter queue. "
                    "Read the sync function's logs for its event id, fix the cause (mapping, Xero "
                    "validation, secrets), then replay the DLQ (docs/deploy.md, 'Operations')."
                ),
                metric=queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "SyncQueueStuck",
                alarm_description=(
                    f"The oldest queued event has waited more than {config.oldest_message_age_minutes} "
                    "minutes: sync is failing, throttled or out of Xero calls. Check the dashboard "
                    "(sync errors, Xero limits) and the sync function's logs."
                ),
                metric=queues.queue.metric_approximate_age_of_oldest_message(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=config.oldest_message_age_minutes * 60,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "XeroAuthorisationLost",
                alarm_description=(
                    "The Xero connection is gone (refresh token expired or revoked, or the Custom "
                    "Connection credentials were rejected). Nothing reaches Xero until a Xero admin "
                    "re-authorises: see docs/deploy.md, 'Connect Xero'."
                ),
                metric=self._sync(Metric.XERO_AUTHORISATION_LOST),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "IngestServerErrors",
                alarm_description=(
                    f"The webhook endpoint answered 5XX for {sustained} periods of 5 minutes in a row: "
                    "Ignition retries for about a day, then drops events. Check the ingest function's "
                    "errors and logs (secrets readable? queue reachable?)."
                ),
                metric=self._watched.stage.metric_server_error(period=PERIOD, statistic="Sum"),
                threshold=config.ingest_5xx_per_period,
                evaluation_periods=sustained,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "SyncErrors",
                alarm_description=(
                    f"The sync function failed whole invocations for {sustained} periods of 5 minutes "
                    "in a row (not single events: those retry and end in the DLQ). Check its logs for "
                    "the exception; events wait safely in the queue meanwhile."
                ),
                metric=sync_fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=config.sync_errors_per_period,
                evaluation_periods=sustained,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "XeroDailyBudgetLow",
                alarm_description=(
                    f"Fewer than {config.xero_day_limit_remaining_below} Xero API calls are left today "
                    "for this organisation (5,000/day). Sync pauses when they run out and resumes after "
                    "Xero's daily reset; look for an unusual burst (bulk import, replay loop)."
                ),
                metric=self._sync(Metric.XERO_DAY_LIMIT_REMAINING, "Minimum"),
                threshold=config.xero_day_limit_remaining_below,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=NOT_BREACHING,
            ),
        ]

    # --- dashboard --------------------------------------------------------------------------

    def _graph(
        self,
        title: str,
        left: Sequence[cloudwatch.IMetric],
        right: Sequence[cloudwatch.IMetric] = (),
        width: int = 8,
    ) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=list(left), right=list(right), width=width, height=6)

    def _widgets(self) -> None:
        queues, functions, stage = self._watched.queues, self._watched.functions, self._watched.stage
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# Ignition -> Xero sync: {self._config.name}\n"
                    "Webhooks in, events synced to Xero, nothing waiting in the dead-letter queue = working. "
                    "Alarms e-mail a person with what to do."
                ),
                width=16,
                height=3,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=8, height=3),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Webhooks",
                [
                    self._ingest(Metric.WEBHOOKS_RECEIVED),
                    self._ingest(Metric.WEBHOOKS_ACCEPTED),
                    self._ingest(Metric.WEBHOOKS_REJECTED_SIGNATURE),
                    self._ingest(Metric.WEBHOOKS_REJECTED_MALFORMED),
                    self._ingest(Metric.WEBHOOKS_REJECTED_TOO_LARGE),
                ],
            ),
            self._graph(
                "API Gateway responses",
                [
                    stage.metric_count(period=PERIOD, statistic="Sum"),
                    stage.metric_client_error(period=PERIOD, statistic="Sum"),
                    stage.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
            ),
            self._graph(
                "Events synced / failed",
                [
                    self._sync(Metric.EVENTS_SYNCED),
                    self._sync(Metric.EVENTS_SKIPPED_STALE),
                    self._sync(Metric.EVENTS_FAILED_TRANSIENT),
                    self._sync(Metric.EVENTS_FAILED_PERMANENT),
                    self._sync(Metric.CONTACTS_CREATED),
                    self._sync(Metric.CONTACTS_UPDATED),
                ],
            ),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Sync queue",
                [
                    queues.queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    ),
                    queues.queue.metric_approximate_number_of_messages_not_visible(
                        period=PERIOD, statistic="Maximum"
                    ),
                ],
                [queues.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")],
            ),
            self._graph(
                "Dead-letter queue (should be 0)",
                [
                    queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
            ),
            self._graph(
                "Xero calls and limits",
                [self._sync(Metric.XERO_CALLS), self._sync(Metric.XERO_RATE_LIMITED)],
                [
                    self._sync(Metric.XERO_DAY_LIMIT_REMAINING, "Minimum"),
                    self._sync(Metric.XERO_MIN_LIMIT_REMAINING, "Minimum"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Xero authorisation",
                [
                    self._sync(Metric.TOKEN_REFRESHES),
                    self._sync(Metric.TOKEN_REFRESH_FAILURES),
                    self._sync(Metric.XERO_AUTHORISATION_LOST),
                ],
            ),
            self._graph(
                "Lambda errors and throttles",
                [
                    fn.metric_errors(period=PERIOD, statistic="Sum", label=f"{svc.value} errors")
                    for svc, fn in functions.items()
                ]
                + [
                    fn.metric_throttles(period=PERIOD, statistic="Sum", label=f"{svc.value} throttles")
                    for svc, fn in functions.items()
                ],
            ),
            self._graph(
                "Lambda duration (p95, ms)",
                [
                    fn.metric_duration(period=PERIOD, statistic="p95", label=f"{svc.value} p95")
                    for svc, fn in functions.items()
                ],
            ),
        )
