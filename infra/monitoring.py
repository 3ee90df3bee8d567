"""Dashboard ("is it working?") and the alarms that need a person, e-mailed through SNS.

Business metrics come from the functions (Powertools EMF): namespace and metric names are
``shared.observability``'s, dimension ``service``. AWS metrics (API Gateway, SQS, Lambda) fill in
the rest. An alarm exists only where a person has to act; each description says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.backlog_widget import backlog_widget
from infra.config import AlarmSettings, ClientConfig
from infra.queues import SyncQueues
from shared.config import DiscrepancyCategory
from shared.observability import Metric, Service, metrics_namespace

PERIOD = Duration.minutes(5)
# Reconciliation runs every 15 minutes to once a day: hourly sums read better than 5-minute ones.
RECONCILE_PERIOD = Duration.hours(1)
AT_LEAST = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD

# ReconcileDiscrepancies carries a second dimension, ``category``: the dashboard finds every
# category with SEARCH, while an alarm can only sum explicit metrics, at most 10 of them
# (CloudWatch), so these: shared/config.py DiscrepancyCategory (dead letters have their own
# alarm). tests/infra/test_reconcile_stack.py compares the two lists.
DISCREPANCY_CATEGORIES: tuple[DiscrepancyCategory, ...] = get_args(DiscrepancyCategory)


# What to do for each alarm: its section in the runbook, headed by the alarm's id. A path and an
# anchor rather than a URL: it reads the same in a checkout, an archive or any Git host.
RUNBOOK = "docs/runbook.md"


def runbook_link(alarm_id: str) -> str:
    """``docs/runbook.md#<anchor>``: the anchor GitHub and most Markdown viewers derive from a
    heading that is just the alarm's id."""
    return f"{RUNBOOK}#{alarm_id.lower()}"


@dataclass(frozen=True)
class Watched:
    stage: apigateway.Stage
    queues: SyncQueues
    functions: dict[Service, lambda_.Function]
    archive_bucket: s3.IBucket


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
        self,
        metric: Metric,
        service: Service,
        statistic: str = "Sum",
        label: str | None = None,
        period: Duration = PERIOD,
        category: str | None = None,
    ) -> cloudwatch.Metric:
        dimensions = {"service": service.value} | ({"category": category} if category else {})
        return cloudwatch.Metric(
            namespace=self._namespace,
            metric_name=metric.value,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period,
            label=label,
        )

    def _reconcile(
        self,
        metric: Metric,
        statistic: str = "Sum",
        period: Duration = RECONCILE_PERIOD,
        label: str | None = None,
    ) -> cloudwatch.Metric:
        return self._metric(metric, Service.RECONCILE, statistic, label, period)

    def _discrepancies_by_category(self, period: Duration = RECONCILE_PERIOD) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{self._namespace},category,service}} "
                f'MetricName="{Metric.RECONCILE_DISCREPANCIES.value}" '
                f"service=\"{Service.RECONCILE.value}\"', 'Sum', {int(period.to_seconds())})"
            ),
            label="",  # each line is named by its category
            period=period,
        )

    def _discrepancies_total(self, period: Duration = RECONCILE_PERIOD) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression="SUM(METRICS())",
            using_metrics={
                category: self._metric(
                    Metric.RECONCILE_DISCREPANCIES, Service.RECONCILE, period=period, category=category
                )
                for category in DISCREPANCY_CATEGORIES
            },
            label="discrepancies",
            period=period,
        )

    def _sums(self, service: Service, *metrics: Metric) -> list[cloudwatch.IMetric]:
        """Each metric's 5-minute sum, the lines of one graph."""
        return [self._metric(metric, service) for metric in metrics]

    def _sync(self, metric: Metric, statistic: str = "Sum") -> cloudwatch.Metric:
        return self._metric(metric, Service.SYNC, statistic)

    # --- alarms -----------------------------------------------------------------------------

    def _alarm(
        self,
        alarm_id: str,
        *,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        periods: int = 1,
        comparison: cloudwatch.ComparisonOperator = AT_LEAST,
    ) -> cloudwatch.Alarm:
        """An alarm whose description ends with its runbook section, the link a person follows
        from the e-mail to what to do. No data is not a breach: every metric here is a count of
        something going wrong, absent while nothing does."""
        return cloudwatch.Alarm(
            self,
            alarm_id,
            alarm_description=f"{description} Runbook: {runbook_link(alarm_id)}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _alarms(self) -> list[cloudwatch.Alarm]:
        config, queues = self._config.alarms, self._watched.queues
        sync_fn = self._watched.functions[Service.SYNC]
        sustained = config.sustained_periods
        return [
            *self._core_alarms(config, queues, sync_fn, sustained),
            *self._reconcile_alarms(),
            *self._poll_alarms(sustained),
            *self._ignition_mcp_alarms(),
        ]

    def _ignition_mcp_alarms(self) -> list[cloudwatch.Alarm]:
        """Xero -> Ignition drafts (runtime.xero_to_ignition) only."""
        if not self._config.drafts_to_ignition:
            return []
        return [
            self._alarm(
                "IgnitionMcpAuthorisationLost",
                description=(
                    "The Ignition user's MCP connection is gone (revoked, refresh refused, or Ignition "
                    "gave no refresh token and the access token expired): no invoice draft reaches "
                    "Ignition until that user connects again with `python -m cli connect ignition-mcp "
                    f"--client {self._config.name}`."
                ),
                metric=self._sync(Metric.IGNITION_MCP_AUTHORISATION_LOST),
                threshold=1,
            )
        ]

    def _poll_alarms(self, sustained: int) -> list[cloudwatch.Alarm]:
        poll_fn = self._watched.functions.get(Service.POLL)
        if poll_fn is None:
            return []
        return [
            self._alarm(
                "PollFailing",
                description=(
                    f"The Ignition poller failed in {sustained} 5-minute periods in a row, so no change "
                    "reaches Xero without a webhook (the hourly reconciliation still catches up). Read "
                    "the poll function's logs: an IgnitionAuthError needs `python -m cli connect "
                    f"ignition --client {self._config.name}`; a rate limit or an outage passes by itself. "
                    "Its cursor keeps what was queued; the next good run catches up."
                ),
                metric=poll_fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                periods=sustained,
            )
        ]

    def _reconcile_alarms(self) -> list[cloudwatch.Alarm]:
        reconcile_fn = self._watched.functions[Service.RECONCILE]
        reports = f"s3://{self._watched.archive_bucket.bucket_name}/reports/"
        rerun = f"python -m cli reconcile --now --client {self._config.name}"
        threshold = self._config.alarms.reconcile_discrepancies_above
        return [
            self._alarm(
                "ReconcileErrors",
                description=(
                    "The reconcile function crashed or timed out, so no report was written for that run. "
                    "Read the exception in its logs (secrets readable? Xero authorised?), fix it, then "
                    f"run `{rerun}`; scheduled runs continue meanwhile."
                ),
                metric=reconcile_fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
            ),
            self._alarm(
                "ReconcileFailures",
                description=(
                    "A reconciliation run failed part-way (it says why in its report). Open the newest "
                    f"report under {reports} and the reconcile function's logs, fix the cause, then "
                    f"run `{rerun}`."
                ),
                metric=self._reconcile(Metric.RECONCILE_FAILURES, period=PERIOD),
                threshold=1,
            ),
            self._alarm(
                "ReconcileDiscrepanciesHigh",
                description=(
                    f"Reconciliation found more than {threshold} differences between Ignition and Xero "
                    "within an hour (missing, drifted, duplicated or orphaned records). Open the newest "
                    f"report under {reports}: it lists each record with links and what was re-queued; "
                    f"fix what needs a person in Xero or Ignition, then run `{rerun}` to confirm."
                ),
                metric=self._discrepancies_total(),
                threshold=threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
        ]

    def _core_alarms(
        self, config: AlarmSettings, queues: SyncQueues, sync_fn: lambda_.Function, sustained: int
    ) -> list[cloudwatch.Alarm]:
        return [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                description=(
                    "An event failed every delivery attempt and is parked in the dead-letter queue; "
                    f"nothing is lost. `python -m cli status --client {self._config.name}` lists the "
                    "failure categories and reasons; fix the cause (mapping, Xero validation, "
                    "secrets), then put the events back with `python -m cli replay dlq --client "
                    f"{self._config.name} --category <category> --dry-run` and again without "
                    "--dry-run."
                ),
                metric=queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
            ),
            self._alarm(
                "SyncQueueStuck",
                description=(
                    f"The oldest queued event has waited more than {config.oldest_message_age_minutes} "
                    "minutes: sync is failing, throttled or out of Xero calls. Check the dashboard "
                    "(sync errors, Xero limits) and the sync function's logs."
                ),
                metric=queues.queue.metric_approximate_age_of_oldest_message(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=config.oldest_message_age_minutes * 60,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            ),
            self._alarm(
                "XeroAuthorisationLost",
                description=(
                    "The Xero connection is gone (refresh token expired or revoked, or the Custom "
                    "Connection credentials were rejected). Nothing reaches Xero until a Xero admin "
                    f"re-authorises with `python -m cli connect xero --client {self._config.name}`."
                ),
                metric=self._sync(Metric.XERO_AUTHORISATION_LOST),
                threshold=1,
            ),
            self._alarm(
                "IngestServerErrors",
                description=(
                    f"The webhook endpoint answered 5XX for {sustained} periods of 5 minutes in a row: "
                    "Ignition retries for about a day, then drops events. Check the ingest function's "
                    "errors and logs (secrets readable? queue reachable?)."
                ),
                metric=self._watched.stage.metric_server_error(period=PERIOD, statistic="Sum"),
                threshold=config.ingest_5xx_per_period,
                periods=sustained,
            ),
            self._alarm(
                "SyncErrors",
                description=(
                    f"The sync function failed whole invocations for {sustained} periods of 5 minutes "
                    "in a row (not single events: those retry and end in the DLQ). Check its logs for "
                    "the exception; events wait safely in the queue meanwhile."
                ),
                metric=sync_fn.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=config.sync_errors_per_period,
                periods=sustained,
            ),
            self._alarm(
                "XeroDailyBudgetLow",
                description=(
                    f"Fewer than {config.xero_day_limit_remaining_below} Xero API calls are left today "
                    f"for this organisation ({self._config.runtime.xero.day_limit:,}/day). Sync pauses "
                    "when they run out and resumes after Xero's daily reset; the dashboard's Backlog "
                    "widget says when the queued changes land. Look for an unusual burst (bulk import, "
                    "replay loop)."
                ),
                metric=self._sync(Metric.XERO_DAY_LIMIT_REMAINING, "Minimum"),
                threshold=config.xero_day_limit_remaining_below,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            ),
        ]

    # --- dashboard --------------------------------------------------------------------------

    def _graph(
        self,
        title: str,
        left: Sequence[cloudwatch.IMetric],
        right: Sequence[cloudwatch.IMetric] = (),
        width: int = 8,
        *,
        left_alarms: Sequence[str] = (),
        right_alarms: Sequence[str] = (),
    ) -> cloudwatch.GraphWidget:
        """``left_alarms``/``right_alarms``: ids of alarms on a metric of that axis, drawn as their
        threshold lines where a person already looks."""
        return cloudwatch.GraphWidget(
            title=title,
            left=list(left),
            right=list(right),
            left_annotations=[self._threshold_line(a) for a in left_alarms],
            right_annotations=[self._threshold_line(a) for a in right_alarms],
            width=width,
            height=6,
        )

    def _threshold_line(self, alarm_id: str) -> cloudwatch.HorizontalAnnotation:
        """The alarm's own threshold (never a copy of its setting), named after the alarm so the
        line matches the e-mail and the runbook section."""
        (alarm,) = [a for a in self.alarms if a.node.id == alarm_id]
        line = alarm.to_annotation()
        return cloudwatch.HorizontalAnnotation(value=line.value, label=f"alarm {alarm_id}: {line.label}")

    def _widgets(self) -> None:
        queues, functions, stage = self._watched.queues, self._watched.functions, self._watched.stage
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# Ignition -> Xero sync: {self._config.name}\n"
                    "Webhooks in, events synced to Xero, nothing waiting in the dead-letter queue = working. "
                    f"Alarms e-mail a person with what to do ({RUNBOOK}); their thresholds are "
                    "drawn on the graphs below and, one graph per alarm, at the bottom."
                ),
                width=16,
                height=3,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=8, height=3),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Webhooks",
                self._sums(
                    Service.INGEST,
                    Metric.WEBHOOKS_RECEIVED,
                    Metric.WEBHOOKS_ACCEPTED,
                    Metric.WEBHOOKS_REJECTED_SIGNATURE,
                    Metric.WEBHOOKS_REJECTED_MALFORMED,
                    Metric.WEBHOOKS_REJECTED_TOO_LARGE,
                ),
            ),
            self._graph(
                "API Gateway responses",
                [
                    stage.metric_count(period=PERIOD, statistic="Sum"),
                    stage.metric_client_error(period=PERIOD, statistic="Sum"),
                    stage.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                left_alarms=["IngestServerErrors"],
            ),
            self._graph(
                "Events synced / failed",
                self._sums(
                    Service.SYNC,
                    Metric.EVENTS_SYNCED,
                    Metric.EVENTS_SKIPPED_STALE,
                    Metric.EVENTS_FAILED_TRANSIENT,
                    Metric.EVENTS_FAILED_PERMANENT,
                    # Waits behind Xero's limits: a burst shows here, not as failures.
                    Metric.EVENTS_DEFERRED,
                    Metric.CONTACTS_CREATED,
                    Metric.CONTACTS_UPDATED,
                    # Invoice drafts made in Ignition from Xero (runtime.xero_to_ignition only).
                    *([Metric.IGNITION_DRAFTS_CREATED] if self._config.drafts_to_ignition else []),
                ),
            ),
        )
        self.dashboard.add_widgets(
            self._graph(
                "Invoices and payments written to Xero",
                self._sums(
                    Service.SYNC,
                    Metric.INVOICES_CREATED,
                    Metric.INVOICES_UPDATED,
                    Metric.INVOICES_VOIDED,
                    Metric.PAYMENTS_APPLIED,
                ),
                [self._sync(Metric.AMOUNT_MISMATCHES)],
                width=24,
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
                right_alarms=["SyncQueueStuck"],
            ),
            self._graph(
                "Dead-letter queue (should be 0)",
                [
                    queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    )
                ],
                left_alarms=["DeadLetterQueueNotEmpty"],
            ),
            self._graph(
                "Xero calls and limits",
                [self._sync(Metric.XERO_CALLS), self._sync(Metric.XERO_RATE_LIMITED)],
                [
                    self._sync(Metric.XERO_DAY_LIMIT_REMAINING, "Minimum"),
                    self._sync(Metric.XERO_MIN_LIMIT_REMAINING, "Minimum"),
                ],
                right_alarms=["XeroDailyBudgetLow"],
            ),
        )
        self.dashboard.add_widgets(
            backlog_widget(
                self._config.runtime.xero,
                {
                    "visible": queues.queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum"
                    ),
                    "inflight": queues.queue.metric_approximate_number_of_messages_not_visible(
                        period=PERIOD, statistic="Maximum"
                    ),
                    "xcalls": self._sync(Metric.XERO_CALLS),
                    "synced": self._sync(Metric.EVENTS_SYNCED),
                    "dayleft": self._sync(Metric.XERO_DAY_LIMIT_REMAINING, "Minimum"),
                },
                PERIOD,
            )
        )
        self.dashboard.add_widgets(
            self._graph(
                "Xero authorisation",
                self._sums(
                    Service.SYNC,
                    Metric.TOKEN_REFRESHES,
                    Metric.TOKEN_REFRESH_FAILURES,
                    Metric.XERO_AUTHORISATION_LOST,
                ),
                left_alarms=["XeroAuthorisationLost"],
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
                    if svc is not Service.RECONCILE  # minutes, not milliseconds: its own widget
                ],
            ),
        )
        self._reconcile_widgets()
        self._poll_widgets()
        self._alarm_widgets()

    def _alarm_widgets(self) -> None:
        """One graph per alarm: CloudWatch draws the alarm's own metric (its math included) with
        its threshold, so what an e-mail reports can be seen against the line it crossed."""
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    "## Alarms and their thresholds\n"
                    "Each graph is an alarm's metric; the line is where it fires. What to do: "
                    f"`{RUNBOOK}`, the section named after the alarm."
                ),
                width=24,
                height=2,
            )
        )
        per_row = 4
        widgets = [
            cloudwatch.AlarmWidget(alarm=alarm, title=alarm.node.id, width=24 // per_row, height=5)
            for alarm in self.alarms
        ]
        for start in range(0, len(widgets), per_row):
            self.dashboard.add_widgets(*widgets[start : start + per_row])

    def _poll_widgets(self) -> None:
        poll_fn = self._watched.functions.get(Service.POLL)
        if poll_fn is None:
            return
        self.dashboard.add_widgets(
            self._graph(
                "Ignition poller (5 minutes)",
                [
                    self._metric(Metric.POLL_EVENTS_QUEUED, Service.POLL, label="changes queued"),
                    self._metric(Metric.POLL_FAILURES, Service.POLL, label="failed runs"),
                ],
                [
                    # Runs that saw changes publish their figures; an idle run only its free
                    # invocation (functions/poll/handler.py worth_counting).
                    self._metric(
                        Metric.POLL_IGNITION_REQUESTS,
                        Service.POLL,
                        label="Ignition requests (runs with changes)",
                    ),
                    poll_fn.metric_invocations(period=PERIOD, statistic="Sum", label="runs"),
                    self._metric(Metric.POLL_RUNS, Service.POLL, label="runs with changes"),
                    self._metric(
                        Metric.POLL_SKIPPED_FOR_BUDGET, Service.POLL, label="runs skipped (request budget)"
                    ),
                ],
                width=24,
            )
        )

    def _reconcile_widgets(self) -> None:
        day = Duration.days(1)
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    "## Reconciliation and Xero webhooks\n"
                    f"Reports: `s3://<archive bucket>/reports/`. Run now: "
                    f"`python -m cli reconcile --now --client {self._config.name}`."
                ),
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.SingleValueWidget(
                title="Reconciliation, last 24 hours",
                metrics=[
                    # Every run (free); ReconcileRuns counts only runs that found or healed
                    # something (functions/reconcile/handler.py: an idle run publishes nothing).
                    self._watched.functions[Service.RECONCILE].metric_invocations(
                        period=day, statistic="Sum", label="runs"
                    ),
                    self._reconcile(Metric.RECONCILE_RUNS, period=day, label="runs with findings"),
                    self._reconcile(Metric.RECONCILE_FAILURES, period=day, label="failed runs"),
                    self._discrepancies_total(day),
                    self._reconcile(Metric.RECONCILE_HEALED, period=day, label="re-queued (healed)"),
                ],
                width=8,
                height=4,
            ),
            self._graph(
                "Reconciliation runs (hourly)",
                [
                    self._reconcile(Metric.RECONCILE_RUNS, label="runs with findings"),
                    self._reconcile(Metric.RECONCILE_FAILURES, label="failed"),
                    self._reconcile(Metric.RECONCILE_HEALED, label="healed"),
                    self._reconcile(Metric.DEAD_LETTERS_REQUEUED, label="dead letters put back"),
                ],
            ),
            self._graph("Discrepancies by category (hourly)", [self._discrepancies_by_category()]),
        )
        reconcile_fn = self._watched.functions[Service.RECONCILE]
        self.dashboard.add_widgets(
            self._graph(
                "Reconciliation duration (s)",
                [self._reconcile(Metric.RECONCILE_DURATION_SECONDS, "Maximum", label="run (max)")],
                [
                    reconcile_fn.metric_duration(
                        period=RECONCILE_PERIOD, statistic="Maximum", label="Lambda duration (ms, max)"
                    )
                ],
            ),
            self._graph(
                "Xero webhooks",
                self._sums(
                    Service.XERO_WEBHOOK,
                    Metric.XERO_WEBHOOKS_RECEIVED,
                    Metric.XERO_WEBHOOKS_REJECTED,
                    Metric.XERO_WEBHOOKS_QUARANTINED,
                ),
            ),
            self._graph(
                "Xero events recorded for reconciliation",
                self._sums(
                    Service.XERO_WEBHOOK,
                    Metric.XERO_EVENTS_RECORDED,
                    Metric.XERO_EVENTS_IGNORED,
                    Metric.XERO_EVENTS_STALE,
                ),
            ),
        )
