"""The FIFO sync queue (its dead-letter queue: :mod:`shared.store.dead_letter_queue`)."""

from __future__ import annotations

import hashlib
import logging
import re

from botocore.exceptions import ClientError

from shared import aws
from shared.models.events import SyncEvent

logger = logging.getLogger(__name__)
STALE_RECEIPT_CODES = (
    "ReceiptHandleIsInvalid",
    "MessageNotInflight",
    "AWS.SimpleQueueService.MessageNotInflight",
)

# SQS's message limit is 256 KiB; keep a margin for the attributes.
SQS_MAX_MESSAGE_BYTES = 250_000
# SQS FIFO ids: up to 128 alphanumeric or punctuation characters.
_SQS_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def sqs_id(value: str) -> str:
    return value if _SQS_ID.match(value) else hashlib.sha256(value.encode()).hexdigest()


class SqsEventQueue:
    def __init__(self, queue_url: str) -> None:
        self._url = queue_url

    def send(self, event: SyncEvent) -> None:
        body = event.model_dump_json()
        if len(body.encode()) > SQS_MAX_MESSAGE_BYTES and event.record is not None:
            # Too big for SQS with the record inside: send it as a hint; the sync reads the record
            # from the Reporting API, and the raw body is archived in S3 all the same.
            logger.info("record dropped from an oversized queue message", extra={"event_id": event.event_id})
            body = event.model_copy(update={"record": None}).model_dump_json()
        aws.client("sqs").send_message(
            QueueUrl=self._url,
            MessageBody=body,
            # One group per Ignition client: its events apply in order, other clients' in parallel.
            MessageGroupId=sqs_id(event.group_id),
            # Redelivered webhooks carry the same event id; SQS drops repeats within 5 minutes.
            MessageDeduplicationId=sqs_id(f"{event.event_id}:{event.payload_sha256[:16]}"),
        )

    def delay(self, receipt_handle: str, seconds: int) -> bool:
        """Keep a received message invisible for ``seconds`` before its next try. Best effort: if
        the receipt is no longer valid (the message became visible again, or was received by
        another consumer), the queue's own visibility timeout and redrive policy still apply."""
        try:
            aws.client("sqs").change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in STALE_RECEIPT_CODES:
                raise
            logger.warning(
                "retry delay not set: receipt no longer valid", extra={"code": exc.response["Error"]["Code"]}
            )
            return False
        return True
