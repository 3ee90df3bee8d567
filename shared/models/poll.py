"""The poller's saved state: one cursor per listing, stored as one document in the state table
(``shared/store/poll_state.py``) and advanced by the use case (``shared/poll.py``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Cursor(BaseModel):
    """Where one listing (resource + pass) stands."""

    model_config = ConfigDict(extra="ignore")

    # The newest change time Ignition reported in this listing; None before the first run.
    since: datetime | None = None
    # slug -> version already queued, for versions at or after since - overlap (bounded by the
    # changes within one overlap).
    queued: dict[str, datetime] = Field(default_factory=dict)


class PollState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runs: int = 0
    cursors: dict[str, Cursor] = Field(default_factory=dict)
    last_run_at: datetime | None = None
    last_queued: int = 0
