"""Raw webhook bodies (and quarantined ones) in S3, byte for byte, for audit and replay."""

from __future__ import annotations

from collections.abc import Mapping

from shared import aws


def header_safe(value: str) -> str:
    """S3 metadata travels as HTTP headers: printable ASCII only. An authentic webhook's event type
    with a CR, LF or other control character would otherwise fail the put (a 5xx)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in value)


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
