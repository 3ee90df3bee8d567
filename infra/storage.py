"""DynamoDB tables and the archive bucket. Data outlives the stack: everything here is RETAIN."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ArchiveSettings
from infra.nag import acknowledge

RAW_PREFIX = "raw/"
QUARANTINE_PREFIX = "quarantine/"
REPORTS_PREFIX = "reports/"
# The reconcile function's working set between two invocations of one long run (checkpoint).
RECONCILE_WORK_PREFIX = "reconcile/work/"


def _table(
    scope: Construct, construct_id: str, *, partition: str, sort: str | None, ttl: str
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING) if sort else None,
        time_to_live_attribute=ttl,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        # Customer-visible KMS key (aws/dynamodb) instead of the invisible AWS-owned default.
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


def _private_bucket(scope: Construct, construct_id: str, **props: Any) -> s3.Bucket:
    return s3.Bucket(
        scope,
        construct_id,
        # SSE-S3: S3 server access log delivery supports only it on the target bucket, and the
        # archive's objects are read by the functions' roles alone.
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        **props,
    )


class Storage(Construct):
    """State table (mappings, audit, locks, call budget), idempotency table, archive bucket."""

    def __init__(self, scope: Construct, construct_id: str, *, archive: ArchiveSettings) -> None:
        super().__init__(scope, construct_id)
        self.state_table = _table(self, "StateTable", partition="pk", sort="sk", ttl="expires_at")
        # Powertools idempotency layout: partition key "id", TTL attribute "expiration".
        self.idempotency_table = _table(self, "IdempotencyTable", partition="id", sort=None, ttl="expiration")

        self.access_logs_bucket = _private_bucket(
            self,
            "AccessLogsBucket",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(archive.raw_expire_after_days))],
        )
        acknowledge(
            self.access_logs_bucket,
            "S1",
            "This bucket is the server-access-log target of the archive bucket; logging it too would "
            "only log the log delivery.",
        )

        self.archive_bucket = _private_bucket(
            self,
            "ArchiveBucket",
            # Versioned: raw bodies and quarantined events are the evidence behind "never lose an
            # event"; versions make an accidental overwrite or delete recoverable for 30 days at
            # almost no cost (objects are small and written once).
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="archive/",
            lifecycle_rules=self._lifecycle(archive),
        )

    @staticmethod
    def _lifecycle(archive: ArchiveSettings) -> list[s3.LifecycleRule]:
        return [
            s3.LifecycleRule(
                id="raw",
                prefix=RAW_PREFIX,
                # S3 skips objects under 128 KB for this transition, so small bodies stay STANDARD.
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=Duration.days(archive.raw_infrequent_access_after_days),
                    )
                ],
                expiration=Duration.days(archive.raw_expire_after_days),
            ),
            s3.LifecycleRule(
                id="quarantine",
                prefix=QUARANTINE_PREFIX,
                expiration=Duration.days(archive.quarantine_expire_after_days),
            ),
            s3.LifecycleRule(
                id="reports",
                prefix=REPORTS_PREFIX,
                expiration=Duration.days(archive.reports_expire_after_days),
            ),
            # A resumed run deletes its working set when done; one a crash left behind is of no use
            # after a week (the next full run starts afresh).
            s3.LifecycleRule(id="reconcile-work", prefix=RECONCILE_WORK_PREFIX, expiration=Duration.days(7)),
            s3.LifecycleRule(
                id="housekeeping",
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(1),
                expired_object_delete_marker=True,
            ),
        ]
