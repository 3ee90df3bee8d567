"""Use case: take one Ignition webhook delivery. Verify, archive, enqueue, answer fast.

Nothing authentic is ever dropped: a body that fails parsing is kept under ``quarantine/`` with
the reason, for inspection and replay. Nothing unauthenticated is ever stored or queued.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.config import IgnitionConfig
from shared.ignition.webhook import (
    WebhookAuthError,
    WebhookPayloadError,
    WebhookSecrets,
    WebhookTooLargeError,
    parse_webhook,
    to_sync_event,
    verify_webhook_rotating,
)
from shared.models.events import SyncEvent
from shared.observability import Metric
from shared.store.archive import RawArchive, quarantine, raw_key

logger = logging.getLogger(__name__)


class EventQueue(Protocol):
    def send(self, event: SyncEvent) -> None: ...


@dataclass(frozen=True)
class IngestResult:
    status: int
    body: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)


@dataclass(kw_only=True)
class WebhookIntake:
    config: IgnitionConfig
    secret: Callable[[], str]
    archive: RawArchive
    queue: EventQueue
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def handle(self, headers: Mapping[str, str], raw_body: bytes, request_id: str) -> IngestResult:
        received_at = self.now()
        try:
            secrets = WebhookSecrets.parse(self.secret())
            matched = verify_webhook_rotating(headers, raw_body, secrets, self.config.webhook, received_at)
        except WebhookAuthError as exc:
            logger.warning(
                "webhook rejected: not authentic", extra={"reason": exc.reason, "request": request_id}
            )
            return IngestResult(
                401,
                {"error": "unauthorized", "message": "missing or invalid webhook signature"},
                [Metric.WEBHOOKS_REJECTED_SIGNATURE],
            )

        if matched:
            # Ignition still signs with the secret being rotated out: say so before the overlap ends.
            logger.info("webhook signed with the previous secret", extra={"request": request_id})
        payload_sha256 = hashlib.sha256(raw_body).hexdigest()
        try:
            envelope = parse_webhook(raw_body, self.config)
            archive_key = raw_key("raw", received_at, envelope.id, payload_sha256)
            event = to_sync_event(
                envelope,
                config=self.config,
                received_at=received_at,
                payload_sha256=payload_sha256,
                archive_key=archive_key,
                correlation_id=request_id,
            )
        except WebhookTooLargeError as exc:
            return self._quarantine(raw_body, received_at, request_id, 413, "payload_too_large", str(exc))
        except WebhookPayloadError as exc:
            return self._quarantine(raw_body, received_at, request_id, 400, "invalid_payload", str(exc))

        self.archive.put(
            archive_key,
            raw_body,
            {"event-id": event.event_id, "event-type": event.event_type, "request-id": request_id},
        )
        self.queue.send(event)
        logger.info(
            "webhook accepted",
            extra={"event_id": event.event_id, "type": event.event_type, "ignition_id": event.record_id},
        )
        return IngestResult(
            202, {"status": "accepted", "event_id": event.event_id}, [Metric.WEBHOOKS_ACCEPTED]
        )

    def _quarantine(
        self, raw_body: bytes, at: datetime, request_id: str, status: int, error: str, message: str
    ) -> IngestResult:
        key = quarantine(self.archive, "quarantine", raw_body, at, request_id, error=error, reason=message)
        logger.warning("authentic webhook quarantined", extra={"error": error, "reason": message, "key": key})
        metric = Metric.WEBHOOKS_REJECTED_TOO_LARGE if status == 413 else Metric.WEBHOOKS_REJECTED_MALFORMED
        return IngestResult(status, {"error": error, "message": message, "reference": request_id}, [metric])


def api_response(result: IngestResult) -> dict[str, Any]:
    """An API Gateway proxy response."""
    return {
        "statusCode": result.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(result.body),
    }
