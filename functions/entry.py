"""What every Lambda entry point shares: the handler built from the environment on the cold start,
and the raw request behind an API Gateway REST proxy event.

Each ``functions/<name>/handler.py`` exposes its factory (a class taking the function's settings
and the integration configuration), called directly by the sandbox, the CLI and the benchmarks,
and a module-level ``handler`` for Lambda made here from the environment.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.parameters import get_secret

from shared.config import EnvironmentSettings, IntegrationConfig

Event = dict[str, Any]
LambdaHandler = Callable[[Event, Any], Any]
S = TypeVar("S", bound=EnvironmentSettings)
S_contra = TypeVar("S_contra", bound=EnvironmentSettings, contravariant=True)


class Factory(Protocol[S_contra]):
    def __call__(self, settings: S_contra, config: IntegrationConfig, /) -> LambdaHandler: ...


def from_environment(factory: Factory[S], settings: type[S]) -> LambdaHandler:
    """The Lambda entry point: the first invocation of an execution environment (its cold start)
    reads the settings and configuration from the environment and builds the handler; later ones
    reuse it. Not at import, so importing a handler module for its factory needs no environment."""
    built: list[LambdaHandler] = []
    lock = threading.Lock()

    def handler(event: Event, context: Any) -> Any:
        if not built:
            with lock:
                if not built:
                    built.append(factory(settings.from_env(), IntegrationConfig.from_env()))
        return built[0](event, context)

    return handler


# Secrets read per invocation are cached this long: a rotated value is picked up without a redeploy.
SECRET_CACHE_SECONDS = 300


def powertools() -> tuple[Logger, Metrics]:
    """A function module's Logger and Metrics (one each per process, as Powertools intends), its
    log configuration copied to the shared/ loggers so their lines are the function's JSON too."""
    logger, metrics = Logger(), Metrics()
    copy_config_to_registered_loggers(source_logger=logger, include={"shared"})
    return logger, metrics


def cached_secret(secret_id: str) -> Callable[[], str]:
    """The secret's value, read through Powertools' cache (``SECRET_CACHE_SECONDS``)."""
    return lambda: str(get_secret(secret_id, max_age=SECRET_CACHE_SECONDS))


def use_powertools_switches(environment: Mapping[str, str]) -> None:
    """Powertools reads its own switches (service, metrics namespace, log level, metrics off) from
    the process environment, when a handler module creates its Logger and Metrics and at each
    flush: a process hosting handlers (the sandbox, the CLI) sets them before importing one. The
    functions' own settings go to their factories instead."""
    os.environ.update({key: value for key, value in environment.items() if key.startswith("POWERTOOLS_")})


class PowertoolsHandler:
    """Base of the handler classes: ``handle`` runs inside Powertools' decorators (the Lambda
    context in every log line, the metrics flushed once per invocation), as a decorated module
    function would; built once per execution environment, called once per invocation."""

    def __init__(self, logger: Logger, metrics: Metrics, *, correlation_id_path: str | None = None) -> None:
        self._entry = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)(
            metrics.log_metrics(self.handle)
        )

    def __call__(self, event: Event, context: Any) -> Any:
        return self._entry(event, context)

    def handle(self, event: Event, context: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class ApiRequest:
    """What a webhook receiver verifies: the headers, the body exactly as sent (signatures are
    over these bytes) and the request id API Gateway gave it."""

    headers: Mapping[str, str]
    body: bytes
    request_id: str

    @classmethod
    def from_event(cls, event: Event, context: Any) -> ApiRequest:
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
        request_id = (event.get("requestContext") or {}).get("requestId") or context.aws_request_id
        return cls(headers=event.get("headers") or {}, body=raw, request_id=str(request_id))
