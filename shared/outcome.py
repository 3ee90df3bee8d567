"""What a sync did with one record: the result every use case returns (``shared/audit.py`` records it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.config import RecordType

SyncAction = Literal[
    "created",
    # An Ignition invoice draft made from a Xero invoice (shared/xero_to_ignition): nothing written
    # to Xero, so not counted as an invoice created there.
    "drafted",
    "updated",
    "voided",
    "applied",
    "skipped_stale",
    "skipped_state",
    "skipped_missing",
    "skipped_duplicate",
]


@dataclass
class SyncOutcome:
    action: SyncAction
    ignition_id: str
    xero_id: str | None = None
    match_method: str | None = None
    decisions: list[str] = field(default_factory=list)
    record_type: RecordType = RecordType.CLIENT
    # Set when Xero's total differs from Ignition's after the write: reported, never hidden.
    total_mismatch: str | None = None
