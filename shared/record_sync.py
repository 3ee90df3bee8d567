"""What the three use cases (``shared/contacts.py``, ``shared/invoices.py``, ``shared/payments.py``)
are built from and do the same way: read the record's newest state, skip what the mapping already
holds, and record every outcome (audit entry and log line) with the same clock; invoices and payments
(``LedgerSync``) also share their amount unit and history-note setting."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel

from shared.audit import record_outcome
from shared.config import HistoryNotes, RecordType
from shared.models.events import SyncEvent
from shared.money import AmountUnit
from shared.newest_state import DEFAULT_CLOCK_SKEW, newest_state
from shared.outcome import SyncAction, SyncOutcome
from shared.store.mappings import MappingStore, RecordMapping

RecordT = TypeVar("RecordT", bound=BaseModel)
# A use case's Xero port, Ignition port and rules (shared/ports.py, shared/config.py).
XeroT = TypeVar("XeroT")
IgnitionT = TypeVar("IgnitionT")
RulesT = TypeVar("RulesT")


class _Versioned(Protocol):
    """An Ignition record with its own version stamp (a client, an invoice)."""

    @property
    def slug(self) -> str: ...

    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True)
class XeroState:
    """An invoice as our own write left it in Xero (kept with its mapping; see ``shared/payments.py``)."""

    amount_due: Decimal | None = None
    status: str | None = None
    currency: str | None = None


def written_body(body: BaseModel, *options: object) -> str:
    """A fingerprint of what a write sends Xero: the body as sent (``exclude_none``, as the client
    sends it) and any ``options`` that change what Xero stores (``unitdp``)."""
    sent = body.model_dump_json(exclude_none=True) + "".join(f"|{option}" for option in options)
    return hashlib.sha256(sent.encode()).hexdigest()


@dataclass(kw_only=True, eq=False)
class RecordSync(Generic[XeroT, IgnitionT, RulesT]):
    """What every use case is built from: its Xero and Ignition ports, the mapping store, its rules
    and the clock (with the skew its newest-state reads allow)."""

    record_type: ClassVar[RecordType]

    xero: XeroT
    ignition: IgnitionT
    store: MappingStore
    rules: RulesT
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_clock_skew: timedelta = DEFAULT_CLOCK_SKEW

    def _newest(
        self, event: SyncEvent, model: type[RecordT], fetch: Callable[[str], RecordT | None]
    ) -> RecordT | None:
        return newest_state(event, model, fetch, now=self.now(), max_skew=self.max_clock_skew)

    def _ensure(
        self,
        slug: str,
        event: SyncEvent,
        fetch: Callable[[str], RecordT | None],
        apply: Callable[[RecordT, RecordMapping | None, SyncEvent], SyncOutcome],
        missing: Exception,
    ) -> str:
        """The Xero id mapped to ``slug``, syncing the record first when it has none yet (a record
        can be needed before, or without, its own webhook); ``missing`` is raised when Ignition
        does not have it."""
        mapping = self.store.get(self.record_type, slug)
        if mapping is not None:
            return mapping.xero_id
        record = fetch(slug)
        if record is None:
            raise missing
        outcome = apply(record, None, event)
        assert outcome.xero_id is not None
        return outcome.xero_id

    def _skip_written(
        self, event: SyncEvent, record: _Versioned, mapping: RecordMapping | None
    ) -> SyncOutcome | None:
        """A skip when the mapping holds this version or a newer one (out of order or repeated),
        unless forced; None: go on."""
        if mapping is None or event.force or record.updated_at > mapping.ignition_updated_at:
            return None
        return self._skip(
            event,
            "skipped_stale",
            f"Ignition updated_at {record.updated_at.isoformat()} is not newer than the "
            f"{mapping.ignition_updated_at.isoformat()} already written",
            ignition_id=record.slug,
            mapping=mapping,
            updated_at=record.updated_at,
        )

    def _skip_unchanged(
        self, event: SyncEvent, record: _Versioned, mapping: RecordMapping, written: str
    ) -> SyncOutcome | None:
        """A skip when the write would send Xero what our last write sent (``written`` is that body's
        ``written_body``): a change in Ignition to nothing Xero holds costs no call, and an invoice
        Xero has locked after its payment is not refused for a change it does not carry. The
        mapping still moves to this version, so an older change arriving later stays stale.
        None: write (forced replays always write)."""
        if event.force or mapping.xero_body_sha256 != written:
            return None
        self._advance(mapping, event, record.updated_at)
        return self._skip(
            event,
            "skipped_duplicate",
            "nothing Xero holds changed since the sync's last write: not written again",
            ignition_id=record.slug,
            mapping=mapping,
            updated_at=record.updated_at,
        )

    def _advance(
        self, mapping: RecordMapping, event: SyncEvent, updated_at: datetime, **changes: object
    ) -> None:
        """Move ``mapping`` to Ignition's version ``updated_at`` without a write of the Xero record
        (its ``changes`` with it), conditionally on ``mapping``."""
        moved = {
            "ignition_updated_at": updated_at,
            "synced_at": self.now(),
            "last_event_id": event.event_id,
            "version": mapping.version + 1,
        }
        self.store.save(mapping.model_copy(update={**moved, **changes}), previous=mapping)

    def _writing(self, mapping: RecordMapping) -> RecordMapping:
        """``mapping`` with its ``written_body`` marked unknown while a write is in flight (saved
        first, the version kept): a write Xero applies before a crash or a lost answer leaves Xero
        holding a body the mapping never saw, so the next change must be written, not compared.
        The returned mapping is what the write's own mapping is saved conditionally on."""
        if mapping.xero_body_sha256 is None:
            return mapping
        unknown = mapping.model_copy(update={"xero_body_sha256": None})
        self.store.save(unknown, previous=mapping)
        return unknown

    def _skip_state(self, event: SyncEvent, record: _Versioned, decision: str) -> SyncOutcome:
        """A skip for a state the rules do not sync (nothing mapped to report)."""
        return self._skip(
            event, "skipped_state", decision, ignition_id=record.slug, updated_at=record.updated_at
        )

    def _map(
        self,
        event: SyncEvent,
        *,
        ignition_id: str,
        xero_id: str,
        created_at: datetime,
        updated_at: datetime,
        match_method: str,
        previous: RecordMapping | None,
        xero_state: XeroState | None = None,
        written: str | None = None,
    ) -> None:
        """Write the mapping conditionally on ``previous`` (a concurrent writer loses, not both),
        with the Xero state the write left (``xero_state``) when the caller knows it, and the
        ``written_body`` of what it sent (``written``)."""
        state = xero_state or XeroState()
        self.store.save(
            RecordMapping(
                record_type=self.record_type,
                ignition_id=ignition_id,
                xero_id=xero_id,
                ignition_created_at=created_at,
                ignition_updated_at=updated_at,
                synced_at=self.now(),
                last_event_id=event.event_id,
                match_method=match_method,
                version=1 if previous is None else previous.version + 1,
                xero_amount_due=state.amount_due,
                xero_status=state.status,
                xero_currency=state.currency,
                xero_body_sha256=written,
            ),
            previous=previous,
        )

    def _skip(
        self,
        event: SyncEvent,
        action: SyncAction,
        decision: str,
        *,
        ignition_id: str | None = None,
        mapping: RecordMapping | None = None,
        updated_at: datetime | None = None,
    ) -> SyncOutcome:
        """Record that nothing was written, and why."""
        outcome = SyncOutcome(
            action,
            ignition_id or event.record_id,
            mapping.xero_id if mapping else None,
            "mapping" if mapping else None,
            [decision],
            self.record_type,
        )
        return self._record(event, outcome, updated_at)

    def _record(
        self,
        event: SyncEvent,
        outcome: SyncOutcome,
        updated_at: datetime | None = None,
        changed: list[str] | None = None,
    ) -> SyncOutcome:
        return record_outcome(
            self.store, event, outcome, at=self.now(), ignition_updated_at=updated_at, changed=changed
        )


@dataclass(kw_only=True, eq=False)
class LedgerSync(RecordSync[XeroT, IgnitionT, RulesT]):
    """An invoice or payment use case: amounts in Ignition's unit, a history note on what it writes."""

    unit: AmountUnit
    history_notes: HistoryNotes = True

    def _history_note(self, text: str, decisions: list[str]) -> str | None:
        """The history note for a write (``text``, with ``decisions`` when notes are written only
        for decisions); None: no note."""
        if self.history_notes is True:
            return text
        if self.history_notes == "decisions" and decisions:
            return f"{text}: {'; '.join(decisions)}"
        return None
