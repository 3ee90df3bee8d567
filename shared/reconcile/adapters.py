"""The AWS side of the reconciliation: the state table (checkpoints, latest run, Xero webhook
events), the archive bucket and the alert topic. Mappings are read in batches by
:class:`shared.store.mappings.BatchMappingReader`, the DLQ by
:class:`shared.store.dead_letter_queue.SqsDeadLetters`."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from shared import aws
from shared.reconcile.ports import XeroEventItem
from shared.store.documents import StoredDocument

CHECKPOINT_PK = "reconcile#checkpoint"
XERO_EVENT_PK = "xero-event#"

logger = logging.getLogger(__name__)


class DynamoRunStore:
    def __init__(self, table_name: str) -> None:
        self._table = table_name
        # (category, resource id) -> the revision read, so a delete never drops a newer event.
        self._revisions: dict[tuple[str, str], str] = {}
        self._latest = StoredDocument(table_name, "reconcile#latest", "run")

    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def _checkpoint(self, kind: str) -> StoredDocument:
        return StoredDocument(self._table, CHECKPOINT_PK, kind)

    def load_checkpoint(self, kind: str) -> dict[str, Any] | None:
        return _loaded(self._checkpoint(kind).read())

    def save_checkpoint(self, kind: str, body: dict[str, Any]) -> None:
        self._checkpoint(kind).write(json.dumps(body), updated_at={"S": datetime.now(UTC).isoformat()})

    def clear_checkpoint(self, kind: str) -> None:
        self._checkpoint(kind).delete()

    def save_latest(self, body: dict[str, Any]) -> None:
        # The run's headline figures as attributes too, for a console or a query to read.
        self._latest.write(
            json.dumps(body),
            run_id={"S": body["run_id"]},
            status={"S": body["status"]},
            mode={"S": body["mode"]},
            started_at={"S": body["started_at"]},
            finished_at={"S": body["finished_at"]},
            summary={"S": json.dumps(body["summary"])},
            report={"S": json.dumps(body["report"])},
            healed={"N": str(body["healed"])},
            needs_person={"N": str(body["needs_person"])},
        )

    def latest(self) -> dict[str, Any] | None:
        return _loaded(self._latest.read())

    def xero_events(self, category: str, limit: int) -> list[XeroEventItem]:
        items: list[XeroEventItem] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"{XERO_EVENT_PK}{category}"}},
        }
        while len(items) < limit:
            response = self._ddb().query(**kwargs, Limit=limit - len(items))
            for item in response.get("Items", []):
                if "revision" in item:
                    self._revisions[(category, item["sk"]["S"])] = item["revision"]["N"]
                items.append(
                    XeroEventItem(
                        category=category,
                        resource_id=item["sk"]["S"],
                        event_type=item.get("event_type", {}).get("S", ""),
                        event_date_utc=item.get("event_date_utc", {}).get("S", ""),
                    )
                )
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items

    def delete_xero_events(self, category: str, resource_ids: Sequence[str]) -> None:
        """Forget events once checked, but only as they were read: an event Xero sent during the
        run raised the item's revision, so its condition fails and it stays for the next run."""
        for resource_id in resource_ids:
            key = {"pk": {"S": f"{XERO_EVENT_PK}{category}"}, "sk": {"S": resource_id}}
            revision = self._revisions.pop((category, resource_id), None)
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(revision)"}
                if revision is None
                else {
                    "ConditionExpression": "revision = :read",
                    "ExpressionAttributeValues": {":read": {"N": revision}},
                }
            )
            try:
                self._ddb().delete_item(TableName=self._table, Key=key, **condition)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise


def _loaded(body: str | None) -> dict[str, Any] | None:
    return None if body is None else dict(json.loads(body))


class S3Artifacts:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        aws.client("s3").upload_file(
            str(path),
            self._bucket,
            key,
            ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
        )

    def get_file(self, key: str, path: Path) -> bool:
        # Listed first: the role may list only under the working-set prefix (s3:prefix), and S3
        # answers a GET of a missing key with 403, not 404, to a caller not allowed to list it.
        s3 = aws.client("s3")
        listing = s3.list_objects_v2(Bucket=self._bucket, Prefix=key, MaxKeys=1)
        if not any(item["Key"] == key for item in listing.get("Contents", [])):
            return False
        try:
            s3.download_file(self._bucket, key, str(path))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        aws.client("s3").delete_object(Bucket=self._bucket, Key=key)

    def link(self, key: str, seconds: int) -> str:
        # Signed locally (no request). SigV4 asked for by name: botocore may presign S3 with the
        # legacy SigV2, which newer regions refuse. SigV4 caps a link at 7 days; anyone holding it
        # reads this one object until it expires, or until the signing credentials do (a role's
        # session: hours).
        s3 = boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))
        url: str = s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds
        )
        return url


class SnsNotifier:
    def __init__(self, topic_arn: str) -> None:
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        aws.client("sns").publish(TopicArn=self._topic, Subject=subject, Message=message)
