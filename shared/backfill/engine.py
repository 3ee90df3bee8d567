"""The backfill's entry point: runs the phases in order on one checkpoint, pausing and resuming."""

from __future__ import annotations

import uuid
from typing import Any

from shared.backfill.batch import BackfillPhase, BackfillRun
from shared.backfill.contacts import ContactsPhase
from shared.backfill.invoices import InvoicesPhase
from shared.backfill.payments import PaymentsPhase
from shared.backfill.results import BackfillOptions, BackfillPaused, BackfillResult
from shared.store.checkpoints import PHASES, Checkpoint, Phase

# Each phase reads what it needs, decides per record, and writes through BackfillRun.write_batches.
PHASE_STEPS: dict[Phase, type[BackfillPhase[Any]]] = {
    step.name: step for step in (ContactsPhase, InvoicesPhase, PaymentsPhase)
}


class Backfill(BackfillRun):
    """A backfill pass: the phases in order on one checkpoint, each resumable where it stopped."""

    def run(self, options: BackfillOptions | None = None) -> BackfillResult:
        self.start(options or BackfillOptions())
        checkpoint = self._start_checkpoint()
        self.checkpoint = checkpoint
        try:
            for phase in PHASES:
                if phase not in self.options.phases or phase in checkpoint.phases_done:
                    continue
                self.phase = phase
                PHASE_STEPS[phase](self).execute(checkpoint)
                if not self.dry_run:
                    checkpoint.phases_done.append(phase)
                    self.save(checkpoint)
            checkpoint.status = "completed" if not self.dry_run else checkpoint.status
            checkpoint.note = None
        except BackfillPaused as paused:
            checkpoint.status = "paused"
            checkpoint.note = paused.reason
            raise
        except BaseException as exc:  # KeyboardInterrupt included: record where we stopped
            checkpoint.status = "interrupted"
            checkpoint.note = f"{type(exc).__name__}: {exc}"[:500]
            raise
        finally:
            self.account_calls(checkpoint)
            if not self.dry_run:
                self.save(checkpoint)
        return self.result()

    def result(self) -> BackfillResult:
        assert self.checkpoint is not None
        return BackfillResult(
            checkpoint=self.checkpoint,
            failures=list(self.failures),
            planned=self.planned,
            seconds=self.monotonic() - self.started,
            xero_calls_this_pass=self.calls_this_pass(),
        )

    def _start_checkpoint(self) -> Checkpoint:
        stored = None if self.options.restart else self.checkpoints.load()
        now = self.now()
        if stored is None or stored.status == "completed":
            return Checkpoint(run_id=uuid.uuid4().hex[:12], started_at=now, updated_at=now)
        stored.resumed += 1
        stored.status = "running"
        return stored
