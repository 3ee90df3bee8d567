"""Raw webhook bodies (and quarantined ones) in S3, byte for byte, for audit and replay."""

from __future__ import annotations

from collections.abc import Mapping

from shared import aws


class S3RawArchive:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        aws.client("s3").put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            # S3 metadata must be ASCII.
            Metadata={k: v.encode("ascii", "replace").decode("ascii") for k, v in metadata.items()},
        )

    def get(self, key: str) -> bytes:
        body: bytes = aws.client("s3").get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
