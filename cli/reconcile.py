"""``reconcile --now``: run the reconciliation job once and say where its report is.

Sandbox: the reconcile handler runs in this process with the functions' environment (as the
sandbox runs the other handlers). Stack: ``lambda invoke`` of the ``ReconcileFunctionName`` output.
Both return the handler's contract: ``{"run_id", "status", "summary", "report": {"json", "csv",
"html"}}``.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cli.errors import CliError, Exit
from cli.target import Target
from shared import aws

RECONCILE_MODULE = "functions.reconcile.handler"
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


@contextmanager
def _function_environment(environment: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _in_process(target: Target, mode: str) -> dict[str, Any]:
    with _function_environment(target.environment):
        try:
            module = importlib.import_module(RECONCILE_MODULE)
            module = importlib.reload(module)  # read this target's environment, as a cold start would
        except ModuleNotFoundError:
            raise CliError(
                "this version has no reconciliation function (functions/reconcile)", Exit.CONFIG
            ) from None
        result: Any = module.handler({"mode": mode}, _Context())
    return _checked(result)


def _invoke(target: Target, mode: str) -> dict[str, Any]:
    function = target.outputs.get(FUNCTION_OUTPUT)
    if not function:
        raise CliError(
            f"{target.label} has no {FUNCTION_OUTPUT} output",
            Exit.CONFIG,
            hint="deploy a version with the reconciliation function",
        )
    response = aws.client("lambda").invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps({"mode": mode}).encode()
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else None
        raise CliError(
            f"the reconciliation function failed: {message or response['FunctionError']}", Exit.ERROR
        )
    return _checked(payload)


def _checked(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict) or "status" not in result:
        raise CliError("the reconciliation function returned no result", Exit.ERROR)
    return result


def run_reconciliation(target: Target, mode: str = "full") -> dict[str, Any]:
    return _in_process(target, mode) if target.kind == "sandbox" else _invoke(target, mode)
