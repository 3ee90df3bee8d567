"""Sync Lambda: SQS FIFO batch -> one idempotent sync per Ignition event.

Failures (the policy is :mod:`shared.delivery`): a wait for a limit or a transient fault fails only
its message group (the rest of the batch completes) and comes back later, waits never counted
against the event; permanent failures, and faults that outlast the retry rules, go to the DLQ with
their category and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.entry import PowertoolsHandler, from_environment, powertools
from shared.burst_order import records_in_rank_order
from shared.collector import GatheredBatch, SqsMessageSource
from shared.config import IntegrationConfig, SyncSettings
from shared.delivery import BatchAttempt, DeliveryPolicy, HeldByAnotherDelivery, QueuedMessage, SyncDelivery
from shared.models.events import SyncEvent
from shared.oauth import RefreshOutcome
from shared.observability import Metric
from shared.store.attempts import DynamoAttemptLedger
from shared.store.dead_letter_queue import DeadLetters
from shared.store.queue import SqsEventQueue
from shared.wiring import SyncService, build_sync_service
from shared.xero.client import XeroCall

logger, metrics = powertools()

TOKEN_REFRESH_METRICS: dict[RefreshOutcome, Metric] = {
    "refreshed": Metric.TOKEN_REFRESHES,
    "failed": Metric.TOKEN_REFRESH_FAILURES,
    "authorisation_lost": Metric.XERO_AUTHORISATION_LOST,
}


def count(metric: Metric, value: float = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def on_xero_call(call: XeroCall) -> None:
    count(Metric.XERO_CALLS)
    if call.status == 429:
        count(Metric.XERO_RATE_LIMITED)
    if call.day_remaining is not None:
        count(Metric.XERO_DAY_LIMIT_REMAINING, call.day_remaining)
    if call.min_remaining is not None:
        count(Metric.XERO_MIN_LIMIT_REMAINING, call.min_remaining)


def on_token_refresh(outcome: RefreshOutcome) -> None:
    count(TOKEN_REFRESH_METRICS[outcome])


def on_ignition_mcp_refresh(outcome: RefreshOutcome) -> None:
    """The Ignition MCP user's token set (Xero -> Ignition): its loss has an alarm of its own."""
    lost = outcome == "authorisation_lost"
    count(Metric.IGNITION_MCP_AUTHORISATION_LOST if lost else TOKEN_REFRESH_METRICS[outcome])


def apply(*, event: SyncEvent, service: Callable[[], SyncService]) -> dict[str, Any]:
    """One event through the sync (the service built only once an event is not a duplicate).
    Module-level and named ``apply``: Powertools keys each idempotency record by the function's
    module and name, so records written before stay valid."""
    return asdict(service().apply(event))


def once(idempotent_apply: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """The idempotent apply, with a delivery that finds its event in progress elsewhere told to
    wait (:class:`HeldByAnotherDelivery`) rather than failing as an unclassified error."""

    def apply_once(*, event: SyncEvent, service: Callable[[], SyncService]) -> dict[str, Any]:
        try:
            return idempotent_apply(event=event, service=service)
        except IdempotencyAlreadyInProgressError as exc:
            raise HeldByAnotherDelivery() from exc

    return apply_once


def queued(record: SQSRecord) -> QueuedMessage:
    return QueuedMessage(
        message_id=record.message_id,
        body=record.body,
        receipt_handle=record.receipt_handle,
        receives=int(record.attributes.approximate_receive_count or 1),
        group_id=record.attributes.message_group_id,
    )


class SyncHandler(PowertoolsHandler):
    """One execution environment's sync function, built from its settings: its batch processor,
    idempotency store, clients and token cache are its own, as a concurrent Lambda's are."""

    def __init__(self, settings: SyncSettings, config: IntegrationConfig) -> None:
        self.settings = settings
        self.config = config
        self._service: SyncService | None = None
        self.processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # A batch that only waits (every record behind a spent budget) is answered like any other:
        # the failures listed, each with its own delay, rather than an exception that retries all.
        self.processor.raise_on_entire_batch_failure = False
        self.idempotency = IdempotencyConfig(
            # The producer's event id plus the body hash: a redelivery is a no-op, a different
            # body is not.
            event_key_jmespath="[event_id, payload_sha256]",
            expires_after_seconds=7 * 24 * 3600,
        )
        idempotent_apply = once(
            idempotent_function(
                data_keyword_argument="event",
                config=self.idempotency,
                persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
            )(apply)
        )
        self.delivery = SyncDelivery(
            policy=DeliveryPolicy(DynamoAttemptLedger(settings.state_table), config.retries),
            apply=lambda event: idempotent_apply(event=event, service=self.service),
            dead_letters=DeadLetters(settings.dlq_url),
            queue=SqsEventQueue(settings.sync_queue_url),
            count=count,
            log=logger,
        )
        super().__init__(logger, metrics)

    def service(self) -> SyncService:
        """Built on the first event, not at the cold start: a function whose secrets are not
        filled in yet still starts, and fails each event with a clear reason."""
        if self._service is None:
            self._service = build_sync_service(
                self.settings,
                self.config,
                on_xero_call=on_xero_call,
                on_token_refresh=on_token_refresh,
                on_ignition_mcp_refresh=on_ignition_mcp_refresh,
            )
        return self._service

    def handle(self, event: dict[str, Any], context: LambdaContext) -> Mapping[str, object]:
        self.idempotency.register_lambda_context(context)
        gathered = self.gathered() if self.config.batching.enabled else None
        if gathered is not None:
            return gathered.handle(event)
        attempt = BatchAttempt(self.delivery)
        # Payments and the oldest changes first across clients, each client's in queue order: when
        # the day's budget runs out part-way, they are the ones that landed (shared/burst_order.py).
        event = {**event, "Records": records_in_rank_order(event.get("Records", []))}
        response = process_partial_response(
            event=event,
            record_handler=lambda record: attempt.handle(queued(record)),
            processor=self.processor,
            context=context,
        )
        failed = {str(item["itemIdentifier"]) for item in response["batchItemFailures"]}
        attempt.hand_back_untried(event, failed)
        return response

    def gathered(self) -> GatheredBatch | None:
        """This invocation's gathered batch (``shared/collector.py``); None while the service
        cannot be built (each event then fails with the reason, one at a time)."""
        try:
            gather = self.service().gather
        except Exception:  # noqa: BLE001 - reported per event by the one-record path
            return None
        if gather is None:
            return None
        rules = self.config.batching
        return GatheredBatch(
            self.delivery,
            gather,
            SqsMessageSource(self.settings.sync_queue_url),
            max_messages=rules.max_messages,
            receive_wait_seconds=rules.receive_wait_seconds,
        )


handler = from_environment(SyncHandler, SyncSettings)
