"""What an idle month runs: one run of each scheduled function on an empty sandbox (the
reconciliation's three modes and the Ignition poller), with its own time, the AWS and HTTP calls it
makes and the custom metrics it publishes. Metrics are switched on for the run, as deployed, and
read back from the EMF lines Powertools prints, as CloudWatch would bill them.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

from bench.coldstart import _emf_metrics
from bench.flow import Harness, scheduled_run

RECONCILE_MODES = ("xero_events", "incremental", "full")
# The poller's runs after its first: the first of a cursor reads more (bench/poll.py).
POLL = "poll"


def published(run: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``run()`` with metrics on; the custom metrics its flush printed (``name{dim=value}``)."""
    from functions.poll.handler import metrics as poll_metrics
    from functions.reconcile.handler import metrics as reconcile_metrics

    for metrics in (poll_metrics, reconcile_metrics):
        metrics.clear_metrics()  # with metrics off a flush keeps them: not this run's
    before = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            result = run()
    finally:
        if before is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = before
    return result, sorted(_emf_metrics(printed.getvalue().splitlines()))


def measure(h: Harness) -> dict[str, Any]:
    """Per scheduled mode (``poll`` for the poller): status, own time, AWS calls, Xero and
    Ignition calls, and ``metrics``, the custom metrics the run published."""

    def reconcile(mode: str) -> Callable[[], Any]:
        return lambda: h.sandbox.run_reconcile({"mode": mode})

    runs: dict[str, Callable[[], Any]] = {mode: reconcile(mode) for mode in RECONCILE_MODES}
    if getattr(h.sandbox, "poll", None) is not None:
        h.sandbox.run_poll()  # its first run starts the cursor; the idle schedule's runs follow it
        runs[POLL] = h.sandbox.run_poll
    out: dict[str, Any] = {}
    for mode, run in runs.items():
        (result, metrics), row = scheduled_run(h, lambda run=run: published(run))  # type: ignore[misc]
        status = result.get("status") if isinstance(result, dict) else None
        out[mode] = {"status": status, **row, "metrics": metrics}
    return out
