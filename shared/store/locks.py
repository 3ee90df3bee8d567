"""A lease lock in the state table, to serialise work across processes and Lambdas.

Item layout (state table, key ``pk`` S + ``sk`` S, TTL attribute ``expires_at``)::

    pk="lock#<name>"  sk="lock"  owner=<S>  lease_until=<N epoch seconds, ms precision>
    expires_at=<N epoch seconds>   # TTL: clean-up only, lease_until decides who holds the lock
    fence=<S>                      # new for every acquisition: the fencing token

Acquire is a conditional put (no item, or the lease has run out, or we already own it); release is
a conditional delete (only by the owner). A holder that crashes blocks others for at most
``lease_seconds``: keep the work under the lock shorter than the lease, or :meth:`extend` it.

:meth:`extend` is also the fence before a write that must not happen once the lease is gone: a
conditional update that succeeds only while this acquisition (owner *and* fence) still holds an
unexpired lease, and then pushes the lease out far enough to cover the write.
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
from shared.errors import LimitWait, TransientSyncError

logger = logging.getLogger(__name__)

# DynamoDB's TTL sweeper is lazy (can take days); the item is only a fallback for crashed holders.
_TTL_GRACE_SECONDS = 3_600


class LockTimeout(LimitWait):
    """The lock stayed held by someone else for longer than the caller was willing to wait.
    Transient: the holder's lease runs out on its own."""

    def __init__(self, name: str, waited_seconds: float) -> None:
        super().__init__(f"lock {name!r} still held by another worker after {waited_seconds:.1f}s")
        self.name = name
        self.waited_seconds = waited_seconds


class LeaseLost(TransientSyncError):
    """Our lease ran out and may have been taken over: whatever we meant to write under it must not
    be written. Transient: the new holder's work stands, and a retry reads it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"lease on lock {name!r} was lost before the work under it was saved")
        self.name = name


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
        # This acquisition's fencing token; None while not held.
        self._fence: str | None = None

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

    def extend(self, seconds: float | None = None) -> None:
        """Fence and renew: succeed only if this acquisition still holds an unexpired lease, and
        then hold it until ``seconds`` (default ``lease_seconds``) from now. Raise
        :class:`LeaseLost` otherwise, before the caller writes anything."""
        fence = self._fence
        if fence is None:
            raise LeaseLost(self.name)
        now = self._clock()
        lease_until = now + (self.lease_seconds if seconds is None else seconds)
        ddb = self._ddb()
        try:
            ddb.update_item(
                TableName=self.table_name,
                Key=self._key,
                UpdateExpression="SET lease_until = :until, expires_at = :ttl",
                ConditionExpression="#owner = :me AND fence = :fence AND lease_until >= :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":until": {"N": _num(lease_until)},
                    ":ttl": {"N": str(math.ceil(lease_until) + _TTL_GRACE_SECONDS)},
                    ":me": {"S": self.owner},
                    ":fence": {"S": fence},
                    ":now": {"N": _num(now)},
                },
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            logger.warning("lease lock lost before the work under it was saved", extra={"lock": self.name})
            raise LeaseLost(self.name) from None

    def release(self) -> None:
        self._fence = None
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
        fence = uuid.uuid4().hex
        ddb = self._ddb()
        try:
            ddb.put_item(
                TableName=self.table_name,
                Item={
                    **self._key,
                    "owner": {"S": self.owner},
                    "fence": {"S": fence},
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
        self._fence = fence
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


__all__ = ["DynamoLeaseLock", "LeaseLost", "LockTimeout"]
