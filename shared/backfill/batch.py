"""One backfill pass's shared state and the steps every phase takes: read in full, write in batches
of 50, map what landed, audit it, checkpoint, report progress, and wait out Xero's limits.

Each phase (``contacts.py``, ``invoices.py``, ``payments.py``) decides per record and hands its
writes to :meth:`BackfillRun.write_batches`; nothing here knows what a contact or an invoice is.
"""

from __future__ import annotations

import functools
import logging
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from shared.backfill.ports import CheckpointPort, IgnitionPort, MappingsPort, XeroPort
from shared.backfill.results import BackfillOptions, BackfillPaused, Failure, ProgressUpdate
from shared.config import IntegrationConfig, RecordType
from shared.errors import PermanentSyncError
from shared.models.ignition import IgnitionClient
from shared.models.xero import Currency, Invoice, Organisation, Payment
from shared.refusals import currency_reason, period_locked_reason
from shared.store.budget_usage import BudgetUsage
from shared.store.checkpoints import Checkpoint, Phase, PhaseCounts
from shared.store.mappings import AuditEntry, RecordMapping
from shared.xero.budget import BudgetExhausted
from shared.xero.client import MAX_BATCH_SIZE
from shared.xero.errors import XeroRateLimited, XeroUnavailable
from shared.xero.idempotency import idempotency_key
from shared.xero.rules import XeroCurrencyNotEnabled, XeroDuplicateNumber, XeroPeriodLocked, refusal

logger = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")
# Records of a kind are read from Xero this many a page (the most Xero serves).
XERO_PAGE_SIZE = 1_000
# The Xero id a dry run gives a record it would create (Xero assigns the real one on the write).
PLANNED_ID_PREFIX = "planned:"
# How often one batch is retried after a transient Xero failure before the run pauses.
MAX_BATCH_ATTEMPTS = 6


@dataclass
class Write:
    """One record to write to Xero (``body``), or to link without a write (``body`` None)."""

    ignition_id: str
    body: Any
    method: str  # created | contact_number | email | name | xero_contact_id
    attempt: int = 0
    client: IgnitionClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Again:
    """A record Xero refused in a way its phase can fix: sent again in a later batch."""


AGAIN: Final = _Again()
# What a phase makes of Xero's answer for one record of a batch.
Settled = RecordMapping | Failure | _Again


def refusal_failure(
    record_type: RecordType,
    ignition_id: str,
    what: str,
    body: Invoice | Payment,
    errors: list[str],
    organisation: Organisation,
    enabled: Sequence[Currency],
) -> Failure:
    """The category and the reason a bookkeeper reads for a document Xero refused."""
    refused = refusal(errors)
    dated = body.Date.isoformat() if body.Date else "undated"
    problem: PermanentSyncError
    if isinstance(refused, XeroPeriodLocked):
        problem = period_locked_reason(what, dated, refused.lock, organisation)
    elif isinstance(refused, XeroCurrencyNotEnabled):
        currency = refused.currency or (body.CurrencyCode if isinstance(body, Invoice) else None) or "?"
        problem = currency_reason(what, currency, enabled)
    elif isinstance(refused, XeroDuplicateNumber):
        return Failure(record_type, ignition_id, "duplicate_number", "; ".join(errors))
    else:
        return Failure(record_type, ignition_id, "xero_validation", "; ".join(errors))
    return Failure(record_type, ignition_id, problem.category, problem.reason)


def _limit_wait(exc: BudgetExhausted | XeroRateLimited) -> float:
    """How long to wait out a minute's limit (ours or Xero's); a day's limit pauses the run."""
    if isinstance(exc, BudgetExhausted):
        whose, day, retry_after = (
            "today's Xero call budget is spent",
            exc.problem == "budget-day",
            exc.retry_after_seconds,
        )
    else:
        whose, day, retry_after = (
            "Xero's daily limit is reached",
            (exc.problem or "").lower() == "day",
            exc.retry_after,
        )
    if day:
        raise BackfillPaused(f"{whose}; run again after Xero's daily reset (UTC)", retry_after) from exc
    return max(retry_after, 1.0)


class _Slugged(Protocol):
    @property
    def slug(self) -> str: ...


R = TypeVar("R", bound=_Slugged)


@dataclass(kw_only=True, eq=False)
class BackfillRun:
    """The state of one pass, shared by its phases: options, checkpoint, failures, the Xero calls
    made, and what a dry run would have written (carried into the next phases)."""

    xero: XeroPort
    ignition: IgnitionPort
    mappings: MappingsPort
    checkpoints: CheckpointPort
    config: IntegrationConfig
    xero_calls: Callable[[], int]
    budget: Callable[[], BudgetUsage | None] = lambda: None
    progress: Callable[[ProgressUpdate], None] = lambda update: None
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    monotonic: Callable[[], float] = time.monotonic
    # The pass's state, set by start() and the phases.
    options: BackfillOptions = field(default_factory=BackfillOptions, init=False)
    failures: list[Failure] = field(default_factory=list, init=False)
    planned: dict[str, dict[str, int]] = field(default_factory=dict, init=False)
    # A dry run carries what it would have written into the next phases, so an invoice of a
    # client it would create is planned, not reported as missing: Ignition id -> Xero id (or a
    # placeholder), and the invoices it would create, as Xero would then hold them.
    would_map: defaultdict[RecordType, dict[str, str]] = field(
        default_factory=lambda: defaultdict(dict), init=False
    )
    would_hold: dict[str, Invoice] = field(default_factory=dict, init=False)
    calls_at_start: int = field(default=0, init=False)
    started: float = field(default=0.0, init=False)
    checkpoint: Checkpoint | None = field(default=None, init=False)
    phase: Phase = field(default="contacts", init=False)
    _accounted: int = field(default=0, init=False)

    def start(self, options: BackfillOptions) -> None:
        self.options = options
        self.started = self.monotonic()
        self.calls_at_start = self.xero_calls()

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def calls_this_pass(self) -> int:
        return self.xero_calls() - self.calls_at_start

    # -- checkpoint and counts -------------------------------------------------------------------

    def account_calls(self, checkpoint: Checkpoint) -> None:
        spent = self.calls_this_pass()
        checkpoint.xero_calls += spent - self._accounted
        self._accounted = spent

    def save(self, checkpoint: Checkpoint) -> None:
        if self.dry_run:
            return
        self.account_calls(checkpoint)
        self.checkpoints.save(checkpoint)

    def mapped(
        self, counts: PhaseCounts, record_type: RecordType, ids: Sequence[str]
    ) -> dict[str, RecordMapping]:
        """The stored mappings of a phase's records; the phase's counts start from them."""
        mapped = self.mappings.mappings(record_type, ids)
        counts.total = len(ids)
        self._count_mapped(counts, mapped.values())
        return mapped

    def unmapped(
        self,
        counts: PhaseCounts,
        record_type: RecordType,
        records: Iterable[R],
        skipped: Callable[[R], bool],
    ) -> list[R]:
        """The records (keyed by slug) with no mapping yet, less those the rules skip (counted)."""
        records = list(records)
        mapped = self.mapped(counts, record_type, [r.slug for r in records])
        pending: list[R] = []
        for record in records:
            if record.slug in mapped:
                continue
            if skipped(record):
                counts.skipped += 1
                continue
            pending.append(record)
        return pending

    def _count_mapped(self, counts: PhaseCounts, mapped: Iterable[RecordMapping]) -> None:
        """Start a pass from the truth: what this run mapped before (an interrupted pass) counts as
        created or linked by it; anything else was mapped before the run began."""
        ours = self._event_id()
        counts.failed = counts.skipped = counts.created = counts.linked = counts.already_mapped = 0
        for mapping in mapped:
            if mapping.last_event_id != ours:
                counts.already_mapped += 1
            elif mapping.match_method == "created":
                counts.created += 1
            else:
                counts.linked += 1

    def fail(self, failure: Failure, counts: PhaseCounts) -> None:
        logger.warning(
            "backfill record failed",
            extra={
                "record_type": str(failure.record_type),
                "ignition_id": failure.ignition_id,
                "category": failure.category,
            },
        )
        self.failures.append(failure)
        counts.failed += 1

    # -- mappings and audit ----------------------------------------------------------------------

    def _event_id(self) -> str:
        assert self.checkpoint is not None
        return f"backfill:{self.checkpoint.run_id}"

    def mapping(
        self,
        record_type: RecordType,
        ignition_id: str,
        xero_id: str,
        method: str,
        created_at: datetime | None,
        updated_at: datetime,
    ) -> RecordMapping:
        return RecordMapping(
            record_type=record_type,
            ignition_id=ignition_id,
            xero_id=xero_id,
            ignition_created_at=created_at,
            ignition_updated_at=updated_at,
            synced_at=self.now(),
            last_event_id=self._event_id(),
            match_method=method,
            version=1,
        )

    def link(self, mapping: RecordMapping, counts: PhaseCounts) -> None:
        """Map one record linked without a write (found in Xero by its external key); a dry run
        only counts it and remembers it for the next phases."""
        if self.dry_run:
            self.would_map[mapping.record_type][mapping.ignition_id] = mapping.xero_id
            counts.linked += 1
            return
        self.land([(Write(mapping.ignition_id, None, mapping.match_method), mapping)], counts)

    def land(self, landed: list[tuple[Write, RecordMapping]], counts: PhaseCounts) -> None:
        """Save the mappings of records now in Xero (conditional), count them, audit them."""
        if not landed:
            return
        conflicts = self.mappings.save_many([mapping for _, mapping in landed])
        audits: list[AuditEntry] = []
        for write, mapping in landed:
            if mapping.ignition_id in conflicts:
                # The live sync mapped it while we were writing: its mapping stands.
                counts.already_mapped += 1
                continue
            if write.method == "created":
                counts.created += 1
            else:
                counts.linked += 1
            action = "created" if write.method == "created" else "updated"
            audits.append(self._audit(mapping.record_type, write, mapping.xero_id, action))
        self.mappings.audit(audits)

    def _audit(self, record_type: RecordType, write: Write, xero_id: str, action: str) -> AuditEntry:
        return AuditEntry(
            record_type=record_type,
            ignition_id=write.ignition_id,
            event_id=self._event_id(),
            action=action,
            at=self.now(),
            xero_id=xero_id,
            decisions=[
                "backfill: created in Xero"
                if write.method == "created"
                else f"backfill: linked to the existing Xero record (matched by {write.method})"
            ],
        )

    # -- Xero calls ------------------------------------------------------------------------------

    def read(self, make: Callable[[], Iterator[T]]) -> list[T]:
        """A full read (all pages), retried from the start after a transient failure."""
        return self.retrying("reading", lambda: list(make()))

    def write_batches(
        self,
        writes: list[Write],
        send: Callable[[list[Any], str], list[S]],
        settle: Callable[[Write, S], Settled],
        counts: PhaseCounts,
        *,
        done: int = 0,
        total: int | None = None,
        batches_left_from_queue: bool = False,
    ) -> int:
        """Write ``writes`` 50 a call (``send`` gets the bodies and the batch's idempotency key),
        let the phase ``settle`` each record by Xero's answer, then map what landed, checkpoint
        and report after every batch. Returns how many records are done (``done`` counted on)."""
        assert self.checkpoint is not None
        total = len(writes) if total is None else total
        queue = list(writes)
        while queue:
            batch, queue = queue[:MAX_BATCH_SIZE], queue[MAX_BATCH_SIZE:]
            bodies = [w.body for w in batch]
            key = idempotency_key("backfill", *(body.model_dump_json() for body in bodies))
            results = self._write(functools.partial(send, bodies, key))
            landed: list[tuple[Write, RecordMapping]] = []
            for write, saved in zip(batch, results, strict=True):
                settled = settle(write, saved)
                if isinstance(settled, _Again):
                    queue.append(write)
                    continue
                done += 1
                if isinstance(settled, Failure):
                    self.fail(settled, counts)
                else:
                    landed.append((write, settled))
            self.land(landed, counts)
            self.save(self.checkpoint)
            left = len(queue) // MAX_BATCH_SIZE if batches_left_from_queue else None
            self.report(done, total, remaining_batches=left)
        return done

    def _write(self, call: Callable[[], list[T]]) -> list[T]:
        if self.options.max_calls is not None and self.calls_this_pass() >= self.options.max_calls:
            raise BackfillPaused(
                f"stopped after {self.options.max_calls} Xero calls (--max-calls); run again to resume"
            )
        return self.retrying("writing", call)

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(1, MAX_BATCH_ATTEMPTS + 1):
            try:
                return call()
            except (BudgetExhausted, XeroRateLimited) as exc:
                wait = _limit_wait(exc)
            except XeroUnavailable as exc:
                if attempt == MAX_BATCH_ATTEMPTS:
                    raise BackfillPaused(f"Xero unavailable while {what}: {exc}") from exc
                wait = min(60.0, 2.0**attempt)
            self._notify_wait(f"waiting {wait:.0f} s for Xero ({what})")
            self.sleep(wait)
        raise BackfillPaused(f"Xero kept refusing while {what}; run again later")

    # -- progress --------------------------------------------------------------------------------

    def _notify_wait(self, message: str) -> None:
        self.progress(ProgressUpdate(self.phase, 0, 0, self.calls_this_pass(), None, None, waiting=message))

    def report(self, done: int, total: int, remaining_batches: int | None = None) -> None:
        """Progress of the current phase, with an estimate of the time left: the calls still to make
        at the organisation's per-minute budget or at the pace observed, whichever is slower, and
        not before tomorrow's reset when today's budget cannot cover them."""
        left = total - done
        calls_left = (
            remaining_batches
            if remaining_batches is not None
            else (left + MAX_BATCH_SIZE - 1) // MAX_BATCH_SIZE
        )
        usage = self.budget()
        spent = self.calls_this_pass()
        elapsed = self.monotonic() - self.started
        eta: float | None = None
        if total:
            per_minute = self.config.xero.calls_per_minute
            budget_seconds = max(calls_left - (usage.minute_left if usage else 0), 0) * 60.0 / per_minute
            observed = (elapsed / spent) * calls_left if spent else 0.0
            eta = max(budget_seconds, observed)
            if usage is not None and calls_left > usage.day_left:
                eta = max(eta, usage.day_ends_at - time.time())
        self.progress(ProgressUpdate(self.phase, done, total, spent, eta, usage.day_left if usage else None))


class BackfillPhase(ABC, Generic[R]):
    """One phase of a pass: the records still to map (counted as the phase starts), then what the
    phase decides and writes for them."""

    name: ClassVar[Phase]

    def __init__(self, run: BackfillRun) -> None:
        self._run = run

    def execute(self, checkpoint: Checkpoint) -> None:
        counts = checkpoint.phase(self.name)
        pending = self._pending(counts)
        self._run.report(0, len(pending))
        if pending:
            self._sync(pending, counts)

    @abstractmethod
    def _pending(self, counts: PhaseCounts) -> list[R]: ...

    @abstractmethod
    def _sync(self, pending: list[R], counts: PhaseCounts) -> None: ...
