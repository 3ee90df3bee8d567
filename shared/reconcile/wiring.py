"""Builds a Reconciler from the function's settings, with the real adapters. The Xero and Ignition
clients are the sync's own (same token providers, same shared Xero call budget); each HTTP
request is counted so a run can stop inside its own share of the daily limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from shared.config import IntegrationConfig, ReconcileSettings
from shared.oauth import RefreshOutcome
from shared.reconcile.adapters import (
    DynamoRunStore,
    S3Artifacts,
    SnsNotifier,
)
from shared.reconcile.engine import Ports, Reconciler
from shared.reconcile.model import RunCounters, RunResult
from shared.store.dead_letter_queue import SqsDeadLetters
from shared.store.mappings import BatchMappingReader
from shared.store.queue import SqsEventQueue
from shared.wiring import ignition_client, xero_client
from shared.xero.client import XeroCall
from shared.xero_to_ignition.safety_net import safety_net


def build_reconciler(
    settings: ReconcileSettings,
    config: IntegrationConfig,
    *,
    remaining_seconds: Callable[[], float],
    on_xero_call: Callable[[XeroCall], None] | None = None,
    on_token_refresh: Callable[[RefreshOutcome], None] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    alert_topic_arn: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[Reconciler, Callable[[], None]]:
    """The reconciler and a ``close`` for its HTTP clients."""
    counters = RunCounters()

    def counted_xero_call(call: XeroCall) -> None:
        counters.xero_calls += 1
        if on_xero_call is not None:
            on_xero_call(call)

    def counted_ignition_request(_: httpx.Request) -> None:
        counters.ignition_requests += 1

    xero = xero_client(settings, config, on_call=counted_xero_call, on_token_refresh=on_token_refresh)
    ignition_http = httpx.Client(timeout=20.0, event_hooks={"request": [counted_ignition_request]})
    ignition = ignition_client(
        settings, config, http=ignition_http, page_limit=config.reconcile.ignition_page_limit
    )
    mappings = BatchMappingReader(settings.state_table)
    ports = Ports(
        xero=xero,
        ignition=ignition,
        mappings=mappings,
        queue=SqsEventQueue(settings.sync_queue_url),
        dead_letters=SqsDeadLetters(settings.dlq_url),
        runs=DynamoRunStore(settings.state_table),
        artifacts=S3Artifacts(settings.archive_bucket),
        notifier=SnsNotifier(alert_topic_arn) if alert_topic_arn else None,
        links=S3Artifacts(settings.archive_bucket),
        xero_to_ignition=safety_net(settings.state_table, config, xero, mappings)
        if config.xero_to_ignition.enabled
        else None,
    )
    reconciler = Reconciler(
        ports,
        config,
        client_name=settings.client_name,
        counters=counters,
        remaining_seconds=remaining_seconds,
        now=now,
        on_result=on_result,
    )

    def close() -> None:
        xero.close()
        ignition_http.close()

    return reconciler, close
