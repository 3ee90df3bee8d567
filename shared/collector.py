"""The sync function's gathered batch: the event source's batch of a FIFO queue holds at most 10
messages, so on an invocation the function also receives more ready messages from the same queue
(other message groups: FIFO hands out no group that has a message in flight) until it holds
``batching.max_messages`` or the queue answers empty, and handles them together, each FIFO group in
its own thread, the groups' Xero calls gathered by :mod:`shared.gather`.

Every message settles by the delivery policy of one record (:mod:`shared.delivery`): done or
parked in the DLQ, it is deleted (the event source deletes its own, this module the ones it
received itself); to be retried, it is kept invisible for its delay and comes back with its receive
count, so retries, waits and the DLQ by receive count work as before. A group stops at its first
failure and the rest of it is handed back untried, as ``SqsFifoPartialProcessor`` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

from shared import aws
from shared.delivery import BatchAttempt, FunctionLog, QueuedMessage, SyncDelivery
from shared.gather import CallGather

logger = logging.getLogger(__name__)
# SQS's most per ReceiveMessage and per DeleteMessageBatch.
SQS_MAX_PER_CALL = 10


class MessageSource(Protocol):
    """The sync queue, as the collector uses it (the function's role may receive and delete)."""

    def receive(self, max_messages: int, wait_seconds: int) -> list[QueuedMessage]: ...

    def delete(self, messages: Sequence[QueuedMessage]) -> None: ...


class SqsMessageSource:
    def __init__(self, queue_url: str) -> None:
        self._url = queue_url

    def receive(self, max_messages: int, wait_seconds: int) -> list[QueuedMessage]:
        answer = aws.client("sqs").receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=min(max_messages, SQS_MAX_PER_CALL),
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
        )
        return [
            QueuedMessage(
                message_id=m["MessageId"],
                body=m["Body"],
                receipt_handle=m["ReceiptHandle"],
                receives=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                group_id=m.get("Attributes", {}).get("MessageGroupId"),
            )
            for m in answer.get("Messages", [])
        ]

    def delete(self, messages: Sequence[QueuedMessage]) -> None:
        sqs = aws.client("sqs")
        for start in range(0, len(messages), SQS_MAX_PER_CALL):
            chunk = messages[start : start + SQS_MAX_PER_CALL]
            answer = sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
            )
            if answer.get("Failed"):
                # A receipt gone stale (the message came back to another consumer): that consumer
                # finds the event done by the mapping and idempotency record, and writes nothing.
                logger.warning("collected messages not deleted", extra={"failed": len(answer["Failed"])})


class ThreadKeysLog:
    """The function's logger for threads: each thread's keys (event id, correlation id) its own."""

    def __init__(self, log: FunctionLog) -> None:
        self._log = log

    def append_keys(self, **keys: object) -> None:
        thread_safe = getattr(self._log, "thread_safe_append_keys", None)
        (thread_safe or self._log.append_keys)(**keys)

    def info(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        self._log.info(msg, *args, extra=extra)

    def warning(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        self._log.warning(msg, *args, extra=extra)

    def error(self, msg: object, *args: object, extra: Mapping[str, object] | None = None) -> None:
        self._log.error(msg, *args, extra=extra)


def from_event_record(record: Mapping[str, Any]) -> QueuedMessage:
    attributes = record.get("attributes", {})
    return QueuedMessage(
        message_id=record["messageId"],
        body=record["body"],
        receipt_handle=record["receiptHandle"],
        receives=int(attributes.get("ApproximateReceiveCount") or 1),
        group_id=attributes.get("MessageGroupId") or None,
    )


def by_group(messages: Sequence[QueuedMessage]) -> list[list[QueuedMessage]]:
    """Messages per FIFO group, each group in queue order (a message without a group alone)."""
    groups: dict[str, list[QueuedMessage]] = {}
    for message in messages:
        groups.setdefault(message.group_id or f"message:{message.message_id}", []).append(message)
    return list(groups.values())


@dataclass
class GatheredBatch:
    """One invocation's gathered batch (see the module docstring)."""

    delivery: SyncDelivery
    gather: CallGather
    source: MessageSource
    max_messages: int = 50
    receive_wait_seconds: int = 0

    def handle(self, event: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
        own = [from_event_record(r) for r in event.get("Records", [])]
        collected = self.collect(len(own))
        failed = self.run(own + collected)
        settled = [m for m in collected if m.message_id not in failed]
        if settled:
            self.source.delete(settled)
        return {
            "batchItemFailures": [{"itemIdentifier": m.message_id} for m in own if m.message_id in failed]
        }

    def collect(self, holding: int) -> list[QueuedMessage]:
        """More ready messages, until ``max_messages`` are held or the queue answers empty."""
        collected: list[QueuedMessage] = []
        while holding + len(collected) < self.max_messages:
            wanted = self.max_messages - holding - len(collected)
            try:
                got = self.source.receive(wanted, self.receive_wait_seconds)
            except Exception:
                logger.warning("collecting more messages failed", exc_info=True)
                break
            if not got:
                break
            collected.extend(got)
        return collected

    def run(self, messages: Sequence[QueuedMessage]) -> set[str]:
        """Handle ``messages``, each group in its own thread; the ids of those not settled."""
        delivery = replace(self.delivery, log=ThreadKeysLog(self.delivery.log))
        attempt = BatchAttempt(delivery)
        groups = by_group(messages)
        failed: set[str] = set()

        def one_group(group: list[QueuedMessage]) -> None:
            try:
                for index, message in enumerate(group):
                    try:
                        attempt.handle(message)
                    except Exception:  # noqa: BLE001 - retried by its delay; the group stops here
                        failed.update(m.message_id for m in group[index:])
                        return
            finally:
                self.gather.leave()

        if not groups:
            return failed
        self.gather.enlist(len(groups))
        # Each group's thread is named after the invocation's (its logs, and the sandbox's AWS
        # fault injection, sandbox/faults.py, which acts on the sync workers' threads only).
        prefix = f"{threading.current_thread().name}-group"
        with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix=prefix) as pool:
            list(pool.map(one_group, groups))
        self._hand_back_untried(attempt, messages, failed)
        return failed

    def _hand_back_untried(
        self, attempt: BatchAttempt, messages: Sequence[QueuedMessage], failed: set[str]
    ) -> None:
        """Messages behind a failed one of their group were not tried: a wait (not their failure),
        kept as long as their group's head."""
        untried = [m for m in messages if m.message_id in failed - attempt.tried]
        if not untried:
            return
        self.delivery.policy.untried([m.message_id for m in untried])
        for message in untried:
            delay = attempt.group_delays.get(message.group_id or "")
            if delay is not None:
                self.delivery.queue.delay(message.receipt_handle, delay)  # a stale receipt is logged
