"""What a reconciliation finds and returns: discrepancies, their categories, the run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.config import ReconcileCategory, RecordType
from shared.money import Money

Mode = Literal["full", "incremental", "xero_events"]
Action = Literal["requeued", "reported", "deferred", "dry_run"]

# Report order, and the words a bookkeeper reads for each category.
CATEGORIES: dict[ReconcileCategory, tuple[str, str]] = {
    "missing_in_xero": (
        "Missing in Xero",
        "In Ignition, never written to Xero (a lost webhook, or a failure before the write).",
    ),
    "not_mapped": (
        "In Xero, not linked",
        "A Xero record carries the Ignition key but the sync has no link to it (a crash between write "
        "and link).",
    ),
    "not_applied": (
        "Change not applied",
        "Ignition changed the record after the sync last wrote it, and no change reached Xero (a lost "
        "webhook).",
    ),
    "mapped_missing_in_xero": (
        "Linked but gone from Xero",
        "The sync wrote it, but Xero no longer has it (deleted in Xero).",
    ),
    "archived_in_xero": (
        "Archived or voided in Xero",
        "Live in Ignition, archived (contact) or voided/deleted (invoice, payment) in Xero.",
    ),
    "field_drift": (
        "Values differ",
        "Both have the record but a field the sync writes differs (for example, edited in Xero).",
    ),
    "duplicate_in_xero": (
        "Duplicates in Xero",
        "More active Xero contacts than Ignition clients for one client key or one e-mail.",
    ),
    "orphan_in_xero": (
        "Unexplained in Xero",
        "A Xero record carries an Ignition key, but no Ignition record explains it.",
    ),
    "written_by_ignition": (
        "Written outside this product",
        "A Xero invoice carries this Ignition invoice's number, but this product did not write it: most "
        "likely Ignition's own Xero integration pushed it when the proposal was accepted. Left on, both "
        "write the same invoices. Turn off invoice creation in Ignition's Xero settings (the cut-over "
        "checklist in docs/ignition-setup.md), then void whichever copy you do not keep; never "
        "repaired automatically.",
    ),
    "ignition_draft": (
        "Xero -> Ignition, waiting",
        "A Xero draft invoice marked for Ignition has no Ignition draft yet (the reason is given), or "
        "its Ignition draft has waited longer than xero_to_ignition.waiting_draft_days for a person to "
        "finish it (docs/xero-to-ignition.md).",
    ),
    "dead_letter": (
        "Failed, waiting for a person",
        "The sync gave up on this record; it sits in the dead-letter queue with its reason.",
    ),
}
CATEGORY_ORDER: tuple[ReconcileCategory, ...] = tuple(CATEGORIES)
# How an ignition_draft finding about a draft left unfinished starts (the other kind: no draft).
DRAFT_WAITING = "Ignition draft waiting: "
# ... and about a draft that may exist unrecorded (its request sent, its answer lost).
DRAFT_UNCONFIRMED = "Ignition draft unconfirmed: "


class FieldDifference(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    ignition: str | None
    xero: str | None


class Discrepancy(BaseModel):
    """One disagreement, reported once per run (``key`` is unique within a run)."""

    model_config = ConfigDict(frozen=True)

    category: ReconcileCategory
    record_type: RecordType
    ignition_id: str | None = None
    xero_id: str | None = None
    # Another Xero record involved (the second contact of a duplicate, ...).
    other_xero_ids: list[str] = Field(default_factory=list)
    differences: list[FieldDifference] = Field(default_factory=list)
    detail: str
    # For a re-queue: the FIFO group (the client slug) and whether the sync must re-apply a record
    # that is not newer than its mapping (drift in Xero).
    group_id: str | None = None
    force: bool = False
    action: Action = "reported"
    # What a bookkeeper recognises the record by, filled from the rows the run already read
    # (WorkSet.describe): the client's name, the invoice number, the amount with its currency.
    client_name: str | None = None
    invoice_number: str | None = None
    amount: Money | None = None

    @property
    def key(self) -> str:
        ident = self.ignition_id or self.xero_id or ",".join(self.other_xero_ids)
        return f"{self.category}|{self.record_type}|{ident}"


@dataclass
class RunCounters:
    xero_calls: int = 0
    ignition_requests: int = 0
    dynamodb_batches: int = 0
    records: dict[str, int] = field(default_factory=dict)

    def saw(self, what: str, count: int = 1) -> None:
        self.records[what] = self.records.get(what, 0) + count


class StopRun(Exception):
    """Out of time or call budget: checkpoint and let the next run carry on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RunResult(BaseModel):
    run_id: str
    mode: Mode
    status: Literal["complete", "partial"]
    dry_run: bool = False
    started_at: str
    finished_at: str
    summary: dict[str, int]
    healed: int
    needs_person: int
    report: dict[str, str]
    stopped_because: str | None = None
    phases_done: list[str] = Field(default_factory=list)
    counters: dict[str, int | dict[str, int]] = Field(default_factory=dict)

    def response(self) -> dict[str, object]:
        """The handler's contract: run_id, status, summary, report, healed."""
        return self.model_dump(
            include={"run_id", "status", "summary", "report", "healed", "mode", "needs_person"}
        )
