"""The FIFO sync queue between ingest and sync, and its dead-letter queue."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# 6x the consumer's timeout (AWS guidance for Lambda event sources): a message is not handed to a
# second consumer while the first may still be working on it, even across retries of a batch.
VISIBILITY_TIMEOUT_FACTOR = 6


class SyncQueues(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, consumer_timeout: Duration, max_receive_count: int
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = self._fifo_queue("DeadLetterQueue")
        self.queue = self._fifo_queue(
            "SyncQueue",
            visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_TIMEOUT_FACTOR),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )

    def _fifo_queue(self, construct_id: str, **props: Any) -> sqs.Queue:
        return sqs.Queue(
            self,
            construct_id,
            fifo=True,
            # Off: the producer sets MessageDeduplicationId = the webhook's event id, so a
            # redelivered webhook is dropped even if its body differs (e.g. a new timestamp).
            content_based_deduplication=False,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # The longest SQS allows: time for a person to look before anything is lost.
            retention_period=Duration.days(14),
            **props,
        )
