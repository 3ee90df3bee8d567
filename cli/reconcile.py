"""``reconcile --now``: run the reconciliation job once, show its progress, say where its report is.

A run can take the whole 15 minutes of a Lambda, far longer than any HTTP call should wait, so the
function is invoked asynchronously (``InvocationType=Event``: one invocation, no client read
timeout to retry into a second run). First the CLI reserves the run lock under a new ticket
(``shared/reconcile/runs.py``); if a run is in progress it starts nothing and follows that run.
Then it polls the lock item (the phase) and the ticket's outcome in the state table until the
outcome is written, or ``timeout`` seconds pass (the run carries on; ``reconcile`` shows it later).

Sandbox: the "asynchronous invocation" is a thread of this process running the reconcile handler,
built by its factory from the function's environment (as the sandbox builds the other handlers);
the rest is the same.
The outcome is the handler's contract: ``{"run_id", "status", "summary", "report": {"json", "csv",
"html"}}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cli.errors import CliError, Exit
from cli.status import latest_reconciliation
from cli.target import Target
from functions.entry import use_powertools_switches
from shared import aws
from shared.config import IntegrationConfig, ReconcileSettings
from shared.reconcile import runs

if TYPE_CHECKING:
    from functions.reconcile.handler import ReconcileHandler

logger = logging.getLogger(__name__)

FUNCTION_OUTPUT = "ReconcileFunctionName"


class _Context:
    """What Powertools reads from a Lambda context."""

    function_name = "reconcile"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:ap-southeast-2:000000000000:function:reconcile"
    memory_limit_in_mb = 1024
    log_group_name = "/aws/lambda/reconcile"
    log_stream_name = "cli"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _build_handler(environment: dict[str, str]) -> ReconcileHandler:
    """The reconcile function built from the target's environment, as a cold start builds it."""
    # The sandbox's log level, and no EMF metrics on the terminal.
    use_powertools_switches({"POWERTOOLS_METRICS_DISABLED": "true", **environment})
    try:
        from functions.reconcile.handler import ReconcileHandler
    except ModuleNotFoundError:
        raise CliError(
            "this version has no reconciliation function (functions/reconcile)", Exit.CONFIG
        ) from None
    return ReconcileHandler(ReconcileSettings.from_env(environment), IntegrationConfig.from_env(environment))


def _start_in_process(handler: ReconcileHandler, event: dict[str, Any]) -> threading.Thread:
    def invocation() -> None:
        try:
            handler(event, _Context())
        except Exception:  # the handler wrote the failure under the ticket, as in Lambda
            logger.debug("sandbox reconcile invocation failed", exc_info=True)

    thread = threading.Thread(target=invocation, name="reconcile-invocation", daemon=True)
    thread.start()
    return thread


def _start_in_lambda(target: Target, event: dict[str, Any]) -> None:
    function = target.outputs.get(FUNCTION_OUTPUT)
    if not function:
        raise CliError(
            f"{target.label} has no {FUNCTION_OUTPUT} output",
            Exit.CONFIG,
            hint="deploy a version with the reconciliation function",
        )
    response = aws.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
    )
    if response.get("StatusCode") != 202:
        raise CliError(f"Lambda did not queue the run (HTTP {response.get('StatusCode')})", Exit.ERROR)


def run_reconciliation(
    target: Target,
    mode: str = "full",
    *,
    timeout: float = 900.0,
    poll_seconds: float = 2.0,
    progress: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Start one run (or follow the one in progress) and return its outcome once written."""
    table = target.settings.state_table
    ticket = runs.new_ticket()
    if not runs.reserve(table, ticket):
        running = runs.current_run(table) or {}
        progress(
            "A reconciliation run is already in progress (requested "
            f"{running.get('requested_at') or running.get('started_at') or '?'}, "
            f"phase {running.get('phase', '?')}): not starting another; following it."
        )
        if not running.get("ticket"):  # it finished between the two reads
            return _latest_or_none(table)
        return _follow(table, running["ticket"], timeout, poll_seconds, progress, sleep)
    event = {"mode": mode, "run_ticket": ticket}
    if target.kind != "sandbox":
        try:
            _start_in_lambda(target, event)
        except BaseException:
            runs.release(table, ticket)
            raise
        progress("Run queued (asynchronous invocation); waiting for it to start...")
        return _follow(table, ticket, timeout, poll_seconds, progress, sleep)
    try:
        handler = _build_handler(target.environment)
    except BaseException:
        runs.release(table, ticket)
        raise
    _start_in_process(handler, event)
    # Said before following, as for Lambda: a quick run may pass its "queued" phase between polls.
    progress("Run queued (in this process); waiting for it to start...")
    return _follow(table, ticket, timeout, poll_seconds, progress, sleep)


def _follow(
    table: str,
    ticket: str,
    timeout: float,
    poll_seconds: float,
    progress: Callable[[str], None],
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown: str | None = None
    while True:
        done = runs.outcome(table, ticket)
        if done is not None:
            return _checked(done)
        running = runs.current_run(table)
        if running is None or running.get("ticket") != ticket:
            # The lease is gone without an outcome: look once more (it is written last), then give up.
            done = runs.outcome(table, ticket)
            if done is not None:
                return _checked(done)
            raise CliError(
                "the reconciliation run ended without writing an outcome (killed or timed out)",
                Exit.ERROR,
                hint="see the reconcile function's logs; `reconcile --now` starts a new run",
            )
        phase = running.get("phase")
        if phase and phase != shown:
            progress(f"  {phase} (since {running.get('phase_at') or running.get('requested_at', '?')})")
            shown = phase
        if time.monotonic() >= deadline:
            raise CliError(
                f"the run is still going after {timeout:g}s (phase {phase or '?'}); it carries on",
                Exit.PAUSED,
                hint="`reconcile` shows its result once the report is written",
            )
        sleep(poll_seconds)


def _latest_or_none(table: str) -> dict[str, Any]:
    latest = latest_reconciliation(table)
    if latest is None:
        raise CliError("no reconciliation result found", Exit.ERROR)
    return _checked(latest)


def _checked(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict) or "status" not in result:
        raise CliError("the reconciliation function returned no result", Exit.ERROR)
    if result["status"] == "failed":
        raise CliError(
            f"the reconciliation run failed ({result.get('error', 'unknown error')})",
            Exit.ERROR,
            hint="see the reconcile function's logs",
        )
    return result
