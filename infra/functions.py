"""The Lambda functions: one shared code asset, one role and one log group each.

Every function gets every ``shared.config.DeploymentSettings`` variable (names, not access: the
operator CLI reads them from any function's environment) and reads only its own settings at cold
start (``IngestSettings``, ``SyncSettings``, ...). Least privilege is in the roles: each one holds
only the grants its function uses, with explicit actions on specific resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import ClientConfig, LogRetentionDays
from infra.nag import acknowledge
from infra.queues import SyncQueues
from infra.secrets import IntegrationSecrets
from infra.storage import QUARANTINE_PREFIX, RAW_PREFIX, RECONCILE_WORK_PREFIX, REPORTS_PREFIX, Storage
from shared.ignition.budget import IGNITION_BUDGET_PK
from shared.oauth import IGNITION_TOKEN_LOCK
from shared.observability import Service, metrics_namespace
from shared.store.poll_state import POLL_LOCK, POLL_PK_PREFIX
from shared.version import VERSION, VERSION_ENV
from shared.xero.webhooks import EVENT_PK_PREFIX
from shared.xero.webhooks import QUARANTINE_PREFIX as XERO_QUARANTINE_PREFIX

RUNTIME = lambda_.Runtime.PYTHON_3_12
INGEST_TIMEOUT = Duration.seconds(10)
INGEST_MEMORY_MB = 256
SYNC_MEMORY_MB = 512
XERO_WEBHOOK_TIMEOUT = Duration.seconds(10)  # Xero wants an answer within 5 s; a slower one is retried
XERO_WEBHOOK_MEMORY_MB = 256
# The longest Lambda allows: a full run pages through every contact, invoice and payment on both
# sides within Xero's call budget, checkpointing before it runs out of time.
RECONCILE_TIMEOUT = Duration.minutes(15)
RECONCILE_MEMORY_MB = 1024
# A poll run reads at most a few pages per resource; under the run lease (shared/store/poll_state.py
# holds it 120 s) and under the default 2-minute schedule, so runs do not pile up.
POLL_TIMEOUT = Duration.seconds(90)
POLL_MEMORY_MB = 256

# ClientConfig.log_retention_days allows exactly CloudWatch's values, in this order.
_RETENTION: dict[int, logs.RetentionDays] = dict(
    zip(
        get_args(LogRetentionDays),
        [m for m in logs.RetentionDays if m is not logs.RetentionDays.INFINITE],
        strict=True,
    )
)


def log_retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]


# What each function does: its Lambda and its role carry it, so the console says it.
DESCRIPTIONS = {
    Service.INGEST: "Verifies, archives and enqueues Ignition webhooks",
    Service.SYNC: "Applies queued Ignition changes to Xero",
    Service.XERO_WEBHOOK: "Verifies Xero webhooks and records their events for reconciliation",
    Service.RECONCILE: "Reconciles Ignition and Xero, reports and re-queues what differs",
    Service.POLL: "Polls Ignition's Reporting API for changes and queues them for the sync",
}

_RUNTIME_VERSION_REASON = (
    "Pinned to python3.12: the dependency wheels are built for cp312 (infra/bundling.py) and the "
    "functions are tested on it; moving to a newer runtime is a deliberate, tested change."
)


@dataclass(frozen=True)
class Resources:
    """What the functions are wired to."""

    storage: Storage
    queues: SyncQueues
    secrets: IntegrationSecrets
    report_topic: sns.ITopic


def environment(config: ClientConfig, resources: Resources, service: Service) -> dict[str, str]:
    """The variables every function reads (names fixed by shared.config / Powertools)."""
    secrets = resources.secrets
    return {
        "CLIENT_NAME": config.name,
        "STATE_TABLE_NAME": resources.storage.state_table.table_name,
        "IDEMPOTENCY_TABLE_NAME": resources.storage.idempotency_table.table_name,
        "ARCHIVE_BUCKET_NAME": resources.storage.archive_bucket.bucket_name,
        "SYNC_QUEUE_URL": resources.queues.queue.queue_url,
        "DLQ_URL": resources.queues.dead_letter_queue.queue_url,
        "XERO_CLIENT_SECRET_ID": secrets.names["XeroClient"],
        "XERO_TOKEN_SECRET_ID": secrets.names["XeroToken"],
        "IGNITION_WEBHOOK_SECRET_ID": secrets.names["IgnitionWebhook"],
        "IGNITION_API_SECRET_ID": secrets.names["IgnitionApi"],
        "XERO_WEBHOOK_SECRET_ID": secrets.names["XeroWebhook"],
        # Only where runtime.xero_to_ignition is enabled (infra/secrets.py creates it only then).
        **({"IGNITION_MCP_SECRET_ID": name} if (name := secrets.names.get("IgnitionMcp")) else {}),
        "INTEGRATION_CONFIG": config.integration_config_json(),
        "POWERTOOLS_SERVICE_NAME": service.value,
        "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace(config.name),
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        # Which release this code is (python -m cli status shows it).
        VERSION_ENV: VERSION,
    }


# What the sync function does to its two tables (shared/store, shared/oauth, Powertools idempotency).
SYNC_ITEM_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
# The reconcile function's, on the state table (shared/reconcile, shared/store).
RECONCILE_TABLE_ACTIONS = (*SYNC_ITEM_ACTIONS, "Query", "BatchGetItem")


def _grant_token_rotation(role: iam.IRole, *tokens: secretsmanager.ISecret) -> None:
    """Read the token sets, and store a refreshed one as a new version (PutSecretValue, which
    moves AWSCURRENT itself): never UpdateSecret (description, KMS key) or
    UpdateSecretVersionStage (moving labels by hand), which ``grant_write`` would add."""
    for secret in tokens:
        secret.grant_read(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["secretsmanager:PutSecretValue"], resources=[secret.secret_arn for secret in tokens]
        )
    )


def _logical_id(construct: Construct) -> str:
    """The CloudFormation logical id cdk-nag uses in a finding's id."""
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return Stack.of(construct).get_logical_id(resource)


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ClientConfig,
        resources: Resources,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._resources = resources
        self._code = code

        self.ingest = self._function(Service.INGEST, INGEST_MEMORY_MB, INGEST_TIMEOUT)
        sync_timeout = Duration.seconds(config.sync.timeout_seconds)
        self.sync = self._function(Service.SYNC, SYNC_MEMORY_MB, sync_timeout)
        self.xero_webhook = self._function(Service.XERO_WEBHOOK, XERO_WEBHOOK_MEMORY_MB, XERO_WEBHOOK_TIMEOUT)
        self.reconcile = self._function(
            Service.RECONCILE,
            RECONCILE_MEMORY_MB,
            RECONCILE_TIMEOUT,
            extra_environment={"ALERT_TOPIC_ARN": resources.report_topic.topic_arn},
        )
        # No automatic retry of a failed run: the next scheduled run (15 minutes to a day away) is
        # the retry, an immediate one would compete with it for Xero's call budget, and a failure
        # alarms so a person can run `python -m cli reconcile --now`.
        self.reconcile.configure_async_invoke(retry_attempts=0, max_event_age=Duration.hours(1))
        # Only where the configuration asks for it (runtime.ignition.sources).
        self.poll: lambda_.Function | None = None
        if config.polls:
            self.poll = self._function(Service.POLL, POLL_MEMORY_MB, POLL_TIMEOUT)
            # The schedule's next run (minutes away) is the retry; an immediate one would only
            # meet the same fault and the run lease.
            self.poll.configure_async_invoke(retry_attempts=0, max_event_age=Duration.minutes(10))
            self._grant_poll(self.poll)
        self._grant_ingest()
        self._grant_sync()
        self._grant_xero_webhook()
        self._grant_reconcile()
        # The concurrency cap lives on the event source (not reserved concurrency): it limits
        # parallel Xero calls without taking capacity from the account's unreserved pool.
        self.sync.add_event_source(
            event_sources.SqsEventSource(
                resources.queues.queue,
                batch_size=config.sync.batch_size,
                report_batch_item_failures=True,
                max_concurrency=config.sync.max_concurrency,
            )
        )

    def _function(
        self,
        service: Service,
        memory_size: int,
        timeout: Duration,
        *,
        extra_environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        """The function of ``service``, built from the shared asset by its handler's name only
        (``functions/<service>/handler.py``): synthesis never imports the module."""
        handler = f"functions.{service.value.replace('-', '_')}.handler.handler"
        description = DESCRIPTIONS[service]
        name = "".join(part.capitalize() for part in service.value.split("-"))
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=log_retention(self._config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} ({self._config.name})",
        )
        # Instead of the AWSLambdaBasicExecutionRole managed policy (logs:* on every group).
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=self._code,
            handler=handler,
            role=role,
            memory_size=memory_size,
            timeout=timeout,
            description=description,
            environment={**environment(self._config, self._resources, service), **(extra_environment or {})},
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Off by default: Powertools Tracer adds ~200 ms to every cold start; logs and EMF
            # metrics answer the operational questions. Clients can switch it on in the config.
            tracing=lambda_.Tracing.ACTIVE if self._config.tracing else lambda_.Tracing.DISABLED,
        )
        if self._config.tracing:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]
                )
            )
        acknowledge(function, "L1", _RUNTIME_VERSION_REASON)
        return function

    def _grant_ingest(self) -> None:
        resources, role = self._resources, self.ingest.role
        assert role is not None
        bucket = resources.storage.archive_bucket
        # Write-only, to its two prefixes: it never reads back or deletes what it archived.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[
                    bucket.arn_for_objects(f"{RAW_PREFIX}*"),
                    bucket.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
                ],
            )
        )
        resources.queues.queue.grant_send_messages(role)
        resources.secrets.ignition_webhook.grant_read(role)
        for prefix in (RAW_PREFIX, QUARANTINE_PREFIX):
            acknowledge(
                role,
                f"IAM5[Resource::<{_logical_id(bucket)}.Arn>/{prefix}*]",
                f"s3:PutObject on objects under {prefix} only: every archived body gets its own key, "
                "so the object ARN needs a wildcard; no other action and no other prefix.",
            )

    def _grant_sync(self) -> None:
        resources, role = self._resources, self.sync.role
        assert role is not None
        storage, secrets = resources.storage, resources.secrets
        # Item reads and writes only, no Query/Scan/Batch*/DescribeTable: mappings, audit, locks,
        # the call budget and per-message retry accounting in the state table (its transactions
        # are authorised as their PutItem/UpdateItem parts); Powertools' records in the other.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{action}" for action in SYNC_ITEM_ACTIONS],
                resources=[storage.state_table.table_arn, storage.idempotency_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[storage.archive_bucket.arn_for_objects(f"{RAW_PREFIX}*")]
            )
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{_logical_id(storage.archive_bucket)}.Arn>/{RAW_PREFIX}*]",
            "s3:GetObject on objects under raw/ only (to re-read an archived webhook body by its key); "
            "object keys are per event, so the ARN needs a wildcard.",
        )
        secrets.xero_client.grant_read(role)
        _grant_token_rotation(role, secrets.xero_token, secrets.ignition_api)
        if secrets.ignition_mcp is not None:
            # Xero -> Ignition drafts: the MCP user's rotating token set. Its lease, refresh journal
            # and request budget are state-table items the grant above already covers.
            _grant_token_rotation(role, secrets.ignition_mcp)
        # A permanent failure is parked in the DLQ with its category and reason by the function
        # itself (the queue's redrive carries no reason); grant_send_messages adds the queue's KMS
        # key too, should it ever get one.
        resources.queues.dead_letter_queue.grant_send_messages(role)

    def _grant_xero_webhook(self) -> None:
        resources, role = self._resources, self.xero_webhook.role
        assert role is not None
        storage = resources.storage
        # Only UpdateItem, and only on the xero-event items: it can neither read nor touch mappings.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[storage.state_table.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{EVENT_PK_PREFIX}*"]}},
            )
        )
        quarantine = f"{XERO_QUARANTINE_PREFIX}/*"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[storage.archive_bucket.arn_for_objects(quarantine)]
            )
        )
        acknowledge(
            role,
            f"IAM5[Resource::<{_logical_id(storage.archive_bucket)}.Arn>/{quarantine}]",
            f"s3:PutObject on objects under {quarantine} only, to keep an authentic Xero webhook body "
            "that could not be parsed; every body gets its own key, so the object ARN needs a wildcard.",
        )
        resources.secrets.xero_webhook.grant_read(role)
        # Invoice events go on to the sync worker where runtime.xero_to_ignition is enabled
        # (shared/xero_to_ignition/events.py); send only, as the ingest function may.
        resources.queues.queue.grant_send_messages(role)

    def _grant_reconcile(self) -> None:
        resources, role = self._resources, self.reconcile.role
        assert role is not None
        storage, secrets, queues = resources.storage, resources.secrets, resources.queues
        # Mappings, audit, checkpoints, the Xero call budget and locks, and the xero-event items
        # it consumes: item actions, Query and BatchGetItem only (no Scan, BatchWriteItem, streams).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{action}" for action in RECONCILE_TABLE_ACTIONS],
                resources=[storage.state_table.table_arn],
            )
        )
        bucket = storage.archive_bucket
        work = f"{RECONCILE_WORK_PREFIX}*"
        # Reports only (the engine never reads raw/ bodies: it works from both APIs). GetObject so the
        # presigned link in the notification, signed with this role, can open the report.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{REPORTS_PREFIX}*")],
            )
        )
        # A long full run checkpoints its working set (SQLite) and the next invocation resumes it.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects(work)],
            )
        )
        # Key names only (no content), and only under the working-set prefix: the run lists its
        # working set's key before downloading it, so a missing one reads as "start afresh".
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [work]}},
            )
        )
        for prefix, actions in (
            (REPORTS_PREFIX, "s3:PutObject (one report per run)"),
            (RECONCILE_WORK_PREFIX, "s3:PutObject/GetObject/DeleteObject (one working set per run)"),
        ):
            acknowledge(
                role,
                f"IAM5[Resource::<{_logical_id(bucket)}.Arn>/{prefix}*]",
                f"{actions} on objects under {prefix} only; object keys carry the run id, so the ARN "
                "needs a wildcard.",
            )
        # Re-queues drift for the sync function to apply (never consumes the sync queue itself).
        queues.queue.grant_send_messages(role)
        # Reports what sits in the DLQ (receives, then releases at once), and puts back on the sync
        # queue what the redrive policy moved there without a reason (receive, delete; or re-send
        # to the DLQ with a reason once it was put back too often).
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                    "sqs:DeleteMessage",
                    "sqs:SendMessage",
                ],
                resources=[queues.dead_letter_queue.queue_arn],
            )
        )
        secrets.xero_client.grant_read(role)
        # It calls Xero and Ignition like sync does, so it may refresh (and store) a token set.
        _grant_token_rotation(role, secrets.xero_token, secrets.ignition_api)
        resources.report_topic.grant_publish(role)

    def _grant_poll(self, function: lambda_.Function) -> None:
        resources, role = self._resources, function.role
        assert role is not None
        # Its cursor (poll#...), its run lease and the Ignition token lease and refresh journal
        # (lock#...), and the practice's Ignition request budget it shares with the sync and the
        # reconciliation: item actions on those keys only, nothing of mappings, audit or Xero.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{action}" for action in SYNC_ITEM_ACTIONS],
                resources=[resources.storage.state_table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {
                        "dynamodb:LeadingKeys": [
                            f"{POLL_PK_PREFIX}*",
                            f"lock#{POLL_LOCK}",
                            f"lock#{IGNITION_TOKEN_LOCK}",
                            IGNITION_BUDGET_PK,
                        ]
                    }
                },
            )
        )
        resources.queues.queue.grant_send_messages(role)
        # Reads Ignition only: its one token set, stored again when it refreshes it (Ignition's
        # refresh tokens rotate). No Xero secret.
        _grant_token_rotation(role, resources.secrets.ignition_api)
