"""The poller's cursor and run lease in the state table.

Item layout (state table)::

    pk="poll#state"  sk="cursor"  body=<JSON of shared.models.poll.PollState>  updated_at=<ISO>
    pk="lock#poll-run"  sk="lock"  ...                  # DynamoLeaseLock: one run at a time

Every key the poller writes starts with ``poll#`` or is its lock, which is what its IAM role is
limited to (``infra/functions.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models.poll import PollState
from shared.store.documents import StoredDocument
from shared.store.locks import DynamoLeaseLock, LockTimeout

POLL_PK_PREFIX = "poll#"
POLL_LOCK = "poll-run"


class DynamoPollStateStore:
    def __init__(self, table_name: str) -> None:
        self._document = StoredDocument(table_name, f"{POLL_PK_PREFIX}state", "cursor")

    def load(self) -> PollState | None:
        body = self._document.read()
        return None if body is None else PollState.model_validate_json(body)

    def save(self, state: PollState) -> None:
        self._document.write(state.model_dump_json(), updated_at={"S": datetime.now(UTC).isoformat()})


class DynamoRunLease:
    """One poll run at a time. A run never waits for another: the schedule brings the next one."""

    def __init__(self, table_name: str, lease_seconds: float) -> None:
        self._lock = DynamoLeaseLock(table_name, POLL_LOCK, lease_seconds=lease_seconds, acquire_timeout=0)

    def try_acquire(self) -> bool:
        try:
            self._lock.acquire(timeout=0)
        except LockTimeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()
