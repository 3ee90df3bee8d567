"""Use case: a marked Xero invoice -> exactly one Ignition invoice draft; and the round trip's link.

The sync worker runs :meth:`XeroToIgnition.handle` for each Xero INVOICE event the webhook queued.
The order of operations is what makes a redelivery, a crash or a RATE_LIMITED answer harmless:

1. an invoice this product wrote (mapped, or carrying our key) is never a trigger: no Xero call;
2. read the invoice; not marked, not a DRAFT or no longer one: nothing to do;
3. its draft record already says ``drafted``: nothing to do (the history note once more if missing);
4. the contact's Ignition client (the mappings, by Xero ContactID) and the draft to the cent, or the
   reason it cannot be exact, recorded and parked in the DLQ;
5. look for a draft carrying the reference (a crash after the call, or a call Ignition answered
   after our timeout, left one);
6. none found, and an earlier call may have made one (its intent is recorded, its answer is not):
   never a second call. ``list_invoices`` may leave unfinished drafts out, so the lookup proves
   nothing: the event is parked as ``draft_unconfirmed`` with what the bookkeeper checks in
   Ignition, until the draft is finished (the round trip links it) or a replay with
   ``--create-anew`` (the event's ``force``) says to make it again;
7. otherwise record the intent (conditional write) just BEFORE calling Ignition, and create it (not
   idempotent); an answer that made nothing (RATE_LIMITED, a refusal) puts the record back to
   ``held``, so the retry creates it without a question;
8. record ``drafted`` with the draft's id and link, then the history note on the Xero invoice.

:class:`RoundTrip` is the invoice sync's hook: the finished Ignition invoice carries the draft's
reference, whose marker finds the Xero invoice it came from, which the sync then updates in place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from shared.audit import record_outcome
from shared.config import RecordType, XeroToIgnitionRules
from shared.errors import PermanentSyncError
from shared.ignition.drafts import (
    CreatedDraft,
    IgnitionDraftsPort,
    IgnitionMcpAuthError,
    IgnitionMcpRateLimited,
    IgnitionMcpRefused,
    IgnitionService,
)
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice
from shared.models.xero import Invoice, TaxRate
from shared.money import format_money
from shared.outcome import SyncOutcome
from shared.reconcile.compare import invoice_key
from shared.store.mappings import MappingStore
from shared.xero_to_ignition.drafting import DraftPlan, DraftRefused, build_draft
from shared.xero_to_ignition.records import UNANSWERED, DraftRecord, DraftRecordStore
from shared.xero_to_ignition.trigger import is_marked, marker_in, marker_of

logger = logging.getLogger(__name__)

# Audit entries of this direction are kept under "xero:<InvoiceID>", apart from Ignition slugs.
AUDIT_PREFIX = "xero:"
# Answers to create_invoice_draft that prove no draft was made: Ignition refused the request (its
# rate limit, its tool or schema, the user's token) or our own budget never sent it.
NOTHING_MADE = (IgnitionMcpRateLimited, IgnitionMcpRefused, IgnitionMcpAuthError)
REPLAY_ANEW = "python -m cli replay dlq --category draft_unconfirmed --create-anew"


class DraftUnconfirmed(PermanentSyncError):
    """An earlier create_invoice_draft may have made this invoice's draft, and Ignition's lookup
    does not show it: a person checks Ignition rather than the sync risking a second draft."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, category="draft_unconfirmed")


def unconfirmed_reason(record: DraftRecord) -> str:
    """What the bookkeeper reads (dead letter, record, report): what to look for, and both ways out."""
    number = record.xero_number or "this Xero invoice"
    asked = record.intent_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"a draft may already exist in Ignition for {number}: the request that makes it was sent at "
        f"{asked} and its answer was lost, and Ignition's invoice list does not show it (it may leave "
        "unfinished drafts out), so no second one is made. Check Ignition's invoice drafts for the "
        f'reference "{record.reference}": if it is there, finish it (it comes back to this Xero invoice '
        "by itself) or delete it; if there is none, or once it is deleted, ask your IT contact to "
        f"replay it with {REPLAY_ANEW}"
    )


class XeroInvoiceReader(Protocol):
    def get_invoice(self, invoice_id_or_number: str, *, unitdp4: bool = False) -> Invoice | None: ...

    def tax_rates(self) -> list[TaxRate]: ...

    def add_history(self, resource: Literal["Invoices"], record_id: str, details: str) -> None: ...


def ignition_link(app_path: str, app_url: str) -> str:
    """The draft's link as a person opens it (``app_path`` is relative to Ignition's app)."""
    return app_path if "://" in app_path else f"{app_url.rstrip('/')}/{app_path.lstrip('/')}"


@dataclass(frozen=True, kw_only=True)
class XeroToIgnition:
    xero: XeroInvoiceReader
    drafts: IgnitionDraftsPort
    mappings: MappingStore
    records: DraftRecordStore
    rules: XeroToIgnitionRules
    invoice_slug_prefix: str = "inv_"
    app_url: str = "https://app.ignitionapp.com"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def handle(self, event: SyncEvent) -> SyncOutcome:
        invoice_id = event.record_id
        owner = self.mappings.owner_of(RecordType.INVOICE, invoice_id)
        if owner is not None:
            return self._skip(event, "skipped_state", f"written by this product (Ignition invoice {owner})")
        invoice = self.xero.get_invoice(invoice_id, unitdp4=True)
        if invoice is None or invoice.InvoiceID is None:
            return self._skip(event, "skipped_missing", "Xero has no such invoice")
        ours = invoice_key(invoice.Reference, self.invoice_slug_prefix)
        if ours is not None:
            return self._skip(event, "skipped_state", f"written by this product (Reference names {ours})")
        verdict = is_marked(invoice, self.rules)
        if not verdict.marked:
            return self._skip(event, "skipped_state", verdict.why)

        marker = marker_of(invoice.InvoiceID)
        record = self.records.get(marker)
        if record is not None and record.xero_invoice_id != invoice.InvoiceID:
            raise PermanentSyncError(
                f"Xero invoices {record.xero_invoice_id} and {invoice.InvoiceID} share the draft marker "
                f"{marker}: create this one's draft in Ignition by hand",
                category="draft_refused",
            )
        if record is not None and record.state in ("drafted", "finalised"):
            record = self._note(invoice, record)
            return self._skip(
                event,
                "skipped_duplicate",
                f"Ignition draft {record.draft_id} was already made",
                record.draft_id,
            )

        plan = self._plan(invoice, record)
        wanted = DraftRecord(
            marker=marker,
            xero_invoice_id=invoice.InvoiceID,
            xero_number=invoice.InvoiceNumber,
            client_slug=plan.request.client_slug,
            reference=plan.request.reference,
            state="intent",
            intent_at=self.now(),
            total=plan.request.expected_total,
            currency=plan.request.currency,
        )
        found = self._find(plan, record)
        if found is not None:
            created, how = found
            base = record if record is not None and record.state in UNANSWERED else wanted
        else:
            if record is not None and record.state in UNANSWERED and not event.force:
                raise self._unconfirmed(record)
            record = base = self.records.put(wanted, previous=record)
            created, how = self._create(plan, record)
        record = self.records.put(
            base.model_copy(
                update={
                    "state": "drafted",
                    "drafted_at": self.now(),
                    "draft_id": created.draft_id,
                    "app_path": created.app_path,
                    "reason": None,
                }
            ),
            previous=record,
        )
        decisions = [verdict.why, how, *plan.notes]
        mismatch = None
        expected = plan.request.expected_total
        if created.total is not None and created.total != expected:
            mismatch = (
                f"total mismatch: Ignition's draft {format_money(created.total, plan.request.currency)}, "
                f"Xero {format_money(expected, plan.request.currency)}"
            )
        self._note(invoice, record)
        return record_outcome(
            self.mappings,
            event,
            SyncOutcome(
                "drafted" if how.startswith("created") else "skipped_duplicate",
                f"{AUDIT_PREFIX}{invoice.InvoiceID}",
                created.draft_id,
                "xero_to_ignition",
                decisions,
                RecordType.INVOICE,
                mismatch,
            ),
            at=self.now(),
        )

    # -- steps ---------------------------------------------------------------------------------

    def _plan(self, invoice: Invoice, record: DraftRecord | None) -> DraftPlan:
        assert invoice.InvoiceID is not None
        try:
            contact_id = invoice.Contact.ContactID if invoice.Contact is not None else None
            client = self.mappings.owner_of(RecordType.CLIENT, contact_id) if contact_id else None
            if client is None:
                raise DraftRefused(
                    f"the invoice's contact {contact_id} is not linked to an Ignition client: sync the "
                    "client from Ignition first (or link it), then edit the Xero invoice again",
                    category="unmapped_contact",
                )
            return build_draft(
                invoice,
                client_slug=client,
                xero_tax_rates=self.xero.tax_rates(),
                ignition_tax_rates=self.drafts.list_tax_rates(),
                services=self._services(),
                rules=self.rules,
            )
        except DraftRefused as refused:
            if record is None or record.state not in UNANSWERED:
                self.records.put(
                    DraftRecord(
                        marker=marker_of(invoice.InvoiceID),
                        xero_invoice_id=invoice.InvoiceID,
                        xero_number=invoice.InvoiceNumber,
                        state="refused",
                        intent_at=record.intent_at if record else self.now(),
                        reason=refused.reason,
                    ),
                    previous=record,
                )
            raise

    def _services(self) -> list[IgnitionService]:
        # Only read when a rule can use them: one MCP call fewer per draft otherwise.
        if not self.rules.services_by_account_code and not self.rules.match_services_by_name:
            return []
        return self.drafts.list_services()

    def _find(self, plan: DraftPlan, record: DraftRecord | None) -> tuple[CreatedDraft, str] | None:
        """The draft Ignition shows carrying this invoice's reference, if any."""
        # The recorded reference first: the invoice's number may have changed since the intent.
        recorded = record.reference if record is not None and record.reference else plan.request.reference
        for reference in dict.fromkeys([recorded, plan.request.reference]):
            for found in self.drafts.find_drafts(reference):
                if found.reference == reference and found.client_slug in (None, plan.request.client_slug):
                    return (
                        CreatedDraft(draft_id=found.draft_id, app_path=found.app_path or "", total=None),
                        f"found Ignition draft {found.draft_id} by its reference: not made again",
                    )
        return None

    def _create(self, plan: DraftPlan, intent: DraftRecord) -> tuple[CreatedDraft, str]:
        """The one call that makes a draft, its intent already recorded."""
        try:
            created = self.drafts.create_invoice_draft(plan.request)
        except NOTHING_MADE as exc:
            # No draft was made: the retry may call again without asking anyone. Best effort: a
            # record left at ``intent`` only makes the retry ask a person.
            try:
                self.records.put(
                    intent.model_copy(update={"state": "held", "reason": f"{type(exc).__name__}: {exc}"}),
                    previous=intent,
                )
            except Exception:  # noqa: BLE001 - the original error is the one to report
                logger.warning("draft record not put back to held", extra={"marker": intent.marker})
            raise
        return created, f"created Ignition draft {created.draft_id} ({plan.request.reference})"

    def _unconfirmed(self, record: DraftRecord) -> DraftUnconfirmed:
        """Park the event: the record says so (the reconciliation reports it) in the same words."""
        reason = unconfirmed_reason(record)
        if (record.state, record.reason) != ("unconfirmed", reason):
            self.records.put(
                record.model_copy(update={"state": "unconfirmed", "reason": reason}), previous=record
            )
        return DraftUnconfirmed(reason)

    def _note(self, invoice: Invoice, record: DraftRecord) -> DraftRecord:
        if record.noted or not self.rules.history_note or invoice.InvoiceID is None:
            return record
        link = ignition_link(record.app_path or "", self.app_url) if record.app_path else "(no link)"
        try:
            self.xero.add_history(
                "Invoices",
                invoice.InvoiceID,
                f"Ignition invoice draft {record.draft_id} made from this invoice for client "
                f"{record.client_slug}: finish it in Ignition ({link}); it comes back here as this invoice",
            )
        except Exception as exc:  # noqa: BLE001 - the draft exists and is recorded: not worth a retry
            # The type only: Xero's messages can quote names.
            logger.warning(
                "history note not written", extra={"xero_id": invoice.InvoiceID, "error": type(exc).__name__}
            )
            return record
        return self.records.put(record.model_copy(update={"noted": True}), previous=record)

    def _skip(self, event: SyncEvent, action: str, why: str, draft_id: str | None = None) -> SyncOutcome:
        assert action in ("skipped_state", "skipped_missing", "skipped_duplicate")
        return record_outcome(
            self.mappings,
            event,
            SyncOutcome(
                action,  # type: ignore[arg-type]
                f"{AUDIT_PREFIX}{event.record_id}",
                draft_id,
                None,
                [why],
                RecordType.INVOICE,
            ),
            at=self.now(),
        )


class RoundTrip:
    """The invoice sync's hook: the Xero invoice a finished Ignition invoice came from, if any."""

    def __init__(self, records: DraftRecordStore, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.records = records
        self.now = now

    def origin(self, invoice: IgnitionInvoice) -> str | None:
        """The Xero InvoiceID to update in place instead of creating one, or None."""
        marker = marker_in(invoice.reference)
        if marker is None:
            return None
        record = self.records.get(marker)
        if record is None or record.state == "refused":
            return None
        if record.ignition_invoice not in (None, invoice.slug):
            # A second Ignition invoice with the same reference (copied by hand): it is its own.
            logger.warning(
                "draft reference already linked",
                extra={"marker": marker, "ignition_invoice": invoice.slug, "linked": record.ignition_invoice},
            )
            return None
        if record.client_slug not in (None, invoice.client.slug):
            logger.warning("draft reference on another client's invoice", extra={"marker": marker})
            return None
        if record.state != "finalised":
            self.records.put(
                record.model_copy(update={"state": "finalised", "ignition_invoice": invoice.slug}),
                previous=record,
            )
        return record.xero_invoice_id
