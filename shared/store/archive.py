"""Raw webhook bodies (and quarantined ones) in S3, byte for byte, for audit and replay."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from shared import aws


def header_safe(value: str) -> str:
    """S3 metadata travels as HTTP headers: printable ASCII only. An authentic webhook's event type
    with a CR, LF or other control character would otherwise fail the put (a 5xx)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)


def raw_key(prefix: str, at: datetime, name: str, body_sha256: str | None = None) -> str:
    """``<prefix>/YYYY/MM/DD/<name>[-<body sha256>].json``. The name is made key-safe, which can
    map different names to one (``evt/1``, ``evt:1``, ``evt_1``); the body's hash keeps their
    bodies apart, while a redelivery of the same bytes still lands on the same key."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:200]
    suffix = f"-{body_sha256}" if body_sha256 else ""
    return f"{prefix}/{at:%Y/%m/%d}/{safe}{suffix}.json"


class RawArchive(Protocol):
    """The port the webhook use cases keep raw bodies through (:class:`S3RawArchive` in Lambda)."""

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None: ...


def quarantine(
    archive: RawArchive,
    prefix: str,
    raw_body: bytes,
    at: datetime,
    request_id: str,
    *,
    error: str,
    reason: str,
) -> str:
    """Keep an authentic body that could not be read, byte for byte, with why; its key."""
    key = raw_key(prefix, at, request_id)
    # S3 metadata is limited to 2 KB; the whole reason is in the caller's log.
    archive.put(key, raw_body, {"reason": reason[:1024], "error": error, "request-id": request_id})
    return key


class S3RawArchive:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        aws.client("s3").put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            Metadata={k: header_safe(v) for k, v in metadata.items()},
        )

    def get(self, key: str) -> bytes:
        body: bytes = aws.client("s3").get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
