"""Builds a Reconciler from the function's settings, with the real adapters. The Xero and Ignition
clients are the sync's own (same token providers, same shared Xero call budget); each HTTP
request is counted so a run can stop inside its own share of the daily limits."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from shared.config import IntegrationConfig, RuntimeSettings
from shared.errors import PermanentSyncError
from shared.ignition.budget import IgnitionRequestBudget
from shared.ignition.reporting import IgnitionReportingClient
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
from shared.wiring import ignition_token_provider, xero_token_provider
from shared.xero.budget import DynamoCallBudget
from shared.xero.client import XeroCall, XeroClient


def build_reconciler(
    settings: RuntimeSettings,
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

    tokens, tenant_id = xero_token_provider(settings, config, on_token_refresh)
    if tenant_id is None:
        raise PermanentSyncError(
            "the Xero token secret has no tenant_id: connect the organisation first", category="not_connected"
        )
    xero = XeroClient(
        config.xero,
        tokens,
        tenant_id,
        DynamoCallBudget(settings.state_table, tenant_id, config.xero),
        on_call=counted_xero_call,
    )
    ignition_http = httpx.Client(timeout=20.0, event_hooks={"request": [counted_ignition_request]})
    ignition_tokens = ignition_token_provider(settings, config)
    ignition = IgnitionReportingClient.from_config(
        config.ignition,
        ignition_tokens.access_token,
        force_refresh=ignition_tokens.force_refresh,
        http=ignition_http,
        page_limit=config.reconcile.ignition_page_limit,
        budget=IgnitionRequestBudget.in_table(settings.state_table, config.ignition),
    )
    ports = Ports(
        xero=xero,
        ignition=ignition,
        mappings=BatchMappingReader(settings.state_table),
        queue=SqsEventQueue(settings.sync_queue_url),
        dead_letters=SqsDeadLetters(settings.dlq_url),
        runs=DynamoRunStore(settings.state_table),
        artifacts=S3Artifacts(settings.archive_bucket),
        notifier=SnsNotifier(alert_topic_arn) if alert_topic_arn else None,
        links=S3Artifacts(settings.archive_bucket),
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


def alert_topic_from_env() -> str | None:
    return os.environ.get("ALERT_TOPIC_ARN") or None
