"""``rotate-webhook-secret``: change the Ignition webhook secret without refusing a delivery.

The new value is stored next to the current one (``{"current", "previous", "rotated_at"}``); the
ingest function accepts both for ``ignition.webhook.previous_secret_overlap_seconds``. Each warm
ingest function keeps the stored value cached for up to 5 minutes, so the new secret is set in
Ignition only after that, and before the overlap ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.errors import CliError, Exit
from cli.target import Target
from shared import aws
from shared.ignition.webhook import WebhookSecrets

# The ingest function's secret cache (functions/ingest/handler.py), plus a minute for clocks.
PICK_UP_SECONDS = 300 + 60


def read_new_secret(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise CliError(f"{path} does not exist", Exit.USAGE) from None
    if len(value) < 16:
        raise CliError(f"{path} must hold the new secret (at least 16 characters)", Exit.USAGE)
    return value


def rotate_webhook_secret(
    target: Target, new_secret: str, *, now: datetime | None = None, force: bool = False
) -> dict[str, Any]:
    at = now or datetime.now(UTC)
    secret_id = target.settings.ignition_webhook_secret_id
    overlap = target.config.ignition.webhook.previous_secret_overlap_seconds
    sm = aws.client("secretsmanager")
    try:
        stored = WebhookSecrets.parse(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    except ValueError as exc:
        raise CliError(f"{secret_id}: {exc}", Exit.ERROR) from None
    if new_secret.strip() == stored.current.strip():
        raise CliError("the new secret is the current one; nothing to rotate", Exit.USAGE)
    if stored.rotated_at is not None and len(stored.accepted(at, overlap)) > 1 and not force:
        # Rotating again would drop the previous secret while Ignition may still sign with it.
        until = stored.rotated_at + timedelta(seconds=overlap)
        raise CliError(
            f"a rotation is still in its overlap (previous secret accepted until {until:%Y-%m-%d %H:%M} UTC)",
            Exit.USAGE,
            hint="finish it first (the current secret set in Ignition), or pass --force",
        )
    sm.put_secret_value(SecretId=secret_id, SecretString=stored.rotated(new_secret, at).model_dump_json())
    return {
        "secret_id": secret_id,
        "rotated_at": at,
        "set_in_ignition_after": at + timedelta(seconds=PICK_UP_SECONDS),
        "previous_accepted_until": at + timedelta(seconds=overlap),
    }
