"""Reconcile Lambda: an EventBridge schedule (the configured default mode) or an on-demand call
``{"mode": "full" | "incremental" | "xero_events", "dry_run": bool}`` -> one reconciliation run.

Returns ``{"run_id", "status": "complete" | "partial", "summary": {category: count},
"report": {"json", "csv", "html"}, "healed"}``; the report is in the archive bucket and the run's
summary in the state table (``reconcile#latest``).

One run at a time (``shared/reconcile/runs.py``): a run holds the ``reconcile-run`` lease, and a start
while another holds it answers ``{"status": "skipped"}``. ``reconcile --now`` invokes asynchronously
with ``{"run_ticket": ...}``, having taken the lease under that ticket; the run adopts it, notes
each phase there and leaves its outcome under the ticket, which a retried invocation returns as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from functions.entry import PowertoolsHandler, from_environment, powertools
from shared.config import IntegrationConfig, ReconcileSettings
from shared.observability import Metric
from shared.reconcile import runs
from shared.reconcile.model import RunResult
from shared.reconcile.wiring import build_reconciler
from shared.store.dead_letter_queue import requeue_exhausted

logger, metrics = powertools()


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["full", "incremental", "xero_events"] | None = None
    dry_run: bool = False
    # Set by `reconcile --now`: the run lock's owner, and the key its outcome is written under.
    run_ticket: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


def parse(event: dict[str, Any], config: IntegrationConfig) -> ReconcileRequest:
    """A scheduled event (``detail-type: Scheduled Event``) runs the configured default mode."""
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
        request = ReconcileRequest.model_validate(detail or {})
    else:
        request = ReconcileRequest.model_validate(event)
    if request.mode is None:
        request = request.model_copy(update={"mode": config.reconcile.default_mode})
    return request


def worth_counting(result: RunResult) -> bool:
    """A run that found, healed or left something: only such a run publishes metrics. CloudWatch
    bills a custom metric for every hour it is sent in, and an idle firm's 15-minute and hourly
    runs find nothing; every run, idle or not, is counted for free by the function's own
    Invocations and Duration metrics (infra/monitoring.py), and the alarms treat missing data as
    not breaching, so a discrepancy still fires them the hour it is published."""
    return result.status == "partial" or result.healed > 0 or any(result.summary.values())


def emit(result: RunResult) -> None:
    if not worth_counting(result):
        return
    metrics.add_metric(name=Metric.RECONCILE_RUNS, unit=MetricUnit.Count, value=1)
    if result.healed:
        metrics.add_metric(name=Metric.RECONCILE_HEALED, unit=MetricUnit.Count, value=result.healed)
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        return  # single_metric prints even when metrics are disabled (the sandbox)
    # One metric per category, each with its own dimension (Powertools batches share dimensions).
    for category, count in result.summary.items():
        if not count:
            continue
        with single_metric(
            name=Metric.RECONCILE_DISCREPANCIES,
            unit=MetricUnit.Count,
            value=count,
            namespace=metrics.namespace,
            default_dimensions={"service": str(metrics.service or "reconcile")},
        ) as metric:
            metric.add_dimension(name="category", value=category)


def requeue_dead_letters_without_reason(settings: ReconcileSettings) -> None:
    """What the queue's redrive moved to the DLQ ran out of deliveries: no judgement on the event,
    so every scheduled run puts it back (a bounded number of times) before the report reads the DLQ."""
    outcome = requeue_exhausted(settings.dlq_url, settings.sync_queue_url)
    if outcome.requeued or outcome.kept:
        metrics.add_metric(name=Metric.DEAD_LETTERS_REQUEUED, unit=MetricUnit.Count, value=outcome.requeued)
        logger.warning(
            "dead letters without a reason handled",
            extra={"requeued": outcome.requeued, "kept_with_reason": outcome.kept},
        )


class ReconcileHandler(PowertoolsHandler):
    """One execution environment's reconcile function, built from its settings. ``config`` is read
    at each run (a test may change it between runs, as a redeploy would)."""

    def __init__(self, settings: ReconcileSettings, config: IntegrationConfig) -> None:
        self.settings = settings
        self.config = config
        super().__init__(logger, metrics)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
        try:
            request = parse(event, self.config)
        except ValidationError as exc:
            metrics.add_metric(name=Metric.RECONCILE_FAILURES, unit=MetricUnit.Count, value=1)
            raise ValueError(f"not a reconcile request: {exc.error_count()} error(s)") from exc
        assert request.mode is not None
        table = self.settings.state_table
        ticket = request.run_ticket or runs.new_ticket()
        if request.run_ticket is not None:
            done = runs.outcome(table, ticket)
            if done is not None:
                logger.info("this run request already has an outcome (a retried invocation)")
                return done
        # A scheduled run reserves the lease itself; `reconcile --now` reserved it under its ticket.
        if (request.run_ticket is None and not runs.reserve(table, ticket)) or not runs.start(table, ticket):
            running = runs.current_run(table) or {}
            if running.get("ticket") == ticket:
                # A second delivery of this very request: the first one is running it.
                logger.warning("reconciliation request delivered twice; already running")
                return {"status": "skipped", "reason": "this request is already running"}
            skipped: dict[str, object] = {
                "status": "skipped",
                "reason": "another reconciliation run is in progress",
                "running_since": running.get("started_at") or running.get("requested_at"),
            }
            logger.warning("reconciliation skipped: another run is in progress")
            if request.run_ticket is not None:
                runs.save_outcome(table, ticket, skipped)
            return skipped
        try:
            body = self._run(request, context, lambda phase: runs.note_phase(table, ticket, phase))
            # Before the lease goes: a requester that finds the lease gone and no outcome reports
            # the run as killed.
            runs.save_outcome(table, ticket, body)
        except Exception as exc:
            runs.save_outcome(table, ticket, {"status": "failed", "error": type(exc).__name__})
            raise
        finally:
            runs.release(table, ticket)
        return body

    def _run(
        self, request: ReconcileRequest, context: LambdaContext, on_progress: Callable[[str], None]
    ) -> dict[str, object]:
        assert request.mode is not None
        close: Callable[[], None] = lambda: None  # noqa: E731 - replaced once the clients exist
        try:
            reconciler, close = build_reconciler(
                self.settings,
                self.config,
                remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
                on_result=emit,
                alert_topic_arn=self.settings.alert_topic_arn,
            )
            reconciler.on_progress = on_progress
            if not request.dry_run:
                requeue_dead_letters_without_reason(self.settings)
            result = reconciler.run(request.mode, dry_run=request.dry_run)
        except Exception:  # counted for the alarm, then raised: Lambda records the failure
            metrics.add_metric(name=Metric.RECONCILE_FAILURES, unit=MetricUnit.Count, value=1)
            logger.exception("reconciliation failed")
            raise
        finally:
            close()
        if worth_counting(result):
            metrics.add_metric(
                name=Metric.RECONCILE_DURATION_SECONDS,
                unit=MetricUnit.Seconds,
                value=_seconds_between(result.started_at, result.finished_at),
            )
        return result.response()


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


handler = from_environment(ReconcileHandler, ReconcileSettings)
