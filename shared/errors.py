"""How the sync classifies what went wrong: retry later, or stop and tell a person.

Every error an adapter raises (Xero, Ignition, OAuth, locks) derives from one of the two bases
below, so the retry policy decides by type: :class:`TransientSyncError` (retry later) or
:class:`PermanentError` (park it for a person). Anything else is a bug.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import ClassVar


class SyncError(Exception):
    """Base for failures the sync understands."""


class TransientSyncError(SyncError):
    """Worth retrying later (the message returns to the queue with a growing delay)."""

    transient: ClassVar[bool] = True


class LimitWait(TransientSyncError):
    """Waiting our turn, not a fault: a rate limit (Xero's or Ignition's), our own call budget or
    another worker's lock. The retry policy never counts a wait against the event's attempts, so a
    burst that queues behind a limit cannot run out of deliveries and be parked without a reason."""


class PermanentError(SyncError):
    """Retrying cannot help until a person changes something. Base of the sync's own verdicts
    (:class:`PermanentSyncError`) and of adapter errors of that kind (a Xero validation refusal,
    a lost authorisation), which are parked under their class name."""

    transient: ClassVar[bool] = False


class PermanentSyncError(PermanentError):
    """A use case's verdict that a person must act (a mapping rule, a duplicate contact in Xero).
    The event goes straight to the DLQ with ``reason`` and ``category``, and can be replayed once
    fixed."""

    def __init__(self, reason: str, *, category: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category


def is_permanent(exc: BaseException) -> bool | None:
    """True: needs a person (straight to the DLQ). False: retry via the queue. None: unknown
    (a bug): let it propagate so the queue retries and then dead-letters it, loudly."""
    if isinstance(exc, PermanentError):
        return True
    if isinstance(exc, TransientSyncError):
        return False
    return None


# SQS caps a message's visibility timeout at 12 hours.
MAX_RETRY_DELAY_SECONDS = 12 * 3600
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 900


def retry_delay_seconds(
    exc: BaseException,
    receive_count: int,
    rand: Callable[[int, int], int] = random.randint,
    *,
    max_delay_seconds: int = MAX_RETRY_DELAY_SECONDS,
) -> int:
    """How long a failed message stays invisible before its next try. A rate limit says when
    (``retry_after``): waiting exactly that long spends one receive instead of several. Anything
    else backs off exponentially with jitter by how often the message was already received."""
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        return min(max_delay_seconds, MAX_RETRY_DELAY_SECONDS, math.ceil(retry_after) + 1)
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(receive_count - 1, 0))
    return min(max_delay_seconds, rand(ceiling // 2, ceiling))
