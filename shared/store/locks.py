"""A lease lock in the state table, to serialise work across processes and Lambdas.

Item layout (state table, key ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="lock#<name>"  sk="lock"  owner=<S>  lease_until=<N epoch seconds, ms precision>
    expires_at=<N epoch seconds>   # TTL: clean-up only, lease_until decides who holds the lock

Acquire is a conditional put (no item, or the lease has run out, or we already own it); release is
a conditional delete (only by the owner). A holder that crashes blocks others for at most
``lease_seconds``: keep the work under the lock shorter than the lease.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any

from shared import aws

logger = logging.getLogger(__name__)

# DynamoDB's TTL sweeper is lazy (can take days); the item is only a fallback for crashed holders.
_TTL_GRACE_SECONDS = 3_600


class LockTimeout(Exception):
    """The lock stayed held by someone else for longer than the caller was willing to wait.
    Transient: the holder's lease runs out on its own."""

    transient = True

    def __init__(self, name: str, waited_seconds: float) -> None:
        super().__init__(f"lock {name!r} still held by another worker after {waited_seconds:.1f}s")
        self.name = name
        self.waited_seconds = waited_seconds


class DynamoLeaseLock:
    """Mutual exclusion across workers. One instance may be shared by threads: a local mutex
    serialises them before they compete in DynamoDB."""

    def __init__(
        self,
        table_name: str,
        name: str,
        lease_seconds: float = 30.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        *,
        sleep: Callable[[float], None] = time.sleep,
        acquire_timeout: float = 30.0,
        poll_seconds: float = 0.1,
        max_poll_seconds: float = 1.0,
        client: Any | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.table_name = table_name
        self.name = name
        self.lease_seconds = lease_seconds
        self.owner = owner or f"{uuid.uuid4().hex}"
        self._clock = clock
        self._sleep = sleep
        self._acquire_timeout = acquire_timeout
        self._poll_seconds = poll_seconds
        self._max_poll_seconds = max(max_poll_seconds, poll_seconds)
        self._local = threading.Lock()
        # None: the calling thread's client from shared.aws (the usual case).
        self._client = client
        self._key = {"pk": {"S": f"lock#{name}"}, "sk": {"S": "lock"}}

    def acquire(self, timeout: float | None = None) -> None:
        """Block until the lock is ours, or raise :class:`LockTimeout` after ``timeout`` seconds."""
        wait = self._acquire_timeout if timeout is None else timeout
        started = self._clock()
        if not self._local.acquire(timeout=max(wait, 0.0)):
            raise LockTimeout(self.name, self._clock() - started)
        try:
            delay = self._poll_seconds
            while not self._try_put():
                waited = self._clock() - started
                if waited >= wait:
                    raise LockTimeout(self.name, waited)
                # Jittered, growing poll: ten waiting Lambdas should not hammer one item in step.
                self._sleep(min(random.uniform(delay / 2, delay), max(wait - waited, 0.0)))  # noqa: S311
                delay = min(delay * 2, self._max_poll_seconds)
        except BaseException:
            self._local.release()
            raise

    def release(self) -> None:
        try:
            self._ddb().delete_item(
                TableName=self.table_name,
                Key=self._key,
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )
        except self._ddb().exceptions.ConditionalCheckFailedException:
            # Our lease ran out and someone else took the lock: the work under it overlapped.
            logger.warning("lease lock lost before release", extra={"lock": self.name})
        finally:
            self._local.release()

    def _try_put(self) -> bool:
        now = self._clock()
        lease_until = now + self.lease_seconds
        ddb = self._ddb()
        try:
            ddb.put_item(
                TableName=self.table_name,
                Item={
                    **self._key,
                    "owner": {"S": self.owner},
                    "lease_until": {"N": _num(lease_until)},
                    "expires_at": {"N": str(math.ceil(lease_until) + _TTL_GRACE_SECONDS)},
                },
                # "owner = :me" makes a retried put (lost response, botocore retry) succeed.
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR #owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": _num(now)}, ":me": {"S": self.owner}},
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _ddb(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def __enter__(self) -> DynamoLeaseLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _num(value: float) -> str:
    return str(Decimal(value).quantize(Decimal("0.001")))


__all__ = ["DynamoLeaseLock", "LockTimeout"]
