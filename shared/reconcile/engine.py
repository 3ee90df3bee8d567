"""Use case: one reconciliation run (``full``, ``incremental`` or ``xero_events``).

Full run, in resumable phases (the working set records which are done):

1. the DLQ (what already failed takes precedence over any other finding for that record);
2. Xero contacts, invoices, payments: ``pageSize`` pages, ``summaryOnly``, archived included;
3. Ignition clients, invoices, payments (``limit`` pages), each page's mappings in one batch read;
   Xero is read first so a record the sync writes meanwhile has a fresh Ignition ``updated_at``
   and falls in the in-flight grace period instead of looking like a discrepancy;
4. confirm: mapped Xero ids the listings did not return are fetched by ``IDs=`` before anything
   is reported as gone;
5. compare (SQL joins + the pure rules in ``compare``), heal (re-queue per the configured policy),
   report.

Out of time or call budget at a page boundary: the working set goes to S3, the checkpoint to the
state table, the run returns ``partial``, and the next run resumes where this one stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shared.config import IntegrationConfig, RecordType
from shared.errors import PermanentSyncError
from shared.ignition.reporting import IgnitionRateLimited, IgnitionUnavailable
from shared.matching import choose_contact
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Invoice
from shared.reconcile import report
from shared.reconcile.compare import (
    AllocationRow,
    ClientRow,
    ContactRow,
    InvoiceRow,
    XeroInvoiceRow,
    XeroPaymentRow,
    compare_allocation,
    compare_client,
    compare_invoice,
    invoice_key,
)
from shared.reconcile.model import Discrepancy, Mode, RunCounters, RunResult, StopRun
from shared.reconcile.ports import (
    Artifacts,
    DeadLetterSource,
    DraftCheck,
    EventQueue,
    IgnitionReader,
    MappingLookup,
    Notifier,
    ReportLinks,
    RunStore,
    XeroReader,
)
from shared.reconcile.workset import WorkSet
from shared.store.mappings import RecordMapping
from shared.xero.client import MAX_IDS_PER_CALL
from shared.xero.errors import XeroRateLimited, XeroUnavailable

logger = logging.getLogger(__name__)
_HEAL_ORDER = {"client": 0, "invoice": 1, "payment": 2}

T = TypeVar("T")


class _Slugged(Protocol):
    @property
    def slug(self) -> str: ...


class _RowWithRaw(Protocol):
    raw: str | None


_Record = TypeVar("_Record", bound=_Slugged)
_Row = TypeVar("_Row", bound=_RowWithRaw)
_Ignition = TypeVar("_Ignition")
_Xero = TypeVar("_Xero")
FULL_PHASES = (
    "dead_letters",
    "xero_contacts",
    "xero_invoices",
    "xero_payments",
    "ignition_clients",
    "ignition_invoices",
    "ignition_payments",
    "confirm",
)
# Errors that mean "not now": the run stops cleanly and resumes next time.
_NOT_NOW = (XeroRateLimited, XeroUnavailable, IgnitionRateLimited, IgnitionUnavailable)
_DDB_BATCH = 100
# Xero answers 404 above ~50 IDs a call: one part per call, and the client splits a part further
# when the URL would pass 2,000 characters (payment ids become where clauses: shared.xero.client).
_IDS_PER_CALL = MAX_IDS_PER_CALL


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def new_run_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


@dataclass
class Ports:
    xero: XeroReader
    ignition: IgnitionReader
    mappings: MappingLookup
    queue: EventQueue
    dead_letters: DeadLetterSource
    runs: RunStore
    artifacts: Artifacts
    notifier: Notifier | None = None
    links: ReportLinks | None = None
    # Where Xero -> Ignition is on: marked invoices without a draft, drafts left waiting.
    xero_to_ignition: DraftCheck | None = None


@dataclass(frozen=True)
class Guard:
    """Stops a run at a page boundary before it runs out of Lambda time or call budget."""

    counters: RunCounters
    remaining_seconds: Callable[[], float]
    reserve_seconds: float
    max_xero_calls: int
    max_ignition_requests: int

    def check(self) -> None:
        if self.remaining_seconds() < self.reserve_seconds:
            raise StopRun("time: the Lambda timeout is near")
        if self.counters.xero_calls >= self.max_xero_calls:
            raise StopRun(
                f"budget: {self.counters.xero_calls} Xero calls (limit per run {self.max_xero_calls})"
            )
        if self.counters.ignition_requests >= self.max_ignition_requests:
            raise StopRun(
                f"budget: {self.counters.ignition_requests} Ignition requests "
                f"(limit per run {self.max_ignition_requests})"
            )


class Reconciler:
    def __init__(
        self,
        ports: Ports,
        config: IntegrationConfig,
        *,
        client_name: str,
        counters: RunCounters,
        remaining_seconds: Callable[[], float],
        workdir: Path | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_result: Callable[[RunResult], None] | None = None,
    ) -> None:
        self.p = ports
        self.config = config
        self.rules = config.reconcile
        self.client_name = client_name
        self.counters = counters
        self.guard = Guard(
            counters,
            remaining_seconds=remaining_seconds,
            reserve_seconds=self.rules.reserve_seconds,
            max_xero_calls=self.rules.max_xero_calls_per_run,
            max_ignition_requests=self.rules.max_ignition_requests_per_run,
        )
        self.workdir = workdir or Path(tempfile.gettempdir())
        self.now = now
        self.on_result = on_result
        # Told each phase as it starts (the handler notes it where `reconcile --now` can see it).
        self.on_progress: Callable[[str], None] | None = None

    # -- entry ------------------------------------------------------------------------------------

    def run(self, mode: Mode, *, dry_run: bool = False) -> RunResult:
        started = self.now()
        checkpoint = self.p.runs.load_checkpoint("full") if mode == "full" else None
        run_id = checkpoint["run_id"] if checkpoint else new_run_id(started)
        if checkpoint:
            started = datetime.fromisoformat(checkpoint["started_at"])
        run_dir = self.workdir / f"reconcile-{run_id}"
        run_dir.mkdir(parents=True, exist_ok=True)
        db_path = run_dir / "work.sqlite3"
        resumed = bool(checkpoint and self.p.artifacts.get_file(checkpoint["work_key"], db_path))
        if checkpoint and not resumed:
            logger.warning(
                "checkpoint without its working set; starting the run again", extra={"run_id": run_id}
            )
        ws = WorkSet(db_path)
        logger.info("reconciliation started", extra={"run_id": run_id, "mode": mode, "resumed": resumed})
        stopped: str | None = None
        try:
            if mode == "full":
                self._full(ws, started)
            elif mode == "incremental":
                self._progress("incremental")
                self._incremental(ws, started)
            else:
                self._progress("xero_events")
                self._xero_events(ws, started)
        except StopRun as stop:
            stopped = stop.reason
        except _NOT_NOW as exc:
            stopped = f"{type(exc).__name__}: {exc}"
        if stopped is None:
            self._progress("heal")
            self._heal(ws, run_id, dry_run)
        self._progress("report")
        try:
            return self._finish(ws, run_id, mode, started, stopped, dry_run)
        finally:
            ws.close()
            for leftover in run_dir.iterdir():  # /tmp is shared by warm invocations: keep it clean
                leftover.unlink()
            run_dir.rmdir()

    # -- full ---------------------------------------------------------------------------------------

    def _full(self, ws: WorkSet, started: datetime) -> None:
        done: list[str] = ws.meta("phases_done", [])
        steps: dict[str, Callable[[WorkSet], None]] = {
            "dead_letters": self._load_dead_letters,
            "xero_contacts": self._load_xero_contacts,
            "xero_invoices": self._load_xero_invoices,
            "xero_payments": self._load_xero_payments,
            "ignition_clients": lambda w: self._load_clients(w, None),
            "ignition_invoices": lambda w: self._load_invoices(w, None),
            "ignition_payments": lambda w: self._load_payments(w, None),
            "confirm": self._confirm,
        }
        for phase in FULL_PHASES:
            if phase in done:
                continue
            self._progress(phase)
            steps[phase](ws)
            done.append(phase)
            ws.set_meta("phases_done", done)
        self._progress("compare")
        self._compare(ws, started)
        if self.p.xero_to_ignition is not None:
            for found in self.p.xero_to_ignition.findings(started):
                self._add(ws, found)

    def _progress(self, phase: str) -> None:
        if self.on_progress is not None:
            self.on_progress(phase)

    def _load_dead_letters(self, ws: WorkSet) -> None:
        for letter in self.p.dead_letters.read(self.rules.max_dead_letters_read):
            ws.add_dead_letter(letter.record_type, letter.record_id, letter.category, letter.reason)

    def _pages(self, ws: WorkSet, name: str, fetch: Callable[[int], Sequence[T]]) -> Iterator[Sequence[T]]:
        """Xero pages from the checkpointed page on; the page number is saved after each."""
        size = self.rules.xero_page_size
        page = int(ws.meta(f"{name}_page", 1))
        while True:
            self.guard.check()
            batch = fetch(page)
            yield batch
            page += 1
            ws.set_meta(f"{name}_page", page)
            if len(batch) < size:
                return

    def _load_xero_contacts(self, ws: WorkSet) -> None:
        size = self.rules.xero_page_size
        for batch in self._pages(
            ws,
            "xero_contacts",
            lambda page: self.p.xero.find_contacts(
                page=page, page_size=size, include_archived=True, summary_only=True
            ),
        ):
            ws.add_contacts(ContactRow.of(c) for c in batch)
            self.counters.saw("xero_contacts", len(batch))

    def _load_xero_invoices(self, ws: WorkSet) -> None:
        size, prefix = self.rules.xero_page_size, self.rules.invoice_slug_prefix
        for batch in self._pages(
            ws,
            "xero_invoices",
            lambda page: self.p.xero.find_invoices(page=page, page_size=size, summary_only=True, statuses=()),
        ):
            ws.add_xero_invoices(XeroInvoiceRow.of(i, prefix) for i in batch if i.Type in (None, "ACCREC"))
            self.counters.saw("xero_invoices", len(batch))

    def _load_xero_payments(self, ws: WorkSet) -> None:
        size = self.rules.xero_page_size
        rules, prefix = self.config.payments, self.rules.payment_slug_prefix
        for batch in self._pages(
            ws, "xero_payments", lambda page: self.p.xero.find_payments(page=page, page_size=size)
        ):
            ws.add_xero_payments(XeroPaymentRow.of(p, rules, prefix) for p in batch)
            self.counters.saw("xero_payments", len(batch))

    def _streamed(
        self,
        ws: WorkSet,
        name: str,
        since: datetime | None,
        records: Callable[[datetime | None], Iterator[T]],
    ) -> Iterator[list[T]]:
        """Ignition records in batches; resumes from the last batch's ``updated_at`` (the Reporting
        API lists oldest change first; a record seen twice is an upsert)."""
        resume = ws.meta(f"{name}_from")
        start = datetime.fromisoformat(resume) if resume else since
        for batch in chunks(records(start), _DDB_BATCH):
            yield batch
            last = max(getattr(r, "updated_at", None) or r.created_at for r in batch)  # type: ignore[attr-defined]
            ws.set_meta(f"{name}_from", last.isoformat())
            self.guard.check()

    def _keep_raw(self, record: Any, mapping: Any) -> str | None:
        """The record itself, kept only where a re-queue may need it (unlinked, or newer than what
        the sync wrote), so the sync need not read it from Ignition again."""
        updated = getattr(record, "version_at", None) or record.updated_at
        if mapping is None or updated > mapping.ignition_updated_at:
            raw: str = record.model_dump_json()
            return raw
        return None

    def _load_clients(self, ws: WorkSet, since: datetime | None) -> None:
        clients = self.p.ignition.iter_clients
        self._load_mapped(
            ws, since, RecordType.CLIENT, "ignition_clients", clients, ClientRow.of, ws.add_clients
        )

    def _load_invoices(self, ws: WorkSet, since: datetime | None) -> None:
        rules, unit = self.config.invoices, self.config.ignition.amount_unit
        self._load_mapped(
            ws,
            since,
            RecordType.INVOICE,
            "ignition_invoices",
            self.p.ignition.iter_invoices,
            lambda invoice, mapping: InvoiceRow.of(invoice, mapping, rules, unit),
            ws.add_invoices,
        )

    def _load_mapped(
        self,
        ws: WorkSet,
        since: datetime | None,
        record_type: RecordType,
        name: str,
        records: Callable[[datetime | None], Iterator[_Record]],
        row_of: Callable[[_Record, RecordMapping | None], _Row],
        add: Callable[[list[_Row]], None],
    ) -> None:
        """Ignition clients or invoices, each batch joined to its mappings in one batch read."""
        self.guard.check()
        for batch in self._streamed(ws, name, since, records):
            found = self.p.mappings.forward(record_type, [r.slug for r in batch])
            self.counters.dynamodb_batches += 1
            rows = []
            for record in batch:
                row = row_of(record, found.get(record.slug))
                row.raw = self._keep_raw(record, found.get(record.slug))
                rows.append(row)
            add(rows)
            self.counters.saw(name, len(batch))

    def _load_payments(self, ws: WorkSet, since: datetime | None) -> None:
        self.guard.check()
        unit = self.config.ignition.amount_unit
        batches: Iterator[list[IgnitionPayment]] = self._streamed(
            ws, "ignition_payments", since, self.p.ignition.iter_payments
        )
        for batch in batches:
            ids = [f"{p.slug}:{t.slug}" for p in batch for t in p.invoices]
            found = {}
            for part in chunks(ids, _DDB_BATCH):
                found.update(self.p.mappings.forward(RecordType.PAYMENT, part))
                self.counters.dynamodb_batches += 1
            rows = []
            for payment in batch:
                allocations = AllocationRow.of_payment(payment, found, unit)
                if any(a.mapping.xero_id is None for a in allocations):
                    raw = payment.model_dump_json()
                    for allocation in allocations:
                        allocation.raw = raw
                rows.extend(allocations)
            ws.add_allocations(rows)
            self.counters.saw("ignition_payments", len(batch))

    def _confirm(self, ws: WorkSet) -> None:
        """Mapped ids the listings did not return (written while the run read, or really gone)."""
        contacts = ws.mapped_but_unseen("client")
        for part in chunks(contacts, _IDS_PER_CALL):
            self.guard.check()
            ws.add_contacts(
                ContactRow.of(c) for c in self.p.xero.find_contacts(ids=part, include_archived=True)
            )
        prefix = self.rules.invoice_slug_prefix
        for part in chunks(ws.mapped_but_unseen("invoice"), _IDS_PER_CALL):
            self.guard.check()
            ws.add_xero_invoices(XeroInvoiceRow.of(i, prefix) for i in self.p.xero.find_invoices(ids=part))
        rules, pay_prefix = self.config.payments, self.rules.payment_slug_prefix
        for part in chunks(ws.mapped_but_unseen("payment"), _IDS_PER_CALL):
            self.guard.check()
            ws.add_xero_payments(
                XeroPaymentRow.of(p, rules, pay_prefix) for p in self.p.xero.find_payments(ids=part)
            )

    # -- compare ------------------------------------------------------------------------------------

    def _compare(self, ws: WorkSet, started: datetime) -> None:
        ws.build_indexes()
        cutoff = (started - timedelta(seconds=self.rules.in_flight_grace_seconds)).isoformat()
        for letter_type, record_id, category, reason in ws.dead_letters():
            ws.add_discrepancy(
                Discrepancy(
                    category="dead_letter",
                    record_type=RecordType(letter_type),
                    ignition_id=record_id,
                    detail=f"{category}: {reason}",
                )
            )
        self._compare_clients(ws, cutoff)
        rules = self.config.payments
        for allocation, payment in ws.allocations():
            if allocation.updated_at >= cutoff or ws.is_dead("payment", allocation.payment_slug):
                continue
            self._add(ws, compare_allocation(allocation, payment, rules))
        with_payment_issues = ws.invoices_with_payment_issues()
        # Not subject to the in-flight grace: the sync's own writes always carry our key.
        outside = self._written_outside(ws)
        for invoice, xero in ws.invoices():
            if invoice.updated_at >= cutoff or ws.is_dead("invoice", invoice.slug):
                continue
            if invoice.slug in outside and invoice.mapping.xero_id is None:
                # Never re-queued as missing: the sync would write the same invoice a second time.
                continue
            found = compare_invoice(
                invoice, xero, self.config.invoices, payments_in_question=invoice.slug in with_payment_issues
            )
            self._add(ws, found)
        for row in ws.orphan_invoices(cutoff):
            detail = f"Xero invoice {row.number or ''} refers to {row.key_slug}, unknown to Ignition"
            ws.add_discrepancy(_orphan(RecordType.INVOICE, row.invoice_id, detail))
        for payment_row in ws.orphan_payments(cutoff):
            detail = (
                f"Xero payment of {payment_row.amount} refers to {payment_row.key_slug}, unknown to Ignition"
            )
            ws.add_discrepancy(_orphan(RecordType.PAYMENT, payment_row.payment_id, detail))

    def _written_outside(self, ws: WorkSet) -> set[str]:
        """Report the Xero invoices that carry an Ignition invoice's number but were not written by
        this product (Ignition's own Xero push, left on); the slugs of those Ignition invoices."""
        slugs: set[str] = set()
        for invoice, xero in ws.written_outside():
            slugs.add(invoice.slug)
            ours = f"; the sync's own copy is {invoice.mapping.xero_id}" if invoice.mapping.xero_id else ""
            self._add(
                ws,
                Discrepancy(
                    category="written_by_ignition",
                    record_type=RecordType.INVOICE,
                    ignition_id=invoice.slug,
                    xero_id=xero.invoice_id,
                    group_id=invoice.client_slug,
                    detail=f"Xero invoice {xero.number} ({xero.status}) has Ignition's number but was not "
                    f"written by this product{ours}",
                ),
            )
        return slugs

    def _compare_clients(self, ws: WorkSet, cutoff: str) -> None:
        prefix = self.config.ignition.client_slug_prefix
        contact_rules = self.config.contacts
        duplicated: set[str] = set()
        for number, ids in ws.duplicate_numbers(prefix):
            duplicated.update(ids)
            ws.add_discrepancy(
                _duplicate(number, ids, f"{len(ids)} active Xero contacts carry ContactNumber {number}")
            )
        for email, ids, slugs in ws.duplicate_emails():
            if set(ids) <= duplicated:
                continue
            duplicated.update(ids)
            detail = (
                f"{len(ids)} active Xero contacts share the e-mail {email}, used by "
                f"{len(slugs)} Ignition client(s): {', '.join(slugs)}"
            )
            ws.add_discrepancy(_duplicate(slugs[0], ids, detail))
        for client, contact in ws.clients():
            if client.updated_at >= cutoff or ws.is_dead("client", client.slug):
                continue
            found = compare_client(client, contact, contact_rules)
            if found is not None and found.category == "missing_in_xero":
                found = self._explain_missing(ws, client, found)
            self._add(ws, found)
        for row in ws.orphan_contacts(prefix, cutoff):
            detail = f"Xero contact {row.name!r} has ContactNumber {row.number}, unknown to Ignition"
            ws.add_discrepancy(_orphan(RecordType.CLIENT, row.contact_id, detail))

    def _explain_missing(self, ws: WorkSet, client: ClientRow, found: Discrepancy) -> Discrepancy:
        """What the sync would do with an unlinked client: link it to a contact typed by hand,
        create one, or stop because several contacts fit (a duplicate for a person to merge)."""
        candidates = [c.as_contact() for c in ws.contact_candidates(client)]
        if not candidates:
            return found
        model = IgnitionClient(
            slug=client.slug,
            name=client.name,
            email=client.email,
            xero_contact_id=client.xero_contact_id,
            external_client_id=client.external_client_id,
            created_at=datetime.fromisoformat(client.updated_at),
            updated_at=datetime.fromisoformat(client.updated_at),
        )
        try:
            match = choose_contact(
                model,
                candidates,
                rules=self.config.contacts,
                slug_prefix=self.config.ignition.client_slug_prefix,
                owner_of=ws.owner_of_contact,
            )
        except PermanentSyncError as exc:
            return _duplicate(client.slug, sorted(str(c.ContactID) for c in candidates), exc.reason)
        if match.contact is None:
            return found
        return found.model_copy(
            update={
                "detail": f"not linked yet; the sync will link it to Xero contact {match.contact.Name!r} "
                f"(matched by {match.method.replace('_', ' ')})",
                "xero_id": match.contact.ContactID,
            }
        )

    @staticmethod
    def _add(ws: WorkSet, found: Discrepancy | None) -> None:
        if found is not None:
            ws.add_discrepancy(found)

    # -- incremental --------------------------------------------------------------------------------

    def _incremental(self, ws: WorkSet, started: datetime) -> None:
        """Catch-up only: Ignition records changed since the last run that the sync has not
        written (no link) or not brought up to date (newer than the link). No Xero reads."""
        checkpoint = self.p.runs.load_checkpoint("incremental") or {}
        watermark = checkpoint.get("watermark")
        since = datetime.fromisoformat(watermark) if watermark else started - timedelta(days=1)
        since -= timedelta(minutes=self.rules.overlap_minutes)
        self._load_dead_letters(ws)
        self._load_clients(ws, since)
        self._load_invoices(ws, since)
        self._load_payments(ws, since)
        ws.build_indexes()
        cutoff = (started - timedelta(seconds=self.rules.in_flight_grace_seconds)).isoformat()
        for client, _ in ws.clients():
            if client.updated_at < cutoff and not ws.is_dead("client", client.slug):
                self._add(ws, _catch_up(compare_client(client, None, self.config.contacts)))
        for invoice, _ in ws.invoices():
            if invoice.updated_at < cutoff and not ws.is_dead("invoice", invoice.slug):
                found = compare_invoice(invoice, None, self.config.invoices, payments_in_question=True)
                self._add(ws, _catch_up(found))
        for allocation, _ in ws.allocations():
            if allocation.updated_at < cutoff and not ws.is_dead("payment", allocation.payment_slug):
                self._add(ws, _catch_up(compare_allocation(allocation, None, self.config.payments)))
        self.p.runs.save_checkpoint("incremental", {"watermark": cutoff})

    # -- xero events --------------------------------------------------------------------------------

    def _xero_events(self, ws: WorkSet, started: datetime) -> None:
        """Records a person changed in Xero (Xero's webhooks): each checked against Ignition and the
        mapping now, instead of waiting for the nightly run."""
        budget = self.rules.xero_events_per_run
        for category, record_type in (("CONTACT", RecordType.CLIENT), ("INVOICE", RecordType.INVOICE)):
            events = self.p.runs.xero_events(category, budget)
            for part in chunks([e.resource_id for e in events], _IDS_PER_CALL):
                self.guard.check()
                done = self._check_xero_records(ws, record_type, part, budget)
                budget -= len(done)
                self.p.runs.delete_xero_events(category, done)
                if len(done) < len(part):
                    return

    def _check_xero_records(
        self, ws: WorkSet, record_type: RecordType, ids: list[str], budget: int
    ) -> list[str]:
        if record_type == RecordType.CLIENT:
            contacts = self.p.xero.find_contacts(ids=ids, include_archived=True)
            return self._check_changed(
                ws,
                record_type,
                ids,
                budget,
                {str(c.ContactID): c for c in contacts},
                self._contact_slug,
                self.p.ignition.get_client,
                self._compare_changed_contact,
            )
        prefix = self.rules.invoice_slug_prefix
        return self._check_changed(
            ws,
            record_type,
            ids,
            budget,
            {str(i.InvoiceID): i for i in self.p.xero.find_invoices(ids=ids)},
            lambda xero_invoice: invoice_key(xero_invoice.Reference, prefix),
            self.p.ignition.get_invoice,
            self._compare_changed_invoice,
        )

    def _check_changed(
        self,
        ws: WorkSet,
        record_type: RecordType,
        ids: list[str],
        budget: int,
        found: dict[str, _Xero],
        slug_of: Callable[[_Xero], str | None],
        fetch: Callable[[str], _Ignition | None],
        compare: Callable[[_Ignition, RecordMapping | None, _Xero | None], Discrepancy | None],
    ) -> list[str]:
        """Each Xero record among ``ids`` (``found`` by id) checked against the Ignition record it is
        mapped to, or whose key it carries, at most ``budget`` Ignition reads; the ids done."""
        owners = self.p.mappings.reverse(record_type, ids)
        done: list[str] = []
        for xero_id in ids:
            xero_record = found.get(xero_id)
            slug = owners.get(xero_id) or (slug_of(xero_record) if xero_record else None)
            if slug is not None:
                if len(done) >= budget:
                    break
                record = fetch(slug)
                self.counters.saw("ignition_lookups")
                if record is None:
                    detail = f"changed in Xero; refers to {slug}, unknown to Ignition"
                    self._add(ws, _orphan(record_type, xero_id, detail))
                else:
                    mapping = self.p.mappings.forward(record_type, [slug]).get(slug)
                    self._add(ws, compare(record, mapping, xero_record))
            done.append(xero_id)
        return done

    def _contact_slug(self, contact: Contact) -> str | None:
        number = contact.ContactNumber
        return number if number and number.startswith(self.config.ignition.client_slug_prefix) else None

    def _compare_changed_contact(
        self, client: IgnitionClient, mapping: RecordMapping | None, contact: Contact | None
    ) -> Discrepancy | None:
        row = ClientRow.of(client, mapping)
        return compare_client(row, ContactRow.of(contact) if contact else None, self.config.contacts)

    def _compare_changed_invoice(
        self, invoice: IgnitionInvoice, mapping: RecordMapping | None, xero_invoice: Invoice | None
    ) -> Discrepancy | None:
        row = InvoiceRow.of(invoice, mapping, self.config.invoices, self.config.ignition.amount_unit)
        xero_row = XeroInvoiceRow.of(xero_invoice, self.rules.invoice_slug_prefix) if xero_invoice else None
        # Payments are not re-read here: an amount paid that differs waits for the full run.
        return compare_invoice(row, xero_row, self.config.invoices, payments_in_question=True)

    # -- heal, report -------------------------------------------------------------------------------

    def _heal(self, ws: WorkSet, run_id: str, dry_run: bool) -> None:
        sent: set[tuple[str, str]] = set()
        requeued = 0
        # Clients, then invoices, then payments: one client's events share a FIFO group, so the
        # sync brings an invoice up to date before a payment makes it PAID (and unchangeable).
        for item in sorted(ws.discrepancies(), key=lambda d: _HEAL_ORDER.get(str(d.record_type), 3)):
            if self.rules.action_for(item.category) != "requeue" or item.ignition_id is None:
                continue
            record_type = str(item.record_type)
            record_id = item.ignition_id.split(":", 1)[0] if record_type == "payment" else item.ignition_id
            if (record_type, record_id) in sent:
                action = "requeued"
            elif dry_run:
                action = "dry_run"
            elif requeued >= self.rules.max_requeue_per_run:
                action = "deferred"
            else:
                self.p.queue.send(self._event(run_id, item, record_id, ws.raw_record(record_type, record_id)))
                sent.add((record_type, record_id))
                requeued += 1
                action = "requeued"
            ws.update_discrepancy(item.model_copy(update={"action": action}))
        self.counters.saw("requeued", requeued)

    def _event(self, run_id: str, item: Discrepancy, record_id: str, raw: str | None) -> SyncEvent:
        now = self.now()
        record = None if item.force or raw is None else json.loads(raw)
        digest_source = raw if record is not None and raw else f"{run_id}:{record_id}:{item.category}"
        return SyncEvent(
            event_id=f"reconcile:{run_id}:{record_id}"[:128],
            event_type=f"{item.record_type}.reconcile",
            record_type=item.record_type,
            record_id=record_id,
            group_id=item.group_id or record_id,
            occurred_at=now,
            received_at=now,
            source="reconcile",
            record=record,
            payload_sha256=hashlib.sha256(digest_source.encode()).hexdigest(),
            correlation_id=run_id,
            force=item.force,
        )

    def _finish(
        self, ws: WorkSet, run_id: str, mode: Mode, started: datetime, stopped: str | None, dry_run: bool
    ) -> RunResult:
        summary = {} if stopped else ws.counts()
        actions = ws.action_counts() if not stopped else {}
        finished = self.now()
        day = started.strftime("%Y/%m/%d")
        prefix = f"reports/{day}/{run_id}"
        result = RunResult(
            run_id=run_id,
            mode=mode,
            status="partial" if stopped else "complete",
            dry_run=dry_run,
            started_at=started.isoformat(),
            finished_at=finished.isoformat(),
            summary=summary,
            healed=actions.get("requeued", 0),
            needs_person=actions.get("reported", 0),
            report={kind: f"{prefix}/report.{kind}" for kind in ("json", "csv", "html")},
            stopped_because=stopped,
            phases_done=ws.meta("phases_done", []),
            counters={
                "xero_calls": self.counters.xero_calls,
                "ignition_requests": self.counters.ignition_requests,
                "dynamodb_batches": self.counters.dynamodb_batches,
                "records": dict(self.counters.records),
            },
        )
        paths = report.write_all(ws.path.parent, result, ws.iter_discrepancies, self.rules, self.client_name)
        types = {
            "json": "application/json",
            "csv": "text/csv; charset=utf-8",
            "html": "text/html; charset=utf-8",
        }
        for kind, path in paths.items():
            self.p.artifacts.put_file(result.report[kind], path, types[kind])
        work_key = f"reconcile/work/{run_id}.sqlite3"
        if stopped and mode == "full":
            ws.close()  # flushed to the file before it is uploaded
            self.p.artifacts.put_file(work_key, ws.path, "application/vnd.sqlite3")
            self.p.runs.save_checkpoint(
                "full", {"run_id": run_id, "started_at": started.isoformat(), "work_key": work_key}
            )
        elif mode == "full":
            self.p.runs.clear_checkpoint("full")
            self.p.artifacts.delete(work_key)
        self.p.runs.save_latest(result.model_dump(mode="json"))
        self._notify(result)
        if self.on_result is not None:
            self.on_result(result)
        logger.info(
            "reconciliation finished",
            extra={
                "run_id": run_id,
                "mode": mode,
                "status": result.status,
                "summary": summary,
                "healed": result.healed,
                "needs_person": result.needs_person,
                "stopped_because": stopped,
                "xero_calls": self.counters.xero_calls,
                "ignition_requests": self.counters.ignition_requests,
            },
        )
        return result

    def _notify(self, result: RunResult) -> None:
        if self.p.notifier is None or self.rules.notify == "never":
            return
        if self.rules.notify == "when_needed" and not result.needs_person and result.status == "complete":
            return
        lines = [
            f"Reconciliation {result.run_id} ({result.mode}) for {self.client_name}: {result.status}.",
            f"{result.needs_person} item(s) need a person; {result.healed} re-queued for the sync.",
        ]
        if result.stopped_because:
            lines.append(f"Stopped early: {result.stopped_because}. The next run resumes.")
        lines += [f"  {category}: {count}" for category, count in sorted(result.summary.items())]
        hours = self.rules.report_link_hours
        if self.p.links is not None:
            link = self.p.links.link(result.report["html"], hours * 3600)
            lines += [
                "",
                f"Open the report (no AWS login needed; the link works at most {hours} hours, often only "
                "a few: it ends with the reconciliation's temporary AWS credentials):",
                link,
                "",
                "Link expired? Your IT contact gets a fresh one with: python -m cli report --latest",
            ]
        lines.append(f"Stored as {result.report['html']} (also .csv, .json) in the archive bucket.")
        subject = f"Ignition-Xero reconciliation: {result.needs_person} need attention ({self.client_name})"
        self.p.notifier.publish(subject[:100], "\n".join(lines))


def _orphan(record_type: RecordType, xero_id: str | None, detail: str) -> Discrepancy:
    """A Xero record that refers to an Ignition record Ignition does not know."""
    return Discrepancy(category="orphan_in_xero", record_type=record_type, xero_id=xero_id, detail=detail)


def _duplicate(ignition_id: str, xero_ids: list[str], detail: str) -> Discrepancy:
    """Several Xero contacts fit one Ignition client: a person merges them."""
    return Discrepancy(
        category="duplicate_in_xero",
        record_type=RecordType.CLIENT,
        ignition_id=ignition_id,
        other_xero_ids=xero_ids,
        detail=detail,
    )


def _catch_up(found: Discrepancy | None) -> Discrepancy | None:
    """Incremental runs read no Xero: only what the sync has not written or not brought up to date."""
    if found is None or found.category not in ("missing_in_xero", "not_applied"):
        return None
    if found.category == "missing_in_xero":
        return found.model_copy(update={"detail": "changed in Ignition, not linked to Xero yet"})
    return found
