"""What a backfill run is asked to do and what it reports: options, progress, failures, result."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.config import RecordType
from shared.store.checkpoints import PHASES, Checkpoint, Phase


class BackfillPaused(Exception):
    """The run stopped before the end and can be resumed (day budget spent, ``max_calls`` reached,
    Xero unavailable for longer than the retries)."""

    def __init__(self, reason: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True)
class Failure:
    record_type: RecordType
    ignition_id: str
    category: str
    reason: str


@dataclass(frozen=True)
class ProgressUpdate:
    phase: Phase
    done: int
    total: int
    xero_calls: int
    eta_seconds: float | None
    calls_left_today: int | None
    waiting: str | None = None


@dataclass
class BackfillOptions:
    phases: tuple[Phase, ...] = PHASES
    # Stop cleanly (resumable) once the run has made this many Xero calls: leaves budget for the
    # live sync on a busy day.
    max_calls: int | None = None
    # Write Ignition's details onto the Xero contacts it links to (what the live sync does).
    update_linked: bool = True
    dry_run: bool = False
    restart: bool = False


@dataclass
class BackfillResult:
    checkpoint: Checkpoint
    failures: list[Failure] = field(default_factory=list)
    planned: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    xero_calls_this_pass: int = 0

    @property
    def records(self) -> int:
        return sum(c.total for c in self.checkpoint.counts.values())
