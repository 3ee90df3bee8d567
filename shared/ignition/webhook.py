"""Ignition webhooks: sign, verify, parse and normalise into a ``SyncEvent``.

Ignition's native webhook format is not publicly documented (docs/integration-facts). Everything
that is a guess lives here or in ``IgnitionConfig``/``WebhookVerification``: the signature scheme
and header names are configuration; the envelope field names (``id``, ``type``, ``occurred_at``,
``data``, ``source``) and the record fields this module reads (``slug``, ``client.slug``) are in
this one module. The sync logic only ever sees a ``SyncEvent``.

Failures never carry the secret, the received signature or the body: ``WebhookAuthError.reason``
is a short stable code for metrics and logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.config import IgnitionConfig, RecordType, WebhookVerification
from shared.headers import header
from shared.ignition import exact_json
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment

AuthFailure = Literal[
    "missing_signature",
    "malformed_signature",
    "signature_mismatch",
    "token_mismatch",
    "missing_timestamp",
    "malformed_timestamp",
    "stale_timestamp",
    "future_timestamp",
]

# A record slug becomes SyncEvent.record_id (max 100) and group_id (max 128).
_MAX_SLUG = 100

# Record types whose webhook payload can be trusted as the full record once it validates. A type
# without a model here is always a hint (the sync reads the Reporting API).
_RECORD_MODELS: dict[RecordType, type[BaseModel]] = {
    RecordType.CLIENT: IgnitionClient,
    RecordType.INVOICE: IgnitionInvoice,
    RecordType.PAYMENT: IgnitionPayment,
}


class WebhookAuthError(Exception):
    """The request did not prove it came from Ignition. ``reason`` is safe to log and to use as a
    metric dimension; it never contains the secret, the signature or the body."""

    def __init__(self, reason: AuthFailure, detail: str = "") -> None:
        self.reason: AuthFailure = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class WebhookPayloadError(ValueError):
    """The body is authentic but not a webhook we can use; the message says what to fix."""


class WebhookTooLargeError(WebhookPayloadError):
    """The body is over ``WebhookVerification.max_body_bytes``."""


# ---------------------------------------------------------------------------------------------
# Signing and verification
# ---------------------------------------------------------------------------------------------


def _signed_message(raw_body: bytes, timestamp: str | None) -> bytes:
    # With a timestamp header the signature covers "<timestamp>.<body>" (the Stripe/Slack pattern),
    # so an old delivery cannot be replayed with a fresh timestamp.
    return raw_body if timestamp is None else timestamp.encode("ascii") + b"." + raw_body


def _digest(raw_body: bytes, secret: str, timestamp: str | None) -> bytes:
    return hmac.new(secret.encode("utf-8"), _signed_message(raw_body, timestamp), hashlib.sha256).digest()


def _require_secret(secret: str) -> None:
    # An empty secret would make every signature forgeable: a configuration error, not a 401.
    if not secret.strip():
        raise ValueError("the Ignition webhook secret is empty")


def sign_webhook(
    raw_body: bytes,
    secret: str,
    config: WebhookVerification,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    """The headers a sender adds to ``raw_body``. The one implementation of the scheme: the
    emulator and the tests sign with it, ``verify_webhook`` checks it."""
    _require_secret(secret)
    if config.scheme == "shared-token":
        return {config.header: f"{config.prefix}{secret.strip()}"}
    headers: dict[str, str] = {}
    stamp: str | None = None
    if config.timestamp_header:
        stamp = str(int((timestamp or datetime.now(UTC)).timestamp()))
        headers[config.timestamp_header] = stamp
    digest = _digest(raw_body, secret, stamp)
    encoded = digest.hex() if config.encoding == "hex" else base64.b64encode(digest).decode("ascii")
    headers[config.header] = f"{config.prefix}{encoded}"
    return headers


def _strip_prefix(value: str, prefix: str) -> str | None:
    if not prefix:
        return value
    if value[: len(prefix)].lower() != prefix.lower():
        return None
    return value[len(prefix) :]


def _decode_signature(value: str, encoding: Literal["hex", "base64"]) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(value)
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        return None


def _parse_timestamp(value: str) -> datetime | None:
    # Epoch seconds is what sign_webhook sends; ISO-8601 is accepted too since the real format is
    # unknown. Parsing leniently is safe: the raw header string is what the signature covers.
    if not value.isascii():  # int() reads Arabic-Indic digits too; the signed message cannot hold them
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_webhook(
    headers: Mapping[str, str],
    raw_body: bytes,
    secret: str,
    config: WebhookVerification,
    now: datetime,
) -> None:
    """Return if ``raw_body`` was sent by the holder of ``secret``, else raise ``WebhookAuthError``."""
    _require_secret(secret)
    received = header(headers, config.header)
    if not received or not received.strip():
        raise WebhookAuthError("missing_signature", f"header {config.header} is absent or empty")
    value = _strip_prefix(received.strip(), config.prefix)

    if config.scheme == "shared-token":
        # HTTP trims header values, so a token can never carry surrounding whitespace; stripping the
        # configured one too forgives a stored secret with a trailing newline.
        expected = secret.strip().encode("utf-8")
        if value is None or not hmac.compare_digest(value.strip().encode("utf-8"), expected):
            raise WebhookAuthError("token_mismatch", f"header {config.header} does not match")
        return

    if value is None:
        raise WebhookAuthError("malformed_signature", f"header {config.header} lacks the expected prefix")
    signature = _decode_signature(value.strip(), config.encoding)
    if signature is None:
        raise WebhookAuthError("malformed_signature", f"header {config.header} is not {config.encoding}")

    stamp: str | None = None
    sent_at: datetime | None = None
    if config.timestamp_header:
        stamp = header(headers, config.timestamp_header)
        if not stamp or not stamp.strip():
            raise WebhookAuthError("missing_timestamp", f"header {config.timestamp_header} is absent")
        stamp = stamp.strip()
        sent_at = _parse_timestamp(stamp)
        if sent_at is None:
            raise WebhookAuthError("malformed_timestamp", f"header {config.timestamp_header} is unreadable")

    if not hmac.compare_digest(signature, _digest(raw_body, secret, stamp)):
        raise WebhookAuthError("signature_mismatch", f"header {config.header} does not match the body")

    # Freshness is checked after the signature so "stale" always means an authentic old message
    # (a replay or a very late retry), never a forgery.
    if sent_at is not None:
        age = (now - sent_at).total_seconds()
        if age > config.max_age_seconds:
            raise WebhookAuthError(
                "stale_timestamp", f"signed {int(age)} s ago, limit {config.max_age_seconds} s"
            )
        if -age > config.max_age_seconds:
            raise WebhookAuthError("future_timestamp", f"signed {int(-age)} s in the future")


class WebhookSecrets(BaseModel):
    """What the ``ignition-webhook`` secret holds: the secret itself (one value), or, while it is
    being rotated, ``{"current", "previous", "rotated_at"}`` so both are accepted for an overlap
    (``WebhookVerification.previous_secret_overlap_seconds``) and no delivery signed with either
    is refused while Ignition and the cached copy in each function catch up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    current: str = Field(min_length=1, repr=False)
    previous: str | None = Field(default=None, repr=False)
    rotated_at: datetime | None = None

    @classmethod
    def parse(cls, stored: str) -> WebhookSecrets:
        if not stored.lstrip().startswith("{"):
            return cls(current=stored)
        try:
            return cls.model_validate_json(stored)
        except ValidationError:
            # Never echo the value: it is the secret.
            raise ValueError(
                "the Ignition webhook secret is JSON but not {current, previous, rotated_at}"
            ) from None

    def accepted(self, now: datetime, overlap_seconds: int) -> list[str]:
        """The secrets a delivery may be signed with at ``now``: current first."""
        secrets = [self.current]
        if self.previous and self.rotated_at is not None:
            rotated_at = self.rotated_at if self.rotated_at.tzinfo else self.rotated_at.replace(tzinfo=UTC)
            if (now - rotated_at).total_seconds() < overlap_seconds:
                secrets.append(self.previous)
        return secrets

    def rotated(self, new_secret: str, at: datetime) -> WebhookSecrets:
        """The stored value after rotating to ``new_secret``: the current one becomes previous."""
        return WebhookSecrets(current=new_secret, previous=self.current, rotated_at=at)


def verify_webhook_rotating(
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: WebhookSecrets,
    config: WebhookVerification,
    now: datetime,
) -> int:
    """``verify_webhook`` against each accepted secret; returns the index of the one that
    matched (0 current, 1 previous) or raises the current secret's ``WebhookAuthError``."""
    first: WebhookAuthError | None = None
    for index, secret in enumerate(secrets.accepted(now, config.previous_secret_overlap_seconds)):
        try:
            verify_webhook(headers, raw_body, secret, config, now)
        except WebhookAuthError as exc:
            # Only a mismatch can be cured by the other secret; a stale or missing timestamp
            # or signature is the same whichever secret is tried.
            if exc.reason not in ("signature_mismatch", "token_mismatch"):
                raise
            first = first or exc
            continue
        return index
    assert first is not None
    raise first


# ---------------------------------------------------------------------------------------------
# Parsing and normalisation
# ---------------------------------------------------------------------------------------------


class IgnitionEnvelope(BaseModel):
    """One webhook delivery: ``{"id", "type", "occurred_at", "data", "source"?}``."""

    # Unknown top-level fields are ignored, so a new field on Ignition's side never rejects events.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=100)
    occurred_at: datetime
    data: dict[str, Any]
    source: dict[str, Any] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        # A naive timestamp is read as UTC rather than the Lambda's local time.
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @property
    def slug(self) -> str:
        """The changed record's id; ``parse_webhook`` guarantees it is a non-empty string."""
        return str(self.data["slug"])


def _describe(errors: list[Any]) -> str:
    # Names the field and the problem, never the input value (it may hold personal data).
    parts = []
    for err in errors:
        field = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(
            f"missing field {field!r}" if err["type"] == "missing" else f"field {field!r}: {err['msg']}"
        )
    return "; ".join(parts)


def record_type_of(event_type: str, config: IgnitionConfig) -> RecordType | None:
    """The record type an event type is about, by its prefix before the first dot."""
    return config.event_prefixes.get(event_type.split(".", 1)[0])


def _is_unicode(document: Any) -> bool:
    """False if a string in ``document`` holds a lone surrogate (JSON allows the escape "\\ud800";
    no UTF-8 text, S3 key, SQS message or pydantic string can carry it)."""
    try:
        json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except RecursionError:
        raise WebhookPayloadError("body is nested too deeply to be a webhook") from None
    return True


def parse_webhook(raw_body: bytes, config: IgnitionConfig) -> IgnitionEnvelope:
    """Parse a verified body into an envelope, or raise ``WebhookPayloadError`` saying what is wrong."""
    limit = config.webhook.max_body_bytes
    if len(raw_body) > limit:
        raise WebhookTooLargeError(f"body is {len(raw_body)} bytes, over the limit of {limit}")
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError(f"body is not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        # Amounts that arrive as JSON numbers become Decimals here, never floats.
        document = exact_json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebhookPayloadError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # NaN / Infinity: not JSON, and never an amount
        raise WebhookPayloadError(f"body is not JSON: {exc}") from None
    except RecursionError:  # e.g. [[[[...]]]] thousands deep: Python's parser gives up
        raise WebhookPayloadError("body is nested too deeply to be a webhook") from None
    if not _is_unicode(document):
        raise WebhookPayloadError(
            "body has an unpaired surrogate escape (\\ud800-\\udfff): not valid Unicode text"
        )
    if not isinstance(document, dict):
        raise WebhookPayloadError(f"body is a JSON {type(document).__name__}, expected an object")
    try:
        envelope = IgnitionEnvelope.model_validate(document)
    except ValidationError as exc:
        raise WebhookPayloadError(_describe(exc.errors())) from None

    if record_type_of(envelope.type, config) is None:
        known = ", ".join(sorted(config.event_prefixes))
        raise WebhookPayloadError(f'unknown event type "{envelope.type}" (known prefixes: {known})')
    slug = envelope.data.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        raise WebhookPayloadError(f'data has no "slug" (the {envelope.type.split(".", 1)[0]} id)')
    if len(slug) > _MAX_SLUG:
        raise WebhookPayloadError(f'data "slug" is {len(slug)} characters, over {_MAX_SLUG}')
    return envelope


def _client_slug(data: Mapping[str, Any]) -> str | None:
    client = data.get("client")
    if isinstance(client, dict):
        slug = client.get("slug")
        if isinstance(slug, str) and slug.strip() and len(slug) <= _MAX_SLUG:
            return slug
    return None


def group_id_for(record_type: RecordType, slug: str, data: Mapping[str, Any]) -> str:
    """The FIFO group of a change: the client, so a client's contact is written before its invoices
    and payments. One rule for every producer (webhook, poller), so the same change lands in the
    same group whoever saw it, and two copies of it apply one after the other, never at once."""
    return slug if record_type is RecordType.CLIENT else (_client_slug(data) or slug)


def _complete_record(record_type: RecordType, data: dict[str, Any]) -> dict[str, Any] | None:
    """The payload if it is the whole record, else None (a hint: the sync reads the API)."""
    model = _RECORD_MODELS.get(record_type)
    if model is None or set(data) <= {"slug"}:
        return None
    try:
        model.model_validate(data)
    except ValidationError:
        return None
    # The raw payload, not model_dump(): defaults (e.g. state="active") must not be invented for
    # fields Ignition did not send, and amounts stay as received (a Decimal read from a JSON number
    # is written to the queue as its exact string). The sync validates it again.
    return data


def to_sync_event(
    envelope: IgnitionEnvelope,
    *,
    config: IgnitionConfig,
    received_at: datetime,
    payload_sha256: str,
    archive_key: str | None,
    correlation_id: str,
) -> SyncEvent:
    """Normalise a parsed envelope into what ingest puts on the queue."""
    record_type = record_type_of(envelope.type, config)
    if record_type is None:  # parse_webhook already rejects these; kept for direct callers
        known = ", ".join(sorted(config.event_prefixes))
        raise WebhookPayloadError(f'unknown event type "{envelope.type}" (known prefixes: {known})')
    slug = envelope.slug
    group_id = group_id_for(record_type, slug, envelope.data)
    return SyncEvent(
        event_id=envelope.id,
        event_type=envelope.type,
        record_type=record_type,
        record_id=slug,
        group_id=group_id,
        occurred_at=envelope.occurred_at,
        received_at=received_at,
        source="webhook",
        record=_complete_record(record_type, envelope.data),
        payload_sha256=payload_sha256,
        archive_key=archive_key,
        correlation_id=correlation_id,
    )
