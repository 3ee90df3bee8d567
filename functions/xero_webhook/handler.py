"""Xero webhook Lambda: API Gateway ``POST /webhooks/xero`` -> verify, record events, empty 200.

Answers within Xero's 5 seconds with an empty body: 200 when signed with our webhook key (also
for Xero's "intent to receive" with no events), 401 otherwise. What a status means for an
authentic body that cannot be parsed is decided in ``shared.xero.webhooks`` (200, quarantined).
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import get_secret
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import ConfigError, RuntimeSettings
from shared.observability import Metric
from shared.store.archive import S3RawArchive
from shared.xero.webhooks import DynamoXeroEventStore, WebhookKey, XeroWebhookReceiver

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"shared"})

settings = RuntimeSettings.from_env()
if settings.xero_webhook_secret_id is None:
    raise ConfigError("missing environment variable: XERO_WEBHOOK_SECRET_ID")
SECRET_ID: str = settings.xero_webhook_secret_id
SECRET_CACHE_SECONDS = 300


def webhook_key() -> WebhookKey:
    # Cached for 5 minutes: a key pasted after deployment (or a new one) is picked up without a redeploy.
    return WebhookKey.from_secret(str(get_secret(SECRET_ID, max_age=SECRET_CACHE_SECONDS)))


receiver = XeroWebhookReceiver(
    key=webhook_key,
    store=DynamoXeroEventStore(settings.state_table),
    archive=S3RawArchive(settings.archive_bucket),
)


def raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name=Metric.XERO_WEBHOOKS_RECEIVED, unit=MetricUnit.Count, value=1)
    request_id = str((event.get("requestContext") or {}).get("requestId") or context.aws_request_id)
    # Anything unexpected (secret unreadable, DynamoDB or S3 down) raises: API Gateway answers 5xx
    # and Xero redelivers, so an event is never acknowledged without being recorded.
    result = receiver.handle(event.get("headers") or {}, raw_body(event), request_id)
    for metric, value in result.metrics.items():
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
    return result.response()
