"""Xero webhooks: verify, parse and record each event as a hint for reconciliation.

Xero's contract (xero-webhooks.yaml, "Configuring your server"): the ``x-xero-signature`` header is
base64(HMAC-SHA256(raw body, webhook key)). Every answer must come within 5 seconds with an empty
body: 200 for a correctly signed request, 401 otherwise. Before enabling a subscription Xero sends
"intent to receive" requests (signed and wrongly signed, ``events: []``). A delivery that fails is
retried for up to 24 hours, after which Xero disables the whole subscription.

An event is a hint that a Xero record changed, never the record: it goes to the state table and the
reconciliation job (``xero_events`` mode) looks the record up, compares it, and deletes the item.

Item layout (state table, ``pk`` S + ``sk`` S, TTL ``expires_at``)::

    pk="xero-event#<CONTACT|INVOICE|CREDITNOTE>"  sk="<resourceId>"
    event_type=<CREATE|UPDATE>  event_date_utc=<ISO 8601, ms, Z>  tenant_id=<S>
    received_at=<ISO 8601>  revision=<N, +1 per write>  expires_at=<N epoch s, 30 days on>

One item per record: a repeated or newer event refreshes it, an older one leaves it as it is.
A consumer that deletes an item after acting on it should delete on ``revision = <what it read>``,
so an event that arrived meanwhile is not lost with it.

The webhook key secret holds the key Xero shows for the subscription, either as is or as JSON
``{"webhook_key": "...", "tenant_id": "..."}``; with ``tenant_id``, events of other organisations
(another tenant connected to the same Xero app) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared import aws
from shared.headers import header
from shared.observability import Metric
from shared.store.archive import RawArchive, quarantine

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-xero-signature"
EVENT_PK_PREFIX = "xero-event#"
EVENT_TTL = timedelta(days=30)
QUARANTINE_PREFIX = "quarantine/xero"
# The categories that become items; SUBSCRIPTION (app subscriptions) is not ours to act on.
RECORDED_CATEGORIES = frozenset({"CONTACT", "INVOICE", "CREDITNOTE"})

AuthFailure = Literal["missing_signature", "malformed_signature", "signature_mismatch"]


class XeroWebhookAuthError(Exception):
    """Not signed with our webhook key. ``reason`` is safe to log: never the key or signature."""

    def __init__(self, reason: AuthFailure) -> None:
        self.reason: AuthFailure = reason
        super().__init__(reason)


class XeroWebhookPayloadError(ValueError):
    """Authentic, but not a delivery this module understands; the message says why."""


class WebhookKeyError(RuntimeError):
    """The webhook key secret is empty or unusable: a setup problem, never the sender's fault."""


# ---------------------------------------------------------------------------------------------
# The key, signing and verification
# ---------------------------------------------------------------------------------------------


class WebhookKey(BaseModel):
    """What the ``xero-webhook`` secret holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_key: str = Field(min_length=1)
    tenant_id: str | None = Field(default=None, description="The connected organisation; others ignored")

    @field_validator("webhook_key", "tenant_id")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @classmethod
    def from_secret(cls, value: str) -> WebhookKey:
        text = value.strip()
        if not text:
            raise WebhookKeyError(
                "the Xero webhook key secret is empty: paste the key Xero shows for the webhook"
            )
        if not text.startswith("{"):
            return cls(webhook_key=text)
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            fields = ", ".join(str(err["loc"][0]) if err["loc"] else "(value)" for err in exc.errors())
            # Field names only: the secret's value must never reach a log.
            raise WebhookKeyError(
                f'the Xero webhook key secret is not {{"webhook_key": ..., "tenant_id": ...}} ({fields})'
            ) from None


def sign(raw_body: bytes, key: str) -> str:
    """The ``x-xero-signature`` value for ``raw_body`` (the sandbox and tests sign with this)."""
    if not key:
        raise WebhookKeyError("cannot sign with an empty webhook key")
    return base64.b64encode(hmac.new(key.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def verify(headers: Mapping[str, str], raw_body: bytes, key: str) -> None:
    """Raise ``XeroWebhookAuthError`` unless ``raw_body`` carries our key's signature."""
    if not key:
        raise WebhookKeyError("the Xero webhook key is empty")
    received = header(headers, SIGNATURE_HEADER)
    if not received or not received.strip():
        raise XeroWebhookAuthError("missing_signature")
    try:
        received_digest = base64.b64decode(received.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise XeroWebhookAuthError("malformed_signature") from None
    expected = hmac.new(key.encode("utf-8"), raw_body, hashlib.sha256).digest()
    if not hmac.compare_digest(received_digest, expected):
        raise XeroWebhookAuthError("signature_mismatch")


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


class XeroWebhookEvent(BaseModel):
    """One event of a delivery (xero-webhooks.yaml ``WebhookEvent.events[]``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    resource_url: str = Field(alias="resourceUrl", min_length=1)
    resource_id: str = Field(alias="resourceId")
    event_date_utc: datetime = Field(alias="eventDateUtc")
    event_type: Literal["CREATE", "UPDATE"] = Field(alias="eventType")
    event_category: Literal["CONTACT", "INVOICE", "CREDITNOTE", "SUBSCRIPTION"] = Field(alias="eventCategory")
    tenant_id: str = Field(alias="tenantId", min_length=1, max_length=100)
    tenant_type: str | None = Field(default=None, alias="tenantType")

    @field_validator("resource_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        # Canonical lower-case form: the same record is one item whatever case Xero sends.
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"{value!r} is not a UUID") from None

    @field_validator("event_date_utc")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Xero sends "2024-06-21T01:15:39.902" with no offset; the field is UTC by definition.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def event_date_iso(self) -> str:
        """Fixed width (ms, ``Z``), so that string order is time order in a condition."""
        return self.event_date_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class XeroWebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    events: list[XeroWebhookEvent]
    first_event_sequence: int | None = Field(default=None, alias="firstEventSequence")
    last_event_sequence: int | None = Field(default=None, alias="lastEventSequence")
    entropy: str | None = None


def parse(raw_body: bytes) -> XeroWebhookPayload:
    """The delivery, or ``XeroWebhookPayloadError`` naming what is wrong (never the body itself)."""
    try:
        document = json.loads(raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise XeroWebhookPayloadError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise XeroWebhookPayloadError('not a Xero webhook: no "events" list')
    try:
        return XeroWebhookPayload.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise XeroWebhookPayloadError(f"invalid event(s): {problems}") from None


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


class XeroEventStore(Protocol):
    def record(self, event: XeroWebhookEvent, received_at: datetime) -> bool:
        """Store or refresh the item; False when it already holds a newer event."""
        ...


class DynamoXeroEventStore:
    def __init__(self, table: str, ttl: timedelta = EVENT_TTL) -> None:
        self._table = table
        self._ttl = ttl

    def record(self, event: XeroWebhookEvent, received_at: datetime) -> bool:
        ddb = aws.client("dynamodb")
        try:
            ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"{EVENT_PK_PREFIX}{event.event_category}"}, "sk": {"S": event.resource_id}},
                UpdateExpression=(
                    "SET event_type = :type, event_date_utc = :date, tenant_id = :tenant, "
                    "received_at = :received, expires_at = :expires ADD revision :one"
                ),
                # Idempotent, and never moves an item back in time (Xero may deliver out of order).
                ConditionExpression="attribute_not_exists(pk) OR event_date_utc <= :date",
                ExpressionAttributeValues={
                    ":type": {"S": event.event_type},
                    ":date": {"S": event.event_date_iso},
                    ":tenant": {"S": event.tenant_id},
                    ":received": {"S": received_at.astimezone(UTC).isoformat()},
                    ":expires": {"N": str(int((received_at + self._ttl).timestamp()))},
                    ":one": {"N": "1"},
                },
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True


@dataclass(frozen=True)
class XeroWebhookResult:
    """What to answer (always with an empty body) and what to count."""

    status: int
    metrics: Counter[Metric] = field(default_factory=Counter)

    def response(self) -> dict[str, Any]:
        """An API Gateway proxy response. Xero requires an empty body, whatever the status."""
        return {"statusCode": self.status, "headers": {}, "body": ""}


@dataclass(frozen=True, kw_only=True)
class XeroWebhookReceiver:
    """Use case: one Xero webhook delivery, verified, parsed and recorded."""

    key: Callable[[], WebhookKey]
    store: XeroEventStore
    archive: RawArchive
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def handle(self, headers: Mapping[str, str], raw_body: bytes, request_id: str) -> XeroWebhookResult:
        received_at = self.now()
        key = self.key()
        try:
            verify(headers, raw_body, key.webhook_key)
        except XeroWebhookAuthError as exc:
            logger.warning(
                "xero webhook rejected: not authentic", extra={"reason": exc.reason, "request": request_id}
            )
            return XeroWebhookResult(401, Counter({Metric.XERO_WEBHOOKS_REJECTED: 1}))

        try:
            payload = parse(raw_body)
        except XeroWebhookPayloadError as exc:
            return self._quarantine(raw_body, received_at, request_id, str(exc))

        counts: Counter[Metric] = Counter()
        for event in _latest_per_record(payload.events):
            if key.tenant_id is not None and event.tenant_id.lower() != key.tenant_id.lower():
                logger.warning(
                    "xero event ignored: another organisation",
                    extra={
                        "tenant_id": event.tenant_id,
                        "category": event.event_category,
                        "request": request_id,
                    },
                )
                counts[Metric.XERO_EVENTS_IGNORED] += 1
                continue
            if event.event_category not in RECORDED_CATEGORIES:
                logger.info(
                    "xero event ignored: category not reconciled",
                    extra={"category": event.event_category, "resource_id": event.resource_id},
                )
                counts[Metric.XERO_EVENTS_IGNORED] += 1
                continue
            if self.store.record(event, received_at):
                counts[Metric.XERO_EVENTS_RECORDED] += 1
            else:
                counts[Metric.XERO_EVENTS_STALE] += 1
        logger.info(
            "xero webhook accepted",
            extra={
                "request": request_id,
                "events": len(payload.events),
                "recorded": counts[Metric.XERO_EVENTS_RECORDED],
                "first_sequence": payload.first_event_sequence,
                "last_sequence": payload.last_event_sequence,
            },
        )
        return XeroWebhookResult(200, counts)

    def _quarantine(self, raw_body: bytes, at: datetime, request_id: str, reason: str) -> XeroWebhookResult:
        # 200, not 400: Xero would retry the same bytes for 24 hours and then disable the whole
        # subscription, stopping every later event too. The body is kept byte for byte instead
        # (a failed S3 write raises: 5xx, and Xero retries), so nothing authentic is lost.
        key = quarantine(
            self.archive, QUARANTINE_PREFIX, raw_body, at, request_id, error="invalid_payload", reason=reason
        )
        logger.error("authentic xero webhook quarantined", extra={"reason": reason, "key": key})
        return XeroWebhookResult(200, Counter({Metric.XERO_WEBHOOKS_QUARANTINED: 1}))


def _latest_per_record(events: list[XeroWebhookEvent]) -> list[XeroWebhookEvent]:
    """One event per (category, record): the newest; a batch may repeat a record."""
    latest: dict[tuple[str, str], XeroWebhookEvent] = {}
    for event in events:
        key = (event.event_category, event.resource_id)
        current = latest.get(key)
        if current is None or event.event_date_utc >= current.event_date_utc:
            latest[key] = event
    return list(latest.values())
