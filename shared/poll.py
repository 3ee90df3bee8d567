"""Use case: find what changed in Ignition without any webhook, and queue it for the sync.

Ignition publishes no webhook subscriptions its API documents, so the Reporting API must be a
complete source on its own. Each run, under a lease so two runs never overlap, reads clients,
invoices and payments changed since its cursor and puts one ``SyncEvent`` per changed record on
the same FIFO sync queue the webhook feeds.

Cursor (per resource and per pass, in the state table): the newest change time *Ignition* reported
(never this machine's clock), and the records already queued at or after ``cursor - overlap``.
The next read asks ``updated_from = cursor - overlap`` so a record saved late with an earlier
timestamp is still seen; a record already queued at that very version is not queued again, so an
idle run queues nothing and costs one request per resource. Terminal states (archived clients, void
invoices, cancelled payments) are hidden from the default listing and cost one request each, so
they are read every ``terminal_every_runs`` runs with a cursor of their own.

Event identity, and why a change seen by both the webhook and the poller is applied once:
Ignition's webhook ids are its own and the poller cannot know them, so the two events can never
share an id. Instead the poller's id is derived from the change itself,
``poll:<type>:<slug>@<updated_at>``, with ``payload_sha256`` the hash of the record as read, and
the FIFO group is the webhook's rule (``group_id_for``). So:

* the same version polled twice (the overlap, a retried run) has the same id and hash: SQS drops
  the repeat within its 5-minute deduplication window, and the sync's idempotency record
  (``[event_id, payload_sha256]``) makes any later repeat a no-op;
* the webhook's copy and the poller's copy of one change share a FIFO group, so they are applied one
  after the other, never at once; whichever comes second finds the mapping already at that
  ``updated_at`` and is skipped as not newer (a payment: every allocation already applied), with
  no call to Xero. A newer version always has a new id, so it is never mistaken for a repeat.

The full record travels in the event, so the sync does not read Ignition again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from shared.config import PollRules, RecordType
from shared.errors import LimitWait
from shared.ignition.reporting import Passes
from shared.ignition.webhook import group_id_for
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.poll import Cursor, PollState

logger = logging.getLogger(__name__)

PassKind = Literal["default", "terminal"]
RESOURCES: tuple[tuple[str, RecordType], ...] = (
    # Clients first: a new client's contact is queued before its first invoice.
    ("clients", RecordType.CLIENT),
    ("invoices", RecordType.INVOICE),
    ("payments", RecordType.PAYMENT),
)
_MAX_EVENT_ID = 128


class IgnitionListings(Protocol):
    """What the poller reads (``IgnitionReportingClient``)."""

    def iter_clients(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionClient]: ...

    def iter_invoices(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionInvoice]: ...

    def iter_payments(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionPayment]: ...


class EventQueue(Protocol):
    def send(self, event: SyncEvent) -> None: ...


class PollStateStore(Protocol):
    def load(self) -> PollState | None: ...

    def save(self, state: PollState) -> None: ...


class RunLease(Protocol):
    """Held for the run: ``try_acquire`` False when another run holds it."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


@dataclass
class PollResult:
    status: Literal["complete", "partial", "skipped"]
    queued: int = 0
    seen: int = 0
    already_queued: int = 0
    terminal_read: bool = False
    # Why a run stopped early or did not run: "lease", "budget" (the shared Ignition request
    # budget is down to what the poller leaves for the others, or Ignition answered 429).
    reason: str | None = None
    retry_after: float | None = None

    def response(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "queued": self.queued,
            "seen": self.seen,
            "already_queued": self.already_queued,
            "terminal_read": self.terminal_read,
            "reason": self.reason,
        }


def version_of(record: IgnitionClient | IgnitionInvoice | IgnitionPayment) -> datetime:
    """The change time a listing is ordered by (a payment without updated_at: created_at)."""
    if isinstance(record, IgnitionPayment):
        return record.version_at
    return record.updated_at


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def record_body(record: BaseModel) -> dict[str, Any]:
    """The record as Ignition sent it: fields it did not send are not invented (no defaults), and
    fields this product does not model are kept (the models allow extras)."""
    body: dict[str, Any] = record.model_dump(mode="json", exclude_unset=True)
    return body


def poll_event_id(record_type: RecordType, slug: str, version: datetime) -> str:
    """``poll:<type>:<slug>@<updated_at>``; a slug too long for the 128 characters an event id may
    have is replaced by its hash (the id stays a function of the change alone)."""
    event_id = f"poll:{record_type}:{slug}@{_iso(version)}"
    if len(event_id) <= _MAX_EVENT_ID:
        return event_id
    digest = hashlib.sha256(f"{record_type}:{slug}@{_iso(version)}".encode()).hexdigest()
    return f"poll:{record_type}:{digest}"


def poll_event(
    record_type: RecordType,
    record: IgnitionClient | IgnitionInvoice | IgnitionPayment,
    *,
    received_at: datetime,
    correlation_id: str,
) -> SyncEvent:
    """The event a webhook for the same change would produce, under the poller's id (see above)."""
    body = record_body(record)
    version = version_of(record)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    created = getattr(record, "created_at", None)
    verb = "created" if created is not None and created == version else "updated"
    return SyncEvent(
        event_id=poll_event_id(record_type, record.slug, version),
        event_type=f"{record_type}.{verb}",
        record_type=record_type,
        record_id=record.slug,
        group_id=group_id_for(record_type, record.slug, body),
        occurred_at=version,
        received_at=received_at,
        source="poll",
        record=body,
        payload_sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        correlation_id=correlation_id,
    )


class _BudgetSpent(Exception):
    pass


def _seconds(exc: LimitWait) -> float | None:
    wait = getattr(exc, "retry_after", None)
    return float(wait) if isinstance(wait, int | float) else None


@dataclass(kw_only=True, eq=False)
class Poller:
    ignition: IgnitionListings
    queue: EventQueue
    state: PollStateStore
    lease: RunLease
    rules: PollRules
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Whether this run finished any listing (a run refused before that is a skipped run).
    _listed: bool = field(default=False, init=False)

    def run(self) -> PollResult:
        if not self.lease.try_acquire():
            logger.info("poll skipped: another run holds the lease")
            return PollResult("skipped", reason="lease")
        try:
            return self._run()
        finally:
            self.lease.release()

    def _run(self) -> PollResult:
        started = self.now()
        run_id = uuid.uuid4().hex
        state = self.state.load() or PollState()
        terminal = state.runs % self.rules.terminal_every_runs == 0
        result = PollResult("complete", terminal_read=terminal)
        kinds: tuple[PassKind, ...] = ("default", "terminal") if terminal else ("default",)
        self._listed = False
        try:
            for resource, record_type in RESOURCES:
                for kind in kinds:
                    self._read(state, resource, record_type, kind, started, run_id, result)
        except _BudgetSpent:
            result.status = "partial"
        except LimitWait as exc:
            # The request budget keeps a reserve the poller may not spend (or Ignition said 429):
            # the poller gives way, and its next scheduled run reads from the same cursor.
            result.reason, result.retry_after = "budget", _seconds(exc)
            if result.seen == 0 and not self._listed:
                # Nothing was read: a skipped run, not counted towards the terminal-pass cadence.
                result.status = "skipped"
                logger.info("poll skipped: Ignition request budget", extra=result.response())
                return result
            result.status = "partial"
        finally:
            # Saved even when a read fails half-way: what was queued is recorded, so the next run
            # resumes after it instead of queueing it again. A skipped run leaves it as it was.
            if result.status != "skipped":
                state.runs += 1
                state.last_run_at = started
                state.last_queued = result.queued
                self.state.save(state)
        logger.info("poll run", extra=result.response())
        return result

    def _listing(
        self, resource: str, kind: PassKind, updated_from: datetime
    ) -> Iterator[IgnitionClient | IgnitionInvoice | IgnitionPayment]:
        reader: Callable[..., Iterator[Any]] = {
            "clients": self.ignition.iter_clients,
            "invoices": self.ignition.iter_invoices,
            "payments": self.ignition.iter_payments,
        }[resource]
        records: Iterator[IgnitionClient | IgnitionInvoice | IgnitionPayment] = reader(
            updated_from, passes=kind
        )
        return records

    def _read(
        self,
        state: PollState,
        resource: str,
        record_type: RecordType,
        kind: PassKind,
        started: datetime,
        run_id: str,
        result: PollResult,
    ) -> None:
        """One listing from its cursor; the cursor is moved past what was queued even when the
        listing fails or the run's record budget is spent part-way."""
        key = f"{resource}#{kind}"
        cursor = state.cursors.get(key) or Cursor()
        overlap = timedelta(seconds=self.rules.overlap_seconds)
        if cursor.since is None:
            since = started - timedelta(minutes=self.rules.first_run_lookback_minutes)
        else:
            since = cursor.since
        queued = dict(cursor.queued)
        newest = cursor.since
        try:
            for record in self._listing(resource, kind, since - overlap):
                result.seen += 1
                version = version_of(record)
                if queued.get(record.slug) is not None and version <= queued[record.slug]:
                    result.already_queued += 1
                    continue
                if result.queued >= self.rules.max_records_per_run:
                    raise _BudgetSpent
                self.queue.send(
                    poll_event(record_type, record, received_at=self.now(), correlation_id=run_id)
                )
                result.queued += 1
                queued[record.slug] = version
                newest = version if newest is None or version > newest else newest
            self._listed = True
        finally:
            floor = (newest or since) - overlap
            state.cursors[key] = Cursor(
                since=newest if newest is not None else since,
                queued={slug: v for slug, v in queued.items() if v >= floor},
            )
