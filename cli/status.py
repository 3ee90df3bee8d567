"""``status``: is the integration healthy? One screen, read-only.

Every reading is taken with the same settings the functions use; a reading that cannot be taken
(no CloudWatch data in the sandbox, say) is shown as unknown, never as healthy.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from cli.output import duration
from cli.target import Target
from shared import aws
from shared.oauth import SecretTokenStore, TokenStoreError
from shared.store.budget_usage import read_budget_usage
from shared.store.dead_letter_queue import peek_dead_letters, queue_depth
from shared.store.poll_state import DynamoPollStateStore
from shared.version import deployed_version

OLDEST_MESSAGE_ALARM_SECONDS = 30 * 60  # infra default alarms.oldest_message_age_minutes
DAY_CALLS_LOW = 500  # infra default alarms.xero_day_limit_remaining_below
WEBHOOK_LOOKBACK_DAYS = 14
DLQ_SAMPLE = 100
RECONCILE_KEY = {"pk": {"S": "reconcile#latest"}, "sk": {"S": "run"}}
_AWS_ERRORS = (ClientError, BotoCoreError)
T = TypeVar("T")


def _token_section(
    secret_id: str, provider: str, now: datetime, problems: list[str], needs_refresh: bool
) -> dict[str, Any]:
    section: dict[str, Any] = {"secret": secret_id}
    try:
        tokens = SecretTokenStore(secret_id, provider=provider).load()
    except TokenStoreError as exc:
        problems.append(f"{provider}: {exc}")
        section["state"] = "unreadable"
        return section
    except _AWS_ERRORS as exc:
        problems.append(f"{provider}: cannot read {secret_id}: {type(exc).__name__}")
        section["state"] = "unreadable"
        return section
    try:
        changed = aws.client("secretsmanager").describe_secret(SecretId=secret_id).get("LastChangedDate")
    except _AWS_ERRORS:
        changed = None
    section["last_refresh"] = changed.astimezone(UTC) if isinstance(changed, datetime) else None
    if tokens is None:
        section["state"] = "not connected"
        problems.append(f"{provider}: not connected (run `python -m cli connect {provider}`)")
        return section
    section.update(
        {
            "state": "connected",
            "tenant_id": tokens.tenant_id,
            "tenant_name": tokens.extra.get("tenant_name"),
            "access_token_expires_at": tokens.expires_at,
            "access_token_valid": tokens.expires_at > now,
            "refresh_token": bool(tokens.refresh_token),
        }
    )
    if needs_refresh and not tokens.refresh_token:
        section["state"] = "no refresh token"
        problems.append(
            f"{provider}: no refresh token stored: reconnect with `python -m cli connect {provider}`"
        )
    elif needs_refresh and tokens.expires_at < now - timedelta(days=55):
        problems.append(
            f"{provider}: not refreshed for over 55 days; the refresh token expires after 60 unused days"
        )
    return section


def _last_webhook(bucket: str, now: datetime) -> datetime | None:
    s3 = aws.client("s3")
    for days in range(WEBHOOK_LOOKBACK_DAYS + 1):
        day = now - timedelta(days=days)
        newest: datetime | None = None
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": f"raw/{day:%Y/%m/%d}/"}
        while True:
            page = s3.list_objects_v2(**kwargs)
            for item in page.get("Contents", []):
                modified = item["LastModified"].astimezone(UTC)
                newest = modified if newest is None or modified > newest else newest
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
        if newest is not None:
            return newest
    return None


def _last_poll(table: str) -> dict[str, Any]:
    state = DynamoPollStateStore(table).load()
    if state is None:
        return {"last_run": None, "runs": 0, "last_queued": 0}
    last = state.last_run_at.astimezone(UTC) if state.last_run_at else None
    return {"last_run": last, "runs": state.runs, "last_queued": state.last_queued}


def silence_problem(
    last_webhook: datetime | None, last_poll: datetime | None, now: datetime, limit_minutes: int
) -> str | None:
    """A warning when neither source has been seen for ``limit_minutes``: Ignition's changes may
    have stopped reaching the integration (a bridge switched off, the poller failing)."""
    seen = [t for t in (last_webhook, last_poll) if t is not None]
    newest = max(seen) if seen else None
    if newest is not None and now - newest <= timedelta(minutes=limit_minutes):
        return None
    since = "ever" if newest is None else f"since {newest:%Y-%m-%d %H:%M} UTC"
    return (
        f"no Ignition webhook or poll run seen {since} (more than {duration(limit_minutes * 60)}): check the "
        "Zapier bridge (docs/ignition-setup.md) or the poller (docs/runbook.md, PollFailing), or raise "
        "runtime.ignition.silence_warning_minutes"
    )


def _oldest_message_age(queue_url: str, now: datetime) -> float | None:
    """From CloudWatch (SQS has no API for it); None when there is no data (e.g. the sandbox)."""
    name = queue_url.rstrip("/").rsplit("/", 1)[-1]
    stats = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": name}],
        StartTime=now - timedelta(minutes=15),
        EndTime=now,
        Period=300,
        Statistics=["Maximum"],
    )
    points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None


def _dead_letters(dlq_url: str) -> dict[str, Any]:
    depth = queue_depth(dlq_url)
    section: dict[str, Any] = {"count": depth.visible + depth.in_flight, "top_reasons": []}
    if section["count"] == 0:
        return section
    sample = peek_dead_letters(dlq_url, limit=DLQ_SAMPLE, visibility_seconds=5)
    reasons = Counter((m.category or "unknown", (m.reason or "")[:120]) for m in sample)
    section["sampled"] = len(sample)
    section["top_reasons"] = [
        {"category": category, "reason": reason, "count": count}
        for (category, reason), count in reasons.most_common(5)
    ]
    return section


def _parse(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, dict):
        return {k: _parse(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def latest_reconciliation(table: str) -> dict[str, Any] | None:
    item = (
        aws.client("dynamodb").get_item(TableName=table, Key=RECONCILE_KEY, ConsistentRead=True).get("Item")
    )
    if item is None:
        return None
    deserializer = TypeDeserializer()
    plain = {k: _plain(deserializer.deserialize(v)) for k, v in item.items() if k not in ("pk", "sk")}
    parsed: dict[str, Any] = _parse(plain)
    # The run may be stored whole in one attribute (e.g. "run" or "result") or as attributes.
    for key in ("run", "result", "body"):
        if isinstance(parsed.get(key), dict):
            parsed = {**parsed, **parsed.pop(key)}
    return parsed


def _reading(problems: list[str], what: str, read: Callable[[], T], fallback: T) -> T:
    """What ``read`` returns, or ``fallback`` with "<what> unreadable" among the problems."""
    try:
        return read()
    except _AWS_ERRORS as exc:
        problems.append(f"{what} unreadable: {type(exc).__name__}")
        return fallback


def _queue_section(queue_url: str, moment: datetime, problems: list[str]) -> dict[str, Any]:
    def depth() -> dict[str, Any]:
        found = queue_depth(queue_url)
        return {"visible": found.visible, "in_flight": found.in_flight}

    queue: dict[str, Any] = _reading(problems, "sync queue", depth, {})
    try:
        queue["oldest_message_age_seconds"] = _oldest_message_age(queue_url, moment)
    except _AWS_ERRORS:
        queue["oldest_message_age_seconds"] = None
    age = queue.get("oldest_message_age_seconds")
    if age is not None and age > OLDEST_MESSAGE_ALARM_SECONDS:
        problems.append(f"the oldest queued event has waited {int(age // 60)} minutes (sync stuck?)")
    return queue


def _budget_section(
    target: Target, tenant: str | None, moment: datetime, problems: list[str]
) -> dict[str, Any]:
    xero = target.config.xero
    budget: dict[str, Any] = {"day_limit": xero.calls_per_day}
    if not tenant:
        return budget
    try:
        usage = read_budget_usage(target.settings.state_table, tenant, xero, moment.timestamp())
    except _AWS_ERRORS as exc:
        problems.append(f"call budget unreadable: {type(exc).__name__}")
        return budget
    budget.update(
        {
            "calls_left_today": usage.day_left,
            "calls_used_today": usage.day_used,
            "calls_this_minute": usage.minute_used,
            "minute_limit": usage.minute_limit,
            "day_resets_at": datetime.fromtimestamp(usage.day_ends_at, tz=UTC),
        }
    )
    if usage.day_left < DAY_CALLS_LOW:
        problems.append(f"only {usage.day_left} Xero calls left today")
    return budget


def collect_status(target: Target, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    settings, config = target.settings, target.config
    problems: list[str] = []
    xero = _token_section(
        settings.xero_token_secret_id, "xero", moment, problems, config.xero.auth_mode == "oauth"
    )
    xero["auth_mode"] = config.xero.auth_mode
    ignition = _token_section(settings.ignition_api_secret_id, "ignition", moment, problems, True)

    last_webhook = _reading(problems, "archive", lambda: _last_webhook(settings.archive_bucket, moment), None)
    poll: dict[str, Any] = _reading(
        problems, "poll state", lambda: _last_poll(settings.state_table), {"last_run": None}
    )
    silent = silence_problem(last_webhook, poll["last_run"], moment, config.ignition.silence_warning_minutes)
    if silent is not None:
        problems.append(silent)

    queue = _queue_section(settings.sync_queue_url, moment, problems)

    dlq: dict[str, Any] = _reading(
        problems, "DLQ", lambda: _dead_letters(settings.dlq_url), {"count": None, "top_reasons": []}
    )
    if dlq.get("count"):
        problems.append(f"{dlq['count']} event(s) in the dead-letter queue (replay after fixing the cause)")

    budget = _budget_section(target, xero.get("tenant_id"), moment, problems)

    reconcile = _reading(
        problems, "reconciliation result", lambda: latest_reconciliation(settings.state_table), None
    )
    if reconcile is not None and str(reconcile.get("status", "")).lower() != "complete":
        problems.append(
            f"the last reconciliation {reconcile.get('run_id', '')} is {reconcile.get('status')}: "
            "read its report, then `python -m cli reconcile --now`"
        )

    return {
        "target": target.label,
        "version": deployed_version(target.environment, target.outputs),
        "healthy": not problems,
        "problems": problems,
        "checked_at": moment,
        "xero": xero,
        "ignition": ignition,
        "webhooks": {"last_received": last_webhook},
        "poll": poll,
        "queue": queue,
        "dead_letters": dlq,
        "xero_budget": budget,
        "reconciliation": reconcile,
        "links": {
            k: v
            for k, v in target.outputs.items()
            if k in ("DashboardUrl", "IgnitionWebhookUrl", "XeroWebhookUrl")
        },
    }
