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
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.entry import PowertoolsHandler, from_environment, powertools
from shared.config import IntegrationConfig, PollSettings
from shared.oauth import TokenProvider
from shared.observability import Metric
from shared.poll import Poller, PollResult
from shared.store.poll_state import DynamoPollStateStore, DynamoRunLease
from shared.store.queue import SqsEventQueue
from shared.wiring import ignition_client, ignition_token_provider

logger, metrics = powertools()

# Longer than any run (the function's timeout, infra/functions.py): a crashed run's lease frees
# itself before the run after next.
LEASE_SECONDS = 120.0


def worth_counting(result: PollResult) -> bool:
    """A run that saw changes, or stopped early or gave way: only such a run publishes its runs,
    requests and queued counts. CloudWatch bills a custom metric for every hour it is sent in,
    and an idle firm's poller runs every 2 minutes finding nothing (a few requests to read the
    cursor's page); every run is counted for free by the function's own Invocations metric
    (infra/monitoring.py), failures by PollFailures and the function's Errors."""
    return result.status != "complete" or result.queued > 0 or result.seen > 0


class PollHandler(PowertoolsHandler):
    """One execution environment's poll function, built from its settings."""

    def __init__(self, settings: PollSettings, config: IntegrationConfig) -> None:
        self.settings = settings
        self.config = config
        # One per execution environment, as shared/oauth.py asks: its cached access token spares
        # the every-2-minutes runs two secret reads each (bench/cost.py, the idle month).
        self._tokens: TokenProvider | None = None
        super().__init__(logger, metrics)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        requests = 0

        def counted(_: httpx.Request) -> None:
            nonlocal requests
            requests += 1

        try:
            with httpx.Client(timeout=20.0, event_hooks={"request": [counted]}) as http:
                result = self._poller(http).run()
        except Exception:  # counted for the alarm, then raised: Lambda records the failure
            metrics.add_metric(name=Metric.POLL_FAILURES, unit=MetricUnit.Count, value=1)
            metrics.add_metric(name=Metric.POLL_IGNITION_REQUESTS, unit=MetricUnit.Count, value=requests)
            logger.exception("poll run failed", extra={"ignition_requests": requests})
            raise
        if worth_counting(result):
            metrics.add_metric(name=Metric.POLL_RUNS, unit=MetricUnit.Count, value=1)
            metrics.add_metric(name=Metric.POLL_IGNITION_REQUESTS, unit=MetricUnit.Count, value=requests)
            metrics.add_metric(name=Metric.POLL_EVENTS_QUEUED, unit=MetricUnit.Count, value=result.queued)
        if result.status == "skipped" and result.reason == "budget":
            metrics.add_metric(name=Metric.POLL_SKIPPED_FOR_BUDGET, unit=MetricUnit.Count, value=1)
        return {**result.response(), "ignition_requests": requests}

    def _poller(self, http: httpx.Client) -> Poller:
        table = self.settings.state_table
        if self._tokens is None:  # at the first run: a cold start without a secret is not a crash
            self._tokens = ignition_token_provider(self.settings, self.config)
        return Poller(
            # The poller spends only above the reserve it leaves to the sync and reconciliation.
            ignition=ignition_client(
                self.settings, self.config, http=http, background=True, tokens=self._tokens
            ),
            queue=SqsEventQueue(self.settings.sync_queue_url),
            state=DynamoPollStateStore(table),
            lease=DynamoRunLease(table, LEASE_SECONDS),
            rules=self.config.ignition.poll,
        )


handler = from_environment(PollHandler, PollSettings)
