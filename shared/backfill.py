"""Use case: the first-time sync of a firm that already has records in Ignition and in Xero.

Every Ignition client, invoice and payment is matched against what Xero already holds, with the
same rules as the live sync (``shared.matching.choose_contact``, ``shared.billing.plan_invoice`` and
``allocate_payment``), and what is missing is written in batches. The cost is a few reads plus
one call per 50 writes, instead of two calls per record:

1. read every Ignition record of the phase (Reporting API, 500 a page) and the stored mappings
   (DynamoDB BatchGetItem); mapped records are done already;
2. read every Xero record of the phase once (``pageSize=1000``) and index it (contacts by
   ContactNumber, lower-cased e-mail, case-folded name and ContactID; invoices by InvoiceNumber and
   Reference; payments by Reference and invoice);
3. decide in memory per record: link to an existing Xero record, create one, skip or fail (with the
   reason; the backfill goes on);
4. write creates and updates 50 per call (``summarizeErrors=false``), then the mappings, each in
   its conditional transaction, and a checkpoint.

Every Xero call goes through the organisation's shared call budget (``DynamoCallBudget``), so a
backfill and the live sync never together exceed Xero's limits. When today's budget runs out the
run pauses with a checkpoint; running it again resumes. Interrupted anywhere, a rerun is harmless:
a record written to Xero but not yet mapped is found again by its external key (ContactNumber =
Ignition slug, InvoiceNumber/Reference, payment Reference) and linked, not written twice.

History notes (one call per record) are not written by the backfill; the audit trail in DynamoDB
records every decision.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from shared.billing import allocate_payment, payment_reference, plan_invoice, xero_payment
from shared.config import IntegrationConfig, RecordType
from shared.errors import PermanentSyncError
from shared.invoices import InvoiceSync, currency_reason, locked_lock_kind, period_locked_reason
from shared.mapping import client_to_contact
from shared.matching import choose_contact, disambiguated_client_name
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import Contact, Currency, Invoice, Organisation, Payment, TaxRate
from shared.payments import allocation_id
from shared.store.budget_usage import BudgetUsage
from shared.store.checkpoints import PHASES, Checkpoint, Phase, PhaseCounts
from shared.store.mappings import AuditEntry, RecordMapping
from shared.sync import UNIQUE_NAME_MESSAGE
from shared.xero.budget import BudgetExhausted
from shared.xero.client import MAX_BATCH_SIZE
from shared.xero.errors import XeroRateLimited, XeroUnavailable
from shared.xero.rules import (
    OrganisationTaxTypes,
    XeroCurrencyNotEnabled,
    XeroDuplicateNumber,
    XeroPeriodLocked,
    refusal,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
CONTACT_PAGE_SIZE = 1_000
# The Xero id a dry run gives a record it would create (Xero assigns the real one on the write).
PLANNED_ID_PREFIX = "planned:"
# How often one batch is retried after a transient Xero failure before the run pauses.
MAX_BATCH_ATTEMPTS = 6


# --- ports --------------------------------------------------------------------------------------


class XeroPort(Protocol):
    def iter_contacts(
        self, where: str | None = None, *, page_size: int = 100, include_archived: bool = False
    ) -> Iterator[Contact]: ...

    def save_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]: ...

    def iter_invoices(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Invoice]: ...

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]: ...

    def iter_payments(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Payment]: ...

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]: ...

    def tax_rates(self) -> list[TaxRate]: ...

    def organisation(self) -> Organisation: ...

    def currencies(self) -> list[Currency]: ...


class IgnitionPort(Protocol):
    def iter_clients(self) -> Iterator[IgnitionClient]: ...

    def iter_invoices(self) -> Iterator[IgnitionInvoice]: ...

    def iter_payments(self) -> Iterator[IgnitionPayment]: ...


class MappingsPort(Protocol):
    def mappings(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]: ...

    def owners(self, record_type: RecordType, xero_ids: Sequence[str]) -> dict[str, str]: ...

    def save_many(self, mappings: Sequence[RecordMapping]) -> set[str]:
        """Map records that had no mapping (conditional writes); the Ignition ids that were mapped
        meanwhile, or whose Xero record belongs to another record, are returned, not written."""
        ...

    def audit(self, entries: Sequence[AuditEntry]) -> None: ...


class CheckpointPort(Protocol):
    def load(self) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> None: ...


# --- results ------------------------------------------------------------------------------------


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


# --- the engine ---------------------------------------------------------------------------------


@dataclass
class _Write:
    ignition_id: str
    body: Any
    method: str  # created | contact_number | email | name | xero_contact_id
    attempt: int = 0
    client: IgnitionClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _fold(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


class Backfill:
    def __init__(
        self,
        *,
        xero: XeroPort,
        ignition: IgnitionPort,
        mappings: MappingsPort,
        checkpoints: CheckpointPort,
        config: IntegrationConfig,
        xero_calls: Callable[[], int],
        budget: Callable[[], BudgetUsage | None] = lambda: None,
        progress: Callable[[ProgressUpdate], None] = lambda update: None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._xero = xero
        self._ignition = ignition
        self._mappings = mappings
        self._checkpoints = checkpoints
        self._config = config
        self._calls = xero_calls
        self._budget = budget
        self._progress = progress
        self._sleep = sleep
        self._now = now
        self._monotonic = monotonic
        self._failures: list[Failure] = []
        self._planned: dict[str, dict[str, int]] = {}
        # A dry run carries what it would have written into the next phases, so an invoice of a
        # client it would create is planned, not reported as missing: Ignition id -> Xero id (or a
        # placeholder), and the invoices it would create, as Xero would then hold them.
        self._would_map: dict[RecordType, dict[str, str]] = defaultdict(dict)
        self._would_hold: dict[str, Invoice] = {}
        self._options = BackfillOptions()
        self._calls_at_start = 0
        self._started = 0.0
        self._checkpoint: Checkpoint | None = None
        self._phase: Phase = "contacts"
        self._accounted = 0

    # -- entry point ---------------------------------------------------------------------------

    def run(self, options: BackfillOptions | None = None) -> BackfillResult:
        self._options = options or BackfillOptions()
        self._started = self._monotonic()
        self._calls_at_start = self._calls()
        checkpoint = self._start_checkpoint()
        self._checkpoint = checkpoint
        phases = {
            "contacts": self._contacts_phase,
            "invoices": self._invoices_phase,
            "payments": self._payments_phase,
        }
        try:
            for phase in PHASES:
                if phase not in self._options.phases or phase in checkpoint.phases_done:
                    continue
                self._phase = phase
                phases[phase](checkpoint)
                if not self._options.dry_run:
                    checkpoint.phases_done.append(phase)
                    self._save(checkpoint)
            checkpoint.status = "completed" if not self._options.dry_run else checkpoint.status
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
            self._account_calls(checkpoint)
            if not self._options.dry_run:
                self._save(checkpoint)
        return self.result()

    def result(self) -> BackfillResult:
        assert self._checkpoint is not None
        return BackfillResult(
            checkpoint=self._checkpoint,
            failures=list(self._failures),
            planned=self._planned,
            seconds=self._monotonic() - self._started,
            xero_calls_this_pass=self._calls() - self._calls_at_start,
        )

    def _start_checkpoint(self) -> Checkpoint:
        stored = None if self._options.restart else self._checkpoints.load()
        now = self._now()
        if stored is None or stored.status == "completed":
            return Checkpoint(run_id=uuid.uuid4().hex[:12], started_at=now, updated_at=now)
        stored.resumed += 1
        stored.status = "running"
        return stored

    def _account_calls(self, checkpoint: Checkpoint) -> None:
        spent = self._calls() - self._calls_at_start
        checkpoint.xero_calls += spent - self._accounted
        self._accounted = spent

    def _save(self, checkpoint: Checkpoint) -> None:
        if self._options.dry_run:
            return
        self._account_calls(checkpoint)
        self._checkpoints.save(checkpoint)

    # -- contacts --------------------------------------------------------------------------------

    def _contacts_phase(self, checkpoint: Checkpoint) -> None:
        rules = self._config.contacts
        prefix = self._config.ignition.client_slug_prefix
        counts = checkpoint.phase("contacts")
        clients = list(self._ignition.iter_clients())
        mapped = self._mappings.mappings(RecordType.CLIENT, [c.slug for c in clients])
        counts.total = len(clients)
        self._count_mapped(counts, mapped.values())
        pending: list[IgnitionClient] = []
        for client in clients:
            if client.slug in mapped:
                continue
            if client.state in rules.skip_client_states:
                counts.skipped += 1
                continue
            pending.append(client)
        self._report("contacts", counts, 0, len(pending))
        if not pending:
            return

        contacts = list(
            self._read(lambda: self._xero.iter_contacts(page_size=CONTACT_PAGE_SIZE, include_archived=True))
        )
        by_number: dict[str, list[Contact]] = defaultdict(list)
        by_email: dict[str, list[Contact]] = defaultdict(list)
        by_name: dict[str, list[Contact]] = defaultdict(list)
        by_id: dict[str, Contact] = {}
        name_holder: dict[str, str] = {}  # folded name of an ACTIVE contact -> ContactID
        for contact in contacts:
            if not contact.ContactID:
                continue
            by_id[contact.ContactID.lower()] = contact
            if contact.ContactNumber:
                by_number[contact.ContactNumber].append(contact)
            if email := _fold(contact.EmailAddress):
                by_email[email].append(contact)
            if name := _fold(contact.Name):
                by_name[name].append(contact)
                if contact.ContactStatus in (None, "ACTIVE"):
                    name_holder.setdefault(name, contact.ContactID)
        owners = self._mappings.owners(RecordType.CLIENT, [c.ContactID for c in contacts if c.ContactID])
        claimed: dict[str, str] = {}  # decided in this run: ContactID -> slug

        def owner_of(contact_id: str) -> str | None:
            return claimed.get(contact_id) or owners.get(contact_id)

        writes: list[_Write] = []
        for client in pending:
            candidates: dict[str, Contact] = {}
            for found in (
                by_number.get(client.slug, []),
                [by_id[x] for x in [(client.xero_contact_id or "").lower()] if x in by_id],
                by_email.get(_fold(client.email) or "", []) if rules.match_by_email else [],
                by_name.get(_fold(client.name) or "", []),
            ):
                for contact in found:
                    candidates[contact.ContactID or ""] = contact
            try:
                match = choose_contact(
                    client, list(candidates.values()), rules=rules, slug_prefix=prefix, owner_of=owner_of
                )
                chosen = match.contact.ContactID if match.contact else None
                if chosen is not None and chosen in claimed:
                    raise PermanentSyncError(
                        f"Xero contact {chosen} also matches {claimed[chosen]}",
                        category="ambiguous_match",
                    )
                write = self._contact_write(client, match.contact, match.method, match.name_taken_by_other)
            except PermanentSyncError as exc:
                self._fail(RecordType.CLIENT, client.slug, exc.category, str(exc))
                counts.failed += 1
                continue
            if write.body is None:  # linked without a write (update_linked off): mapping only
                if self._options.dry_run:
                    self._would_map[RecordType.CLIENT][client.slug] = write.extra["contact_id"]
                    counts.linked += 1
                else:
                    mapping = self._mapping(
                        RecordType.CLIENT,
                        client.slug,
                        write.extra["contact_id"],
                        write.method,
                        client.created_at,
                        client.updated_at,
                    )
                    self._land([(write, mapping)], counts)
                claimed[write.extra["contact_id"]] = client.slug
                continue
            contact_id = write.body.ContactID
            wanted = _fold(write.body.Name) or ""
            holder = name_holder.get(wanted)
            if holder is not None and holder != contact_id:
                second_name = disambiguated_client_name(client, self._config.contacts)
                write.body = write.body.model_copy(update={"Name": second_name})
            name_holder[_fold(write.body.Name) or ""] = contact_id or f"new:{client.slug}"
            if contact_id:
                claimed[contact_id] = client.slug
            writes.append(write)

        creates = sum(1 for w in writes if w.method == "created")
        self._planned["contacts"] = {"create": creates, "update": len(writes) - creates}
        if self._options.dry_run:
            for write in writes:
                self._would_map[RecordType.CLIENT][write.ignition_id] = (
                    write.body.ContactID or f"{PLANNED_ID_PREFIX}{write.ignition_id}"
                )
            counts.created += creates
            counts.linked += len(writes) - creates
            return
        done = 0
        queue = list(writes)
        while queue:
            batch, queue = queue[:MAX_BATCH_SIZE], queue[MAX_BATCH_SIZE:]
            results = self._write(
                lambda b=batch: self._xero.save_contacts(  # type: ignore[misc]
                    [w.body for w in b],
                    idempotency_key=_key("backfill", *(w.body.model_dump_json() for w in b)),
                ),
            )
            landed: list[tuple[_Write, RecordMapping]] = []
            for write, saved in zip(batch, results, strict=True):
                errors = [e.Message for e in saved.ValidationErrors or []]
                if errors and write.attempt == 0 and any(UNIQUE_NAME_MESSAGE in e for e in errors):
                    assert write.client is not None
                    write.attempt = 1
                    second_name = disambiguated_client_name(write.client, self._config.contacts)
                    write.body = write.body.model_copy(update={"Name": second_name})
                    queue.append(write)
                    continue
                done += 1
                if errors:
                    self._fail(RecordType.CLIENT, write.ignition_id, "xero_validation", "; ".join(errors))
                    counts.failed += 1
                    continue
                assert saved.ContactID is not None and write.client is not None
                landed.append(
                    (
                        write,
                        self._mapping(
                            RecordType.CLIENT,
                            write.ignition_id,
                            saved.ContactID,
                            write.method,
                            write.client.created_at,
                            write.client.updated_at,
                        ),
                    )
                )
            self._land(landed, counts)
            self._save(checkpoint)
            self._report(
                "contacts", counts, done, len(writes), remaining_batches=len(queue) // MAX_BATCH_SIZE
            )

    def _contact_write(
        self, client: IgnitionClient, matched: Contact | None, method: str, name_taken: bool
    ) -> _Write:
        rules = self._config.contacts
        if matched is None:
            name = disambiguated_client_name(client, self._config.contacts) if name_taken else client.name
            body, _ = client_to_contact(client, rules, name=name, contact_number=client.slug)
            return _Write(client.slug, body, "created", client=client)
        assert matched.ContactID is not None
        if matched.ContactStatus == "ARCHIVED" and rules.archived_contact == "fail":
            raise PermanentSyncError(
                f"Xero contact {matched.ContactID} is archived; unarchive it in Xero or set "
                "contacts.archived_contact to 'reactivate', then run the backfill again",
                category="archived_contact",
            )
        if not self._options.update_linked and matched.ContactStatus in (None, "ACTIVE"):
            return _Write(client.slug, None, method, client=client, extra={"contact_id": matched.ContactID})
        number = matched.ContactNumber if matched.ContactNumber else client.slug
        body, _ = client_to_contact(client, rules, name=client.name, contact_number=number)
        update: dict[str, Any] = {"ContactID": matched.ContactID}
        if rules.archived_contact == "reactivate":
            update["ContactStatus"] = "ACTIVE"
        return _Write(client.slug, body.model_copy(update=update), method, client=client)

    # -- invoices --------------------------------------------------------------------------------

    def _invoices_phase(self, checkpoint: Checkpoint) -> None:
        rules = self._config.invoices
        counts = checkpoint.phase("invoices")
        invoices = list(self._ignition.iter_invoices())
        mapped = self._mappings.mappings(RecordType.INVOICE, [i.slug for i in invoices])
        counts.total = len(invoices)
        self._count_mapped(counts, mapped.values())
        pending: list[IgnitionInvoice] = []
        for invoice in invoices:
            if invoice.slug in mapped:
                continue
            state = invoice.state.lower()
            if state in rules.skip_states or state in rules.void_states:
                counts.skipped += 1
                continue
            pending.append(invoice)
        self._report("invoices", counts, 0, len(pending))
        if not pending:
            return
        contacts = self._mappings.mappings(RecordType.CLIENT, sorted({i.client.slug for i in pending}))
        contact_ids = {slug: m.xero_id for slug, m in contacts.items()}
        contact_ids.update(self._would_map[RecordType.CLIENT])
        clients: dict[str, IgnitionClient] = {}
        if rules.owner is not None:
            clients = {c.slug: c for c in self._ignition.iter_clients()}
        existing = [
            inv
            for inv in self._read(lambda: self._xero.iter_invoices(page_size=CONTACT_PAGE_SIZE))
            if inv.Type == "ACCREC" and inv.Status not in ("DELETED", "VOIDED")
        ]
        by_number = {inv.InvoiceNumber: inv for inv in existing if inv.InvoiceNumber}
        by_reference = {inv.Reference: inv for inv in existing if inv.Reference}
        # The organisation's rules, read once: an invoice Xero would refuse for a lock date or a
        # currency is reported with the reason and the backfill goes on, without a write.
        taxes = OrganisationTaxTypes(
            lambda: self._retrying("reading", self._xero.tax_rates),
            rules.tax_types_by_rate,
            rules.untaxed_tax_type,
        )
        organisation = self._retrying("reading", self._xero.organisation)
        enabled = self._retrying("reading", self._xero.currencies)
        enabled_codes = {c.Code.upper() for c in enabled}

        writes: list[_Write] = []
        for invoice in pending:
            contact_id = contact_ids.get(invoice.client.slug)
            if contact_id is None:
                self._fail(
                    RecordType.INVOICE,
                    invoice.slug,
                    "missing_client",
                    f"client {invoice.client.slug} is not in Xero yet (not synced or failed above)",
                )
                counts.failed += 1
                continue
            try:
                plan = plan_invoice(
                    invoice,
                    contact_id=contact_id,
                    client=clients.get(invoice.client.slug),
                    rules=rules,
                    unit=self._config.ignition.amount_unit,
                    taxes=taxes,
                )
                found = (
                    by_number.get(plan.invoice.InvoiceNumber)
                    if plan.invoice.InvoiceNumber
                    else by_reference.get(plan.invoice.Reference or "")
                )
                if found is not None and plan.invoice.InvoiceNumber and found.Reference != invoice.slug:
                    raise PermanentSyncError(
                        f"Xero invoice number {plan.invoice.InvoiceNumber} already belongs to another "
                        f"invoice ({found.InvoiceID}): set invoices.number_field to 'Reference' or renumber",
                        category="duplicate_number",
                    )
            except PermanentSyncError as exc:
                self._fail(RecordType.INVOICE, invoice.slug, exc.category, str(exc))
                counts.failed += 1
                continue
            if found is None:
                what = InvoiceSync.describe(invoice)
                lock = locked_lock_kind(organisation, invoice.date)
                currency = (plan.invoice.CurrencyCode or "").upper()
                problem = None
                if lock is not None:
                    problem = period_locked_reason(what, invoice.date.isoformat(), lock, organisation)
                elif enabled_codes and currency not in enabled_codes:
                    problem = currency_reason(what, currency, enabled)
                if problem is not None:
                    self._fail(RecordType.INVOICE, invoice.slug, problem.category, problem.reason)
                    counts.failed += 1
                    continue
            if found is not None:
                assert found.InvoiceID is not None
                if not self._options.dry_run:
                    self._map(
                        RecordType.INVOICE,
                        invoice.slug,
                        found.InvoiceID,
                        "invoice_number",
                        invoice.created_at,
                        invoice.updated_at,
                        counts,
                    )
                else:
                    self._would_map[RecordType.INVOICE][invoice.slug] = found.InvoiceID
                    counts.linked += 1
                continue
            writes.append(
                _Write(
                    invoice.slug,
                    plan.invoice,
                    "created",
                    extra={"invoice": invoice, "dp4": plan.unitdp4, "total": plan.predicted_total.amount},
                )
            )

        self._planned["invoices"] = {"create": len(writes)}
        if self._options.dry_run:
            for write in writes:
                placeholder = f"{PLANNED_ID_PREFIX}{write.ignition_id}"
                self._would_map[RecordType.INVOICE][write.ignition_id] = placeholder
                self._would_hold[placeholder] = write.body.model_copy(
                    update={"InvoiceID": placeholder, "AmountDue": write.extra["total"]}
                )
            counts.created += len(writes)
            return
        done = 0
        for dp4 in (False, True):
            group = [w for w in writes if w.extra["dp4"] is dp4]
            for start in range(0, len(group), MAX_BATCH_SIZE):
                batch = group[start : start + MAX_BATCH_SIZE]
                results = self._write(
                    lambda b=batch, d=dp4: self._xero.save_invoices(  # type: ignore[misc]
                        [w.body for w in b],
                        idempotency_key=_key("backfill", *(w.body.model_dump_json() for w in b)),
                        unitdp4=d,
                    ),
                )
                landed: list[tuple[_Write, RecordMapping]] = []
                for write, saved in zip(batch, results, strict=True):
                    done += 1
                    errors = [e.Message for e in saved.ValidationErrors or []]
                    if errors:
                        what = InvoiceSync.describe(write.extra["invoice"])
                        category, reason = self._refusal_reason(
                            what, write.body, errors, organisation, enabled
                        )
                        self._fail(RecordType.INVOICE, write.ignition_id, category, reason)
                        counts.failed += 1
                        continue
                    assert saved.InvoiceID is not None
                    invoice = write.extra["invoice"]
                    landed.append(
                        (
                            write,
                            self._mapping(
                                RecordType.INVOICE,
                                write.ignition_id,
                                saved.InvoiceID,
                                "created",
                                invoice.created_at,
                                invoice.updated_at,
                            ),
                        )
                    )
                self._land(landed, counts)
                self._save(checkpoint)
                self._report("invoices", counts, done, len(writes))

    # -- payments --------------------------------------------------------------------------------

    def _payments_phase(self, checkpoint: Checkpoint) -> None:
        rules = self._config.payments
        unit = self._config.ignition.amount_unit
        counts = checkpoint.phase("payments")
        payments = list(self._ignition.iter_payments())
        allocation_ids = [allocation_id(p.slug, t.slug) for p in payments for t in p.invoices]
        mapped = self._mappings.mappings(RecordType.PAYMENT, allocation_ids)
        counts.total = len(allocation_ids)
        self._count_mapped(counts, mapped.values())
        pending: list[IgnitionPayment] = []
        for payment in payments:
            targets = [t for t in payment.invoices if allocation_id(payment.slug, t.slug) not in mapped]
            if not targets:
                continue
            if payment.state.lower() not in rules.applied_states:
                counts.skipped += len(targets)
                continue
            pending.append(payment.model_copy(update={"invoices": targets}))
        self._report("payments", counts, 0, len(pending))
        if not pending:
            return
        invoice_ids = {
            slug: m.xero_id
            for slug, m in self._mappings.mappings(
                RecordType.INVOICE, sorted({t.slug for p in pending for t in p.invoices})
            ).items()
        }
        invoice_ids.update(self._would_map[RecordType.INVOICE])
        xero_invoices = {
            inv.InvoiceID: inv
            for inv in self._read(lambda: self._xero.iter_invoices(page_size=CONTACT_PAGE_SIZE))
            if inv.InvoiceID
        }
        xero_invoices.update(self._would_hold)
        existing: dict[tuple[str, str], Payment] = {}
        for found in self._read(lambda: self._xero.iter_payments(page_size=CONTACT_PAGE_SIZE)):
            if found.Status != "DELETED" and found.Reference and found.Invoice and found.Invoice.InvoiceID:
                existing[(found.Reference, found.Invoice.InvoiceID)] = found
        due: dict[str, Decimal] = {
            xero_id: inv.AmountDue or Decimal(0) for xero_id, inv in xero_invoices.items()
        }

        organisation = self._retrying("reading", self._xero.organisation)
        writes: list[_Write] = []
        for payment in pending:
            reference = payment_reference(payment, rules)
            applicable: dict[str, tuple[str, Decimal]] = {}
            try:
                for target in payment.invoices:
                    known = invoice_ids.get(target.slug)
                    if known is None:
                        raise PermanentSyncError(
                            f"invoice {target.slug} is not in Xero yet (not synced or failed above)",
                            category="missing_invoice",
                        )
                    xero_id = known
                    adopted = existing.get((reference, xero_id))
                    if adopted is not None and adopted.PaymentID:
                        if self._options.dry_run:
                            counts.linked += 1
                        else:
                            self._map(
                                RecordType.PAYMENT,
                                allocation_id(payment.slug, target.slug),
                                adopted.PaymentID,
                                "reference",
                                payment.created_at,
                                payment.version_at,
                                counts,
                            )
                        continue
                    current = xero_invoices.get(xero_id)
                    if current is None or current.Status not in ("AUTHORISED", "PAID"):
                        raise PermanentSyncError(
                            f"Xero invoice {xero_id} ({target.slug}) is "
                            f"{current.Status if current else 'missing'}: Xero takes payments only on "
                            "approved invoices",
                            category="invoice_not_approved",
                        )
                    applicable[target.slug] = (xero_id, due.get(xero_id, Decimal(0)))
                if not applicable:
                    continue
                to_apply = payment.model_copy(
                    update={"invoices": [t for t in payment.invoices if t.slug in applicable]}
                )
                plan = allocate_payment(to_apply, due_by_invoice=applicable, unit=unit)
                paid_on = payment.paid_on or payment.created_at.date()
                lock = locked_lock_kind(organisation, paid_on)
                if lock is not None:
                    raise period_locked_reason(
                        f"payment {payment.slug}", paid_on.isoformat(), lock, organisation
                    )
            except PermanentSyncError as exc:
                self._fail(RecordType.PAYMENT, payment.slug, exc.category, str(exc))
                counts.failed += 1
                continue
            for allocation in plan.allocations:
                due[allocation.xero_invoice_id] = (
                    due.get(allocation.xero_invoice_id, Decimal(0)) - allocation.amount
                )
                writes.append(
                    _Write(
                        allocation_id(payment.slug, allocation.invoice_slug),
                        xero_payment(allocation, payment, rules),
                        "created",
                        extra={"payment": payment},
                    )
                )

        self._planned["payments"] = {"create": len(writes)}
        if self._options.dry_run:
            counts.created += len(writes)
            return
        done = 0
        for start in range(0, len(writes), MAX_BATCH_SIZE):
            batch = writes[start : start + MAX_BATCH_SIZE]
            results = self._write(
                lambda b=batch: self._xero.create_payments(  # type: ignore[misc]
                    [w.body for w in b],
                    idempotency_key=_key("backfill", *(w.body.model_dump_json() for w in b)),
                ),
            )
            landed: list[tuple[_Write, RecordMapping]] = []
            for write, saved in zip(batch, results, strict=True):
                done += 1
                errors = [e.Message for e in saved.ValidationErrors or []]
                if errors:
                    what = f"payment {write.ignition_id}"
                    category, reason = self._refusal_reason(what, write.body, errors, organisation, [])
                    self._fail(RecordType.PAYMENT, write.ignition_id, category, reason)
                    counts.failed += 1
                    continue
                assert saved.PaymentID is not None
                payment = write.extra["payment"]
                landed.append(
                    (
                        write,
                        self._mapping(
                            RecordType.PAYMENT,
                            write.ignition_id,
                            saved.PaymentID,
                            "created",
                            payment.created_at,
                            payment.version_at,
                        ),
                    )
                )
            self._land(landed, counts)
            self._save(checkpoint)
            self._report("payments", counts, done, len(writes))

    # -- shared steps ----------------------------------------------------------------------------

    def _mapping(
        self,
        record_type: RecordType,
        ignition_id: str,
        xero_id: str,
        method: str,
        created_at: datetime | None,
        updated_at: datetime,
    ) -> RecordMapping:
        assert self._checkpoint is not None
        return RecordMapping(
            record_type=record_type,
            ignition_id=ignition_id,
            xero_id=xero_id,
            ignition_created_at=created_at,
            ignition_updated_at=updated_at,
            synced_at=self._now(),
            last_event_id=f"backfill:{self._checkpoint.run_id}",
            match_method=method,
            version=1,
        )

    def _map(
        self,
        record_type: RecordType,
        ignition_id: str,
        xero_id: str,
        method: str,
        created_at: datetime | None,
        updated_at: datetime,
        counts: PhaseCounts,
    ) -> str | None:
        """Map one record linked without a write (found in Xero by its external key)."""
        mapping = self._mapping(record_type, ignition_id, xero_id, method, created_at, updated_at)
        self._land([(_Write(ignition_id, None, method), mapping)], counts)
        return None

    def _count_mapped(self, counts: PhaseCounts, mapped: Iterable[RecordMapping]) -> None:
        """Start a pass from the truth: what this run mapped before (an interrupted pass) counts as
        created or linked by it; anything else was mapped before the run began."""
        assert self._checkpoint is not None
        ours = f"backfill:{self._checkpoint.run_id}"
        counts.failed = counts.skipped = counts.created = counts.linked = counts.already_mapped = 0
        for mapping in mapped:
            if mapping.last_event_id != ours:
                counts.already_mapped += 1
            elif mapping.match_method == "created":
                counts.created += 1
            else:
                counts.linked += 1

    def _land(self, landed: list[tuple[_Write, RecordMapping]], counts: PhaseCounts) -> None:
        """Save the mappings of records now in Xero (conditional), count them, audit them."""
        if not landed:
            return
        conflicts = self._mappings.save_many([mapping for _, mapping in landed])
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
        self._mappings.audit(audits)

    def _audit(self, record_type: RecordType, write: _Write, xero_id: str, action: str) -> AuditEntry:
        assert self._checkpoint is not None
        return AuditEntry(
            record_type=record_type,
            ignition_id=write.ignition_id,
            event_id=f"backfill:{self._checkpoint.run_id}",
            action=action,
            at=self._now(),
            xero_id=xero_id,
            decisions=[
                "backfill: created in Xero"
                if write.method == "created"
                else f"backfill: linked to the existing Xero record (matched by {write.method})"
            ],
        )

    @staticmethod
    def _refusal_reason(
        what: str,
        body: Invoice | Payment,
        errors: list[str],
        organisation: Organisation,
        enabled: list[Currency],
    ) -> tuple[str, str]:
        """The category and the reason a bookkeeper reads for a document Xero refused."""
        refused = refusal(errors)
        dated = body.Date.isoformat() if body.Date else "undated"
        if isinstance(refused, XeroPeriodLocked):
            problem = period_locked_reason(what, dated, refused.lock, organisation)
        elif isinstance(refused, XeroCurrencyNotEnabled):
            currency = refused.currency or (body.CurrencyCode if isinstance(body, Invoice) else None) or "?"
            problem = currency_reason(what, currency, enabled)
        elif isinstance(refused, XeroDuplicateNumber):
            return "duplicate_number", "; ".join(errors)
        else:
            return "xero_validation", "; ".join(errors)
        return problem.category, problem.reason

    def _fail(self, record_type: RecordType, ignition_id: str, category: str, reason: str) -> None:
        logger.warning(
            "backfill record failed",
            extra={"record_type": str(record_type), "ignition_id": ignition_id, "category": category},
        )
        self._failures.append(Failure(record_type, ignition_id, category, reason))

    def _read(self, make: Callable[[], Iterator[T]]) -> list[T]:
        """A full read (all pages), retried from the start after a transient failure."""
        return self._retrying("reading", lambda: list(make()))

    def _write(self, call: Callable[[], list[T]]) -> list[T]:
        if (
            self._options.max_calls is not None
            and self._calls() - self._calls_at_start >= self._options.max_calls
        ):
            raise BackfillPaused(
                f"stopped after {self._options.max_calls} Xero calls (--max-calls); run again to resume"
            )
        return self._retrying("writing", call)

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(1, MAX_BATCH_ATTEMPTS + 1):
            try:
                return call()
            except BudgetExhausted as exc:
                if exc.problem == "budget-day":
                    raise BackfillPaused(
                        "today's Xero call budget is spent; run again after Xero's daily reset (UTC)",
                        exc.retry_after_seconds,
                    ) from exc
                wait = max(exc.retry_after_seconds, 1.0)
            except XeroRateLimited as exc:
                if (exc.problem or "").lower() == "day":
                    raise BackfillPaused(
                        "Xero's daily limit is reached; run again after Xero's daily reset (UTC)",
                        exc.retry_after,
                    ) from exc
                wait = max(exc.retry_after, 1.0)
            except XeroUnavailable as exc:
                if attempt == MAX_BATCH_ATTEMPTS:
                    raise BackfillPaused(f"Xero unavailable while {what}: {exc}") from exc
                wait = min(60.0, 2.0**attempt)
            self._notify_wait(f"waiting {wait:.0f} s for Xero ({what})")
            self._sleep(wait)
        raise BackfillPaused(f"Xero kept refusing while {what}; run again later")

    def _notify_wait(self, message: str) -> None:
        assert self._checkpoint is not None
        self._progress(
            ProgressUpdate(
                self._phase, 0, 0, self._calls() - self._calls_at_start, None, None, waiting=message
            )
        )

    def _report(
        self, phase: Phase, counts: PhaseCounts, done: int, total: int, remaining_batches: int | None = None
    ) -> None:
        left = total - done
        calls_left = (
            remaining_batches
            if remaining_batches is not None
            else (left + MAX_BATCH_SIZE - 1) // MAX_BATCH_SIZE
        )
        usage = self._budget()
        spent = self._calls() - self._calls_at_start
        elapsed = self._monotonic() - self._started
        eta: float | None = None
        if total:
            per_minute = self._config.xero.calls_per_minute
            budget_seconds = max(calls_left - (usage.minute_left if usage else 0), 0) * 60.0 / per_minute
            observed = (elapsed / spent) * calls_left if spent else 0.0
            eta = max(budget_seconds, observed)
            if usage is not None and calls_left > usage.day_left:
                eta = max(eta, usage.day_ends_at - time.time())
        self._progress(ProgressUpdate(phase, done, total, spent, eta, usage.day_left if usage else None))
        del counts
