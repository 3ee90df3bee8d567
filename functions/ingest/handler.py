"""Ingest Lambda: API Gateway ``POST /webhooks/ignition`` -> verify, archive, enqueue, 202."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.entry import ApiRequest, PowertoolsHandler, cached_secret, from_environment, powertools
from shared.config import IngestSettings, IntegrationConfig
from shared.ingest import WebhookIntake, api_response
from shared.observability import Metric
from shared.store.archive import S3RawArchive
from shared.store.queue import SqsEventQueue

logger, metrics = powertools()


class IngestHandler(PowertoolsHandler):
    """One execution environment's ingest function, built from its settings."""

    def __init__(self, settings: IngestSettings, config: IntegrationConfig) -> None:
        self.intake = WebhookIntake(
            config=config.ignition,
            secret=cached_secret(settings.ignition_webhook_secret_id),
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
