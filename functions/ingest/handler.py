"""Ingest Lambda: API Gateway ``POST /webhooks/ignition`` -> verify, archive, enqueue, 202."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import get_secret
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import IntegrationConfig, RuntimeSettings
from shared.ingest import WebhookIntake, api_response
from shared.observability import Metric
from shared.store.archive import S3RawArchive
from shared.store.queue import SqsEventQueue

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"shared"})

settings = RuntimeSettings.from_env()
config = IntegrationConfig.from_env()
SECRET_CACHE_SECONDS = 300


def webhook_secret() -> str:
    # Cached for 5 minutes: a rotated secret is picked up without a redeploy.
    return str(get_secret(settings.ignition_webhook_secret_id, max_age=SECRET_CACHE_SECONDS))


intake = WebhookIntake(
    config=config.ignition,
    secret=webhook_secret,
    archive=S3RawArchive(settings.archive_bucket),
    queue=SqsEventQueue(settings.sync_queue_url),
)


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name=Metric.WEBHOOKS_RECEIVED, unit=MetricUnit.Count, value=1)
    request_id = str((event.get("requestContext") or {}).get("requestId") or context.aws_request_id)
    result = intake.handle(event.get("headers") or {}, raw_body(event), request_id)
    for metric in result.metrics:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    return api_response(result)
