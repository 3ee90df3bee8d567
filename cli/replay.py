"""``replay dlq`` and ``replay archive``: put events back through the normal path (the sync queue,
then the sync function), idempotently.

* DLQ: each dead-lettered ``SyncEvent`` that matches the filters is sent to the sync queue (same
  FIFO group, a fresh deduplication id) and then deleted from the DLQ; the others are released
  untouched. A message is deleted only after its copy is on the sync queue: an interruption can
  leave a message in both queues, never in neither; the sync applies it once either way.
* Archive: every raw webhook body kept under ``raw/YYYY/MM/DD/`` that was received in the time
  range is parsed exactly as ingest parsed it (``parse_webhook`` / ``to_sync_event``) and queued.
  Events already applied are skipped by the sync (idempotency on event id + body hash, and "not
  newer than what was written").
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.target import Target
from shared import aws
from shared.ignition.webhook import WebhookPayloadError, parse_webhook, to_sync_event
from shared.models.events import SyncEvent
from shared.store.dead_letter_queue import (
    DeadLetter,
    delete_dead_letter,
    receive_dead_letters,
    release_dead_letters,
    requeue,
)

# (messages read, events replayed so far): a replay of thousands takes minutes.
Progress = Callable[[int, int], None]
# Long enough to requeue a message before another replay (or the console) sees it again.
DLQ_VISIBILITY_SECONDS = 120


def _matches(
    event: SyncEvent,
    record_type: str | None,
    category: str | None,
    error: str | None,
    letter: DeadLetter | None,
) -> bool:
    if record_type and str(event.record_type) != record_type:
        return False
    if letter is not None:
        if category and (letter.category or "") != category:
            return False
        if error and error.casefold() not in f"{letter.category or ''} {letter.reason or ''}".casefold():
            return False
    return True


def replay_dead_letters(
    target: Target,
    *,
    record_type: str | None = None,
    category: str | None = None,
    error: str | None = None,
    limit: int = 1_000,
    dry_run: bool = False,
    create_anew: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    settings = target.settings
    replay_id = uuid.uuid4().hex[:12]
    replayed: list[dict[str, Any]] = []
    kept: list[DeadLetter] = []
    unreadable = 0
    for letter in receive_dead_letters(
        settings.dlq_url, visibility_seconds=DLQ_VISIBILITY_SECONDS, max_messages=limit
    ):
        event = letter.event()
        if event is None:
            unreadable += 1
            kept.append(letter)
            continue
        if not _matches(event, record_type, category, error, letter):
            kept.append(letter)
            continue
        if dry_run:
            kept.append(letter)
        else:
            # --create-anew: a person checked Ignition, so a draft whose making is unconfirmed
            # (shared/xero_to_ignition/service.py) is made again; no other event is forced.
            force = create_anew and letter.category == "draft_unconfirmed"
            again = event.model_copy(update={"source": "replay", **({"force": True} if force else {})})
            requeue(settings.sync_queue_url, again, replay_id=replay_id)
            delete_dead_letter(settings.dlq_url, letter)
        replayed.append(letter.summary())
        if progress is not None:
            progress(len(replayed) + len(kept), len(replayed))
    release_dead_letters(settings.dlq_url, kept)
    return {
        "source": "dlq",
        "replay_id": replay_id,
        "dry_run": dry_run,
        "replayed": len(replayed),
        "left_in_dlq": len(kept),
        "unreadable": unreadable,
        "by_category": dict(Counter(r["category"] or "unknown" for r in replayed)),
        "events": replayed,
    }


def _days(start: datetime, end: datetime) -> list[datetime]:
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    days = []
    while day <= end:
        days.append(day)
        day += timedelta(days=1)
    return days


def replay_archive(
    target: Target,
    *,
    start: datetime,
    end: datetime,
    record_type: str | None = None,
    limit: int = 10_000,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    settings, config = target.settings, target.config
    s3 = aws.client("s3")
    replay_id = uuid.uuid4().hex[:12]
    replayed: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []
    considered = 0
    for day in _days(start.astimezone(UTC), end.astimezone(UTC)):
        kwargs: dict[str, Any] = {"Bucket": settings.archive_bucket, "Prefix": f"raw/{day:%Y/%m/%d}/"}
        while True:
            page = s3.list_objects_v2(**kwargs)
            for item in sorted(page.get("Contents", []), key=lambda i: i["LastModified"]):
                received = item["LastModified"].astimezone(UTC)
                if not start <= received <= end or len(replayed) >= limit:
                    continue
                considered += 1
                if progress is not None:
                    progress(considered, len(replayed))
                key = item["Key"]
                body: bytes = s3.get_object(Bucket=settings.archive_bucket, Key=key)["Body"].read()
                try:
                    envelope = parse_webhook(body, config.ignition)
                    event = to_sync_event(
                        envelope,
                        config=config.ignition,
                        received_at=received,
                        payload_sha256=hashlib.sha256(body).hexdigest(),
                        archive_key=key,
                        correlation_id=f"replay-{replay_id}",
                    )
                except WebhookPayloadError as exc:
                    problems.append({"key": key, "problem": str(exc)})
                    continue
                if not _matches(event, record_type, None, None, None):
                    continue
                if not dry_run:
                    requeue(
                        settings.sync_queue_url,
                        event.model_copy(update={"source": "replay"}),
                        replay_id=replay_id,
                    )
                replayed.append(
                    {
                        "key": key,
                        "event_id": event.event_id,
                        "event_type": event.event_type,
                        "record_id": event.record_id,
                    }
                )
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    return {
        "source": "archive",
        "replay_id": replay_id,
        "dry_run": dry_run,
        "from": start,
        "to": end,
        "archived_in_range": considered,
        "replayed": len(replayed),
        "unparseable": problems,
        "events": replayed,
    }
