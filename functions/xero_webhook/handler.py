"""Xero webhook Lambda: API Gateway ``POST /webhooks/xero`` -> verify, record events, empty 200.

Answers within Xero's 5 seconds with an empty body: 200 when signed with our webhook key (also
for Xero's "intent to receive" with no events), 401 otherwise. What a status means for an
authentic body that cannot be parsed is decided in ``shared.xero.webhooks`` (200, quarantined).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.entry import ApiRequest, PowertoolsHandler, cached_secret, from_environment, powertools
from shared.config import IntegrationConfig, XeroWebhookSettings
from shared.observability import Metric
from shared.store.archive import S3RawArchive
from shared.store.queue import SqsEventQueue
from shared.xero.webhooks import DynamoXeroEventStore, WebhookKey, XeroEventStore, XeroWebhookReceiver
from shared.xero_to_ignition.events import MarkedInvoiceRelay

logger, metrics = powertools()


class XeroWebhookHandler(PowertoolsHandler):
    """One execution environment's Xero webhook function, built from its settings."""

    def __init__(self, settings: XeroWebhookSettings, config: IntegrationConfig) -> None:
        # A key pasted after deployment (or a new one) is picked up without a redeploy.
        secret = cached_secret(settings.xero_webhook_secret_id)
        store: XeroEventStore = DynamoXeroEventStore(settings.state_table)
        if config.xero_to_ignition.enabled:
            # Invoice events also go to the sync worker, which drafts marked ones in Ignition.
            store = MarkedInvoiceRelay(store, SqsEventQueue(settings.sync_queue_url))
        archive = S3RawArchive(settings.archive_bucket)
        self.receiver = XeroWebhookReceiver(
            key=lambda: WebhookKey.from_secret(secret()), store=store, archive=archive
        )
        super().__init__(logger, metrics, correlation_id_path=correlation_paths.API_GATEWAY_REST)

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        metrics.add_metric(name=Metric.XERO_WEBHOOKS_RECEIVED, unit=MetricUnit.Count, value=1)
        request = ApiRequest.from_event(event, context)
        # Anything unexpected (secret unreadable, DynamoDB or S3 down) raises: API Gateway answers
        # 5xx and Xero redelivers, so an event is never acknowledged without being recorded.
        result = self.receiver.handle(request.headers, request.body, request.request_id)
        for metric, value in result.metrics.items():
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)
        return result.response()


handler = from_environment(XeroWebhookHandler, XeroWebhookSettings)
