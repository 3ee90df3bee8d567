"""Progress of a long job (backfill) in the state table, so an interrupted run resumes.

Item layout (state table)::

    pk="backfill#checkpoint"  sk="run"  body=<JSON of Checkpoint>  updated_at=<ISO>

The checkpoint says which phases are finished and what the run has done so far. It is a summary,
not the source of truth: the ID mappings (written as each batch lands in Xero) and the external
keys in Xero (ContactNumber, InvoiceNumber, payment Reference) decide what is already done, so a
stale checkpoint can only make a run re-check work, never repeat it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.store.documents import StoredDocument

Phase = Literal["contacts", "invoices", "payments"]
PHASES: tuple[Phase, ...] = ("contacts", "invoices", "payments")


class PhaseCounts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    total: int = 0
    already_mapped: int = 0
    created: int = 0
    linked: int = 0
    skipped: int = 0
    failed: int = 0


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    started_at: datetime
    updated_at: datetime
    status: Literal["running", "interrupted", "paused", "completed"] = "running"
    phases_done: list[Phase] = Field(default_factory=list)
    counts: dict[str, PhaseCounts] = Field(default_factory=dict)
    xero_calls: int = 0
    resumed: int = 0
    note: str | None = None

    def phase(self, name: Phase) -> PhaseCounts:
        return self.counts.setdefault(name, PhaseCounts())


class CheckpointStore:
    def __init__(self, table_name: str, name: str = "backfill") -> None:
        self._document = StoredDocument(table_name, f"{name}#checkpoint", "run")

    def load(self) -> Checkpoint | None:
        body = self._document.read()
        return None if body is None else Checkpoint.model_validate_json(body)

    def save(self, checkpoint: Checkpoint) -> None:
        checkpoint.updated_at = datetime.now(UTC)
        self._document.write(
            checkpoint.model_dump_json(), updated_at={"S": checkpoint.updated_at.isoformat()}
        )

    def clear(self) -> None:
        self._document.delete()
