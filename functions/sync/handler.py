"""Sync Lambda: SQS FIFO batch -> one idempotent sync per Ignition event.

Failures (the policy is :mod:`shared.delivery`): a wait for a limit or a transient fault fails only
its message group (the rest of the batch completes) and comes back later, waits never counted
against the event; permanent failures, and faults that outlast the retry rules, go to the DLQ with
their category and reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared.config import IntegrationConfig, RuntimeSettings
from shared.delivery import DeferredBehindLimit, DeliveryPolicy, GiveUp, RateLimitWait
from shared.models.events import SyncEvent
from shared.oauth import RefreshOutcome
from shared.observability import Metric
from shared.store.attempts import DynamoAttemptLedger
from shared.store.dead_letter_queue import DeadLetters
from shared.store.queue import SqsEventQueue
from shared.wiring import SyncService, build_sync_service
from shared.xero.client import XeroCall

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"shared"})

settings = RuntimeSettings.from_env()
config = IntegrationConfig.from_env()
processor = SqsFifoPartialProcessor(skip_group_on_error=True)
# A batch that only waits (every record behind a spent budget) is answered like any other: the
# failures listed, each with its own delay, rather than an exception that retries all of them.
processor.raise_on_entire_batch_failure = False
dead_letters = DeadLetters(settings.dlq_url)
sync_queue = SqsEventQueue(settings.sync_queue_url)
policy = DeliveryPolicy(DynamoAttemptLedger(settings.state_table), config.retries)
idempotency = IdempotencyConfig(
    # The producer's event id plus the body hash: a redelivery is a no-op, a different body is not.
    event_key_jmespath="[event_id, payload_sha256]",
    expires_after_seconds=7 * 24 * 3600,
)
persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)


def count(metric: Metric, value: float = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def on_xero_call(call: XeroCall) -> None:
    count(Metric.XERO_CALLS)
    if call.status == 429:
        count(Metric.XERO_RATE_LIMITED)
    if call.day_remaining is not None:
        metrics.add_metric(
            name=Metric.XERO_DAY_LIMIT_REMAINING, unit=MetricUnit.Count, value=call.day_remaining
        )
    if call.min_remaining is not None:
        metrics.add_metric(
            name=Metric.XERO_MIN_LIMIT_REMAINING, unit=MetricUnit.Count, value=call.min_remaining
        )


def on_token_refresh(outcome: RefreshOutcome) -> None:
    count(
        {
            "refreshed": Metric.TOKEN_REFRESHES,
            "failed": Metric.TOKEN_REFRESH_FAILURES,
            "authorisation_lost": Metric.XERO_AUTHORISATION_LOST,
        }[outcome]
    )


@cache
def service() -> SyncService:
    return build_sync_service(settings, config, on_xero_call=on_xero_call, on_token_refresh=on_token_refresh)


@idempotent_function(  # type: ignore[untyped-decorator]
    data_keyword_argument="event", config=idempotency, persistence_store=persistence
)
def apply(event: SyncEvent) -> dict[str, Any]:
    outcome = service().apply(event)
    return asdict(outcome)


def dead_letter(record: SQSRecord, *, group_id: str, category: str, reason: str) -> None:
    # One deduplication id per failed message, not per event: a replay is a new message, so a
    # replay that fails again within FIFO's 5-minute deduplication window still lands in the DLQ.
    dead_letters.send(
        record.body, group_id=group_id, dedup_id=record.message_id, category=category, reason=reason
    )
    count(Metric.EVENTS_FAILED_PERMANENT)
    # The reason stays in the (encrypted) DLQ message: Xero's messages can quote names.
    logger.error("event dead-lettered", extra={"category": category, "message_id": record.message_id})


class BatchAttempt:
    """One invocation's view of its batch: which messages were tried, and how long each failed
    FIFO group must wait, so members handed back untried return with their group's head."""

    def __init__(self) -> None:
        self.tried: set[str] = set()
        self.group_delays: dict[str, int] = {}
        # Set once a record of this batch waits for a limit (Xero's or Ignition's rate limit, the
        # call budget): the limit is the organisation's, so the rest of the batch waits with it
        # instead of each spending calls to find out.
        self.limit_delay: int | None = None

    def handle(self, record: SQSRecord) -> None:
        self.tried.add(record.message_id)
        if self.limit_delay is not None:
            self._defer(record, self.limit_delay)
        try:
            event = SyncEvent.model_validate_json(record.body)
        except ValidationError as exc:
            dead_letter(
                record,
                group_id="malformed",
                category="malformed_message",
                reason=f"queue message is not a SyncEvent: {exc.error_count()} error(s)",
            )
            return
        logger.append_keys(
            correlation_id=event.correlation_id, event_id=event.event_id, ignition_id=event.record_id
        )
        receives = int(record.attributes.approximate_receive_count or 1)
        refused = policy.before_attempt(record.message_id, receives)
        if refused is not None:
            dead_letter(record, group_id=event.group_id, category=refused.category, reason=refused.reason)
            return
        try:
            result = apply(event=event)
        except Exception as exc:
            decision = policy.after_failure(record.message_id, receives, exc)
            if isinstance(decision, GiveUp):
                dead_letter(
                    record, group_id=event.group_id, category=decision.category, reason=decision.reason
                )
                return
            count(Metric.EVENTS_DEFERRED if decision.wait else Metric.EVENTS_FAILED_TRANSIENT)
            self._keep(record, decision.delay_seconds)
            if decision.wait and isinstance(exc, RateLimitWait):
                self.limit_delay = decision.delay_seconds
            # A wait is routine (a burst behind Xero's limits): info; a fault is worth a warning.
            (logger.info if decision.wait else logger.warning)(
                "event will be retried",
                extra={
                    "error": type(exc).__name__,
                    "wait": decision.wait,
                    "retry_in_seconds": decision.delay_seconds,
                    "receives": receives,
                },
            )
            raise
        count_outcome(result)

    def _keep(self, record: SQSRecord, delay: int) -> None:
        sync_queue.delay(record.receipt_handle, delay)
        group = record.attributes.message_group_id
        if group is not None:
            self.group_delays[group] = delay

    def _defer(self, record: SQSRecord, delay: int) -> None:
        policy.untried([record.message_id])
        count(Metric.EVENTS_DEFERRED)
        self._keep(record, delay)
        raise DeferredBehindLimit(delay)

    def hand_back_untried(self, event: Mapping[str, Any], failed: set[str]) -> None:
        """Messages skipped behind a failed message of their group were not tried: record a wait
        for each (not a failure of theirs) and keep them as long as their group's head."""
        untried = [r for r in event.get("Records", []) if r["messageId"] in failed - self.tried]
        if not untried:
            return
        policy.untried([r["messageId"] for r in untried])
        for raw in untried:
            delay = self.group_delays.get(raw.get("attributes", {}).get("MessageGroupId", ""))
            if delay is not None:
                sync_queue.delay(raw["receiptHandle"], delay)


OUTCOME_METRICS: dict[tuple[str, str], Metric] = {
    ("client", "created"): Metric.CONTACTS_CREATED,
    ("client", "updated"): Metric.CONTACTS_UPDATED,
    ("invoice", "created"): Metric.INVOICES_CREATED,
    ("invoice", "updated"): Metric.INVOICES_UPDATED,
    ("invoice", "voided"): Metric.INVOICES_VOIDED,
    ("payment", "applied"): Metric.PAYMENTS_APPLIED,
}


def count_outcome(result: dict[str, Any]) -> None:
    action = str(result.get("action"))
    count(Metric.EVENTS_SKIPPED_STALE if action == "skipped_stale" else Metric.EVENTS_SYNCED)
    metric = OUTCOME_METRICS.get((str(result.get("record_type")), action))
    if metric is not None:
        count(metric)
    if result.get("total_mismatch"):
        count(Metric.AMOUNT_MISMATCHES)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
    idempotency.register_lambda_context(context)
    attempt = BatchAttempt()
    response = process_partial_response(
        event=event, record_handler=attempt.handle, processor=processor, context=context
    )
    attempt.hand_back_untried(event, {str(item["itemIdentifier"]) for item in response["batchItemFailures"]})
    return response
