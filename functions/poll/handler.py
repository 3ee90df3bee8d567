"""Poll Lambda: an EventBridge schedule -> one run of the Reporting API poller (``shared/poll.py``).

Returns ``{"status": "complete" | "partial" | "skipped", "queued", "seen", "already_queued",
"terminal_read", "reason"}`` (``reason`` "budget": the shared Ignition request budget is down to
the reserve the poller leaves to the others, so the run gave way; counted as PollSkippedForBudget).
A run that fails raises (Lambda records the error, ``PollFailures`` counts it, the alarm fires when
runs keep failing); its cursor keeps what it queued before the failure.
"""

from __future__ import annotations

from typing import Any

import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import IntegrationConfig, RuntimeSettings
from shared.ignition.budget import IgnitionRequestBudget
from shared.ignition.reporting import IgnitionReportingClient
from shared.observability import Metric
from shared.poll import Poller
from shared.store.poll_state import DynamoPollStateStore, DynamoRunLease
from shared.store.queue import SqsEventQueue
from shared.wiring import ignition_token_provider

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"shared"})

settings = RuntimeSettings.from_env()
config = IntegrationConfig.from_env()
# Longer than any run (the function's timeout, infra/functions.py): a crashed run's lease frees
# itself before the run after next.
LEASE_SECONDS = 120.0


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    requests = 0

    def counted(_: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    try:
        with httpx.Client(timeout=20.0, event_hooks={"request": [counted]}) as http:
            tokens = ignition_token_provider(settings, config)
            ignition = IgnitionReportingClient.from_config(
                config.ignition,
                tokens.access_token,
                force_refresh=tokens.force_refresh,
                http=http,
                # The poller spends only above the reserve it leaves to the sync and reconciliation.
                budget=IgnitionRequestBudget.in_table(settings.state_table, config.ignition, background=True),
            )
            poller = Poller(
                ignition=ignition,
                queue=SqsEventQueue(settings.sync_queue_url),
                state=DynamoPollStateStore(settings.state_table),
                lease=DynamoRunLease(settings.state_table, LEASE_SECONDS),
                rules=config.ignition.poll,
            )
            result = poller.run()
    except Exception:  # counted for the alarm, then raised: Lambda records the failure
        metrics.add_metric(name=Metric.POLL_FAILURES, unit=MetricUnit.Count, value=1)
        logger.exception("poll run failed", extra={"ignition_requests": requests})
        raise
    finally:
        metrics.add_metric(name=Metric.POLL_IGNITION_REQUESTS, unit=MetricUnit.Count, value=requests)
    metrics.add_metric(name=Metric.POLL_RUNS, unit=MetricUnit.Count, value=1)
    if result.status == "skipped" and result.reason == "budget":
        metrics.add_metric(name=Metric.POLL_SKIPPED_FOR_BUDGET, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=Metric.POLL_EVENTS_QUEUED, unit=MetricUnit.Count, value=result.queued)
    return {**result.response(), "ignition_requests": requests}
