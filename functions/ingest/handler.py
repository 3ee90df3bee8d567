"""Ingest Lambda: API Gateway ``POST /webhooks/ignition`` -> verify, archive, enqueue, 202."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parameters import get_secret
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.entry import ApiRequest, PowertoolsHandler, from_environment
from shared.config import IngestSettings, IntegrationConfig
from shared.ingest import WebhookIntake, api_response
from shared.observability import Metric
from shared.store.archive import S3RawArchive
from shared.store.queue import SqsEventQueue

logger = Logger()
metrics = Metrics()
copy_config_to_registered_loggers(source_logger=logger, include={"shared"})

SECRET_CACHE_SECONDS = 300


class IngestHandler(PowertoolsHandler):
    """One execution environment's ingest function, built from its settings."""

    def __init__(self, settings: IngestSettings, config: IntegrationConfig) -> None:
        secret_id = settings.ignition_webhook_secret_id

        def webhook_secret() -> str:
            # Cached for 5 minutes: a rotated secret is picked up without a redeploy.
            return str(get_secret(secret_id, max_age=SECRET_CACHE_SECONDS))

        self.intake = WebhookIntake(
            config=config.ignition,
            secret=webhook_secret,
            archive=S3RawArchive(settings.archive_bucket),
            queue=SqsEventQueue(settings.sync_queue_url),
        )
        super().__init__(logger, metrics, correlation_id_path=correlation_paths.API_GATEWAY_REST)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        metrics.add_metric(name=Metric.WEBHOOKS_RECEIVED, unit=MetricUnit.Count, value=1)
        request = ApiRequest.from_event(event, context)
        result = self.intake.handle(request.headers, request.body, request.request_id)
        for metric in result.metrics:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        return api_response(result)


handler = from_environment(IngestHandler, IngestSettings)
