"""The ingest use case (verify, archive, enqueue) with an in-memory archive and queue."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import IgnitionConfig
from shared.ignition.webhook import WebhookSecrets, sign_webhook
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


OLD, NEW = "old-webhook-secret-0123456789", "new-webhook-secret-9876543210"


def rotation(rotated_ago: timedelta) -> str:
    """The stored secret as the rotation writes it."""
    return WebhookSecrets(current=OLD).rotated(NEW, NOW - rotated_ago).model_dump_json()


def status_for(stored: str, signed_with: str, config: IgnitionConfig | None = None) -> int:
    config = config or IgnitionConfig()
    body = delivery("evt_rot")
    headers = sign_webhook(body, signed_with, config.webhook)
    return (
        WebhookIntake(config=config, secret=lambda: stored, archive=Archive(), queue=Queue(), now=lambda: NOW)
        .handle(headers, body, "req")
        .status
    )


@pytest.mark.parametrize("scheme", ["hmac-sha256", "shared-token"])
def test_given_a_secret_rotated_an_hour_ago_when_either_secret_signs_then_both_are_accepted(
    scheme: str,
) -> None:
    # Given the webhook secret rotated an hour ago (default overlap: a day),
    config = IgnitionConfig.model_validate({"webhook": {"scheme": scheme}})
    stored = rotation(timedelta(hours=1))
    # When Ignition still signs with the previous secret, or already with the new one,
    # Then neither is refused: no window of 401s while Ignition is changed.
    assert status_for(stored, OLD, config) == 202
    assert status_for(stored, NEW, config) == 202
    assert status_for(stored, "some-other-secret", config) == 401


def test_given_the_overlap_has_passed_when_the_previous_secret_signs_then_401() -> None:
    # Given a rotation older than the overlap (the default day, and a configured ten minutes),
    short = IgnitionConfig.model_validate({"webhook": {"previous_secret_overlap_seconds": 600}})
    # When a delivery is signed with the previous secret, Then it is refused; the new one is not.
    assert status_for(rotation(timedelta(days=1, seconds=1)), OLD) == 401
    assert status_for(rotation(timedelta(minutes=20)), OLD, short) == 401
    assert status_for(rotation(timedelta(minutes=20)), NEW, short) == 202
    assert status_for(rotation(timedelta(minutes=5)), OLD, short) == 202


def test_given_a_plain_secret_when_parsed_then_it_is_the_only_one_and_a_bad_json_value_is_not_echoed() -> (
    None
):
    # Given the shape the stack creates (one random value),
    assert WebhookSecrets.parse(NEW).accepted(NOW, 86_400) == [NEW]
    assert status_for(NEW, NEW) == 202
    # When a JSON value lacks "current", Then the error names the shape, never the value.
    with pytest.raises(ValueError, match="current, previous, rotated_at") as raised:
        WebhookSecrets.parse('{"previous": "' + OLD + '"}')
    assert OLD not in str(raised.value)
