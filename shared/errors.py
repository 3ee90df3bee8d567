"""How the sync classifies what went wrong: retry later, or stop and tell a person."""

from __future__ import annotations


class SyncError(Exception):
    """Base for failures the sync understands."""


class TransientSyncError(SyncError):
    """Worth retrying later (the message returns to the queue with a growing delay)."""


class PermanentSyncError(SyncError):
    """Retrying cannot help until a person changes something (a mapping rule, a duplicate contact in
    Xero). The event goes straight to the DLQ with ``reason``, and can be replayed once fixed."""

    def __init__(self, reason: str, *, category: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category


def is_permanent(exc: BaseException) -> bool | None:
    """True: needs a person (straight to the DLQ). False: retry via the queue. None: unknown
    (a bug): let it propagate so the queue retries and then dead-letters it, loudly."""
    if isinstance(exc, PermanentSyncError):
        return True
    if isinstance(exc, TransientSyncError):
        return False
    transient = getattr(exc, "transient", None)
    return None if not isinstance(transient, bool) else not transient
