"""The ingest use case (verify, archive, enqueue) with an in-memory archive and queue."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from shared.config import IgnitionConfig
from shared.ignition.webhook import sign_webhook
from shared.ingest import WebhookIntake
from shared.models.events import SyncEvent

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
SECRET = "unit-webhook-secret"


class Archive:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.objects[key] = body


class Queue:
    def __init__(self) -> None:
        self.events: list[SyncEvent] = []

    def send(self, event: SyncEvent) -> None:
        self.events.append(event)


def intake(archive: Archive, queue: Queue, secret: str = SECRET) -> WebhookIntake:
    return WebhookIntake(
        config=IgnitionConfig(), secret=lambda: secret, archive=archive, queue=queue, now=lambda: NOW
    )


def delivery(event_id: str, slug: str = "cli_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": "client.updated",
            "occurred_at": "2026-11-01T09:00:00Z",
            "data": {"slug": slug},
        }
    ).encode()


def test_given_event_ids_that_sanitise_alike_when_archived_then_each_body_keeps_its_own_key() -> None:
    # Given three authentic deliveries whose ids differ only in a character S3 keys avoid,
    archive, queue = Archive(), Queue()
    bodies = [delivery(event_id) for event_id in ("evt/1", "evt_1", "evt:1")]

    # When each is taken, and the first is delivered a second time,
    statuses = [
        intake(archive, queue)
        .handle(sign_webhook(body, SECRET, IgnitionConfig().webhook), body, "req")
        .status
        for body in [*bodies, bodies[0]]
    ]

    # Then all are accepted and every body is archived byte for byte under a key of its own,
    assert statuses == [202, 202, 202, 202]
    assert sorted(archive.objects.values()) == sorted(bodies)
    # ... under the day's raw/ prefix (where `replay archive` lists), named by the id and the hash,
    for body in bodies:
        digest = hashlib.sha256(body).hexdigest()
        (key,) = [k for k, v in archive.objects.items() if v == body]
        assert key.startswith("raw/2026/11/01/") and key.endswith(f"-{digest}.json")
    # ... and each queued event points at its own body (the redelivery at the same one again).
    assert [archive.objects[e.archive_key or ""] for e in queue.events] == [*bodies, bodies[0]]
