"""Xero calls of many records sent together: the sync handles each FIFO group of a batch in its own
thread with the per-record use cases unchanged (``shared/contacts.py``, ``shared/invoices.py``,
``shared/payments.py``), and :class:`GatheredXero` stands in for their Xero client. A lookup of new
clients' contacts, a contact save, an invoice create or save and a payment create wait until every
thread of the batch is either waiting for Xero too or done; then each kind goes to Xero as one call
of up to 50 elements (``summarizeErrors=false``), and each thread gets back its own elements.

Why this keeps every guarantee of the one-record sync: a group's events still run one after the
other in queue order (a client's contact exists before its invoices, an invoice before its
payments, the newest-state check and the conditional mapping writes unchanged); a refused element
comes back to its own record only, with Xero's own message; a failed call (429, a 5xx that outlasted
the client's retries, the call budget) fails exactly the records that were in it, which the
delivery policy (``shared/delivery.py``) retries or parks as it would one record.

A new contact whose name another new contact of the same call already carries waits for the next
call: by then the first one is mapped, so the second is told apart by the matching rules instead of
racing it for the name.

The case-safe lookup of new clients is the one kind whose size grows with its clients: three
clauses each, about 8 clients per 2,000-character URL. A lookup of :data:`INDEX_FROM_QUERIES`
clients or more is answered from :class:`ContactIndex` instead, the organisation's contacts read in
full once per execution environment and then only what changed (one call for the whole lookup).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from shared.burst_order import UNRANKED, Rank, current_rank
from shared.models.xero import Contact, Currency, Invoice, Organisation, Payment, TaxRate
from shared.xero.client import MAX_BATCH_SIZE, HistoryResource, ReferenceResource, XeroClient
from shared.xero.finders import ContactQuery
from shared.xero.idempotency import idempotency_key

T = TypeVar("T")
Send = Callable[["Kind", list[Any], "str | None", bool], list[Any]]
Kind = Literal["lookup", "numbers", "save_contacts", "create_invoices", "save_invoices", "create_payments"]
# A lookup of this many new clients or more reads the contact index (the where lookup would take
# two calls or more); an organisation with more than INDEX_MAX_PAGES pages of contacts keeps the
# where lookups (its first full read would cost more than it saves).
INDEX_FROM_QUERIES = 9
INDEX_PAGE_SIZE = 1_000
INDEX_MAX_PAGES = 5
# Changes are read from this long before the newest change already read: Xero's own clock, and a
# superset (each contact is kept by its ContactID).
INDEX_OVERLAP = timedelta(seconds=5)
# The clauses shared/xero/finders.py contact_query writes: Field=="v", Field.ToLower()=="v",
# ContactID==Guid("v") (a literal never holds a quote: shared/xero/where.py where_safe).
_CLAUSE = re.compile(
    r'\b(ContactNumber|Name|EmailAddress|ContactID)(\.ToLower\(\))?==(?:"([^"]*)"|Guid\("([^"]*)"\))'
)

# How long a thread waits for the others before its call goes anyway: the gathering must never
# cost more than this in latency, whatever another thread is busy with.
DEFAULT_MAX_WAIT_SECONDS = 5.0


@dataclass(eq=False)
class _Pending:
    kind: Kind
    items: list[Any]
    key: str | None
    send: Send
    option: bool = False  # unitdp4 for invoices: sent only with others that agree
    result: list[Any] | None = None
    error: BaseException | None = None
    done: bool = False
    since: float = field(default_factory=time.monotonic)
    # The rank of the record whose call this is (shared/burst_order.py); None outside a sync.
    rank: Rank | None = field(default_factory=current_rank)


@dataclass
class GatherStats:
    """What the gathering saved: calls made for how many records' calls."""

    calls: int = 0
    elements: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class CallGather:
    """Holds each thread's call until every member thread waits or is done, then sends the calls
    of one kind together (see the module docstring). Each call names its ``send``: the real call of
    its kind for the elements of several threads. Made by the sync function for its lifetime;
    :meth:`enlist` counts the threads of one batch in, each leaves when its group is done."""

    def __init__(
        self, *, max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS, max_batch: int = MAX_BATCH_SIZE
    ) -> None:
        self._max_wait = max_wait_seconds
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._members = 0
        self._blocked = 0
        self._pending: list[_Pending] = []
        self._flushing = False
        self.stats = GatherStats()

    def enlist(self, count: int) -> None:
        """``count`` threads take part (counted before any starts, so none sends alone)."""
        with self._cond:
            self._members += count

    def leave(self) -> None:
        with self._cond:
            self._members -= 1
            self._cond.notify_all()

    @contextmanager
    def member(self) -> Iterator[None]:
        """A thread that takes part while inside (enlisted on entry)."""
        self.enlist(1)
        try:
            yield
        finally:
            self.leave()

    def call(
        self, kind: Kind, items: Sequence[Any], key: str | None, *, send: Send, option: bool = False
    ) -> list[Any]:
        pending = _Pending(kind, list(items), key, send, option)
        with self._cond:
            if self._members == 0:  # not in a gathered batch: straight through
                pending.done = True
            else:
                self._pending.append(pending)
                self._blocked += 1
                self._cond.notify_all()
        if pending.done:
            return send(kind, pending.items, key, option)
        while True:
            with self._cond:
                while not pending.done and not self._may_flush(pending):
                    self._cond.wait(timeout=0.05)
                if pending.done:
                    break
                taken = self._take()
                self._flushing = True
            try:
                self._flush(taken)
            finally:
                with self._cond:
                    self._flushing = False
                    for p in taken:
                        p.done = True
                        self._blocked -= 1
                    self._cond.notify_all()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _may_flush(self, pending: _Pending) -> bool:
        if self._flushing or not self._pending:
            return False
        everyone_waits = self._blocked >= self._members
        return everyone_waits or time.monotonic() - pending.since >= self._max_wait

    def _take(self) -> list[_Pending]:
        """The calls to send now: per kind (and option) up to ``max_batch`` elements, a new contact
        whose name an earlier one of the same call carries held for the next call."""
        taken: list[_Pending] = []
        sizes: dict[tuple[Kind, bool], int] = {}
        names: set[str] = set()
        for p in self._pending:
            size = sizes.get((p.kind, p.option), 0)
            if size and size + len(p.items) > self._max_batch:
                continue
            if p.kind == "save_contacts":
                new_names = {(c.Name or "").casefold() for c in p.items if c.ContactID is None}
                if new_names & names:
                    continue
                names |= new_names
            sizes[(p.kind, p.option)] = size + len(p.items)
            taken.append(p)
        self._pending = [p for p in self._pending if p not in taken]
        return taken

    def _flush(self, taken: list[_Pending]) -> None:
        groups: dict[tuple[Kind, bool], list[_Pending]] = {}
        for p in taken:
            groups.setdefault((p.kind, p.option), []).append(p)
        # Payments and the oldest changes first: when the day's budget runs out part-way through,
        # the calls that went are theirs (shared/burst_order.py).
        ordered = sorted(groups.items(), key=lambda group: min(p.rank or UNRANKED for p in group[1]))
        for (kind, option), members in ordered:
            items = [item for p in members for item in p.items]
            keys = [p.key for p in members]
            key = None if None in keys else idempotency_key("gathered", *(k or "" for k in keys))
            try:
                results = members[0].send(kind, items, key, option)
            except Exception as exc:  # noqa: BLE001 - each record's own delivery policy decides
                for p in members:
                    p.error = exc
                continue
            self.stats.calls += 1
            self.stats.elements += len(items)
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            if kind == "lookup":
                for p in members:
                    p.result = results  # a superset for everyone; each chooses exactly
                continue
            if kind == "numbers":
                for p in members:
                    p.result = [r for r in results if r.InvoiceNumber in p.items]
                continue
            start = 0
            for p in members:
                p.result = results[start : start + len(p.items)]
                start += len(p.items)


@dataclass(frozen=True)
class _Condition:
    field: str
    value: str
    folded: bool  # compared ignoring case

    def matches(self, contact: Contact) -> bool:
        actual = str(getattr(contact, self.field) or "")
        if self.folded or self.field == "ContactID":
            return actual.casefold() == self.value.casefold()
        return actual == self.value


def _conditions(queries: Sequence[ContactQuery]) -> list[list[_Condition]] | None:
    """Each clause of ``queries`` as the conditions it holds; None when one is not understood (the
    where lookup is then sent as it is)."""
    out: list[list[_Condition]] = []
    for query in queries:
        for clause in query.any_of:
            found = [
                _Condition(m[1], m[3] if m[3] is not None else m[4], bool(m[2]))
                for m in _CLAUSE.finditer(clause)
            ]
            if not found:
                return None
            out.append(found)
    return out


class ContactIndex:
    """The organisation's contacts (archived ones too), read in full once and then by
    If-Modified-Since from the newest change read, plus the contacts our own writes return. Matched
    like the where lookup: ContactNumber and ContactID exactly, Name and EmailAddress ignoring
    case, a search term as Xero's searchTerm (contained in the name, names, number or e-mail,
    ignoring case); a superset, the caller chooses exactly (``shared/matching.py``)."""

    def __init__(self) -> None:
        self._contacts: dict[str, Contact] = {}
        self._newest: datetime | None = None
        self._loaded = False
        self.too_big = False

    def refresh(self, client: XeroClient) -> bool:
        """Read what changed since the last read (everything the first time); False when the
        organisation has too many contacts for an index."""
        since = None if not self._loaded or self._newest is None else self._newest - INDEX_OVERLAP
        page = 1
        while True:
            got = client.find_contacts(
                page=page, page_size=INDEX_PAGE_SIZE, include_archived=True, modified_since=since
            )
            self.add(got)
            if len(got) < INDEX_PAGE_SIZE:
                self._loaded = True
                return True
            if since is None and page >= INDEX_MAX_PAGES:
                self.too_big = True
                self._contacts.clear()
                return False
            page += 1

    def add(self, contacts: Sequence[Contact]) -> None:
        for contact in contacts:
            if contact.ContactID is None or contact.ValidationErrors:
                continue
            self._contacts[str(contact.ContactID).lower()] = contact
            stamp = contact.UpdatedDateUTC
            if stamp is not None and (self._newest is None or stamp > self._newest):
                self._newest = stamp

    def candidates(self, clauses: list[list[_Condition]], terms: Sequence[str]) -> list[Contact]:
        folded = [t.casefold() for t in terms]
        found: list[Contact] = []
        for contact in self._contacts.values():
            if any(all(c.matches(contact) for c in clause) for clause in clauses) or any(
                t in str(getattr(contact, f) or "").casefold()
                for t in folded
                for f in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            ):
                found.append(contact)
        return found


class GatheredXero:
    """The Xero client as the use cases see it during a gathered batch: the five gathered calls go
    through :class:`CallGather`, everything else straight to the client. The organisation's
    reference data (tax rates etc.) is read by one thread while the others wait for its cache."""

    def __init__(self, client: XeroClient, gather: CallGather) -> None:
        self._client = client
        self.gather = gather
        self._reference_lock = threading.Lock()
        self.contacts = ContactIndex()

    def _send(self, kind: Kind, items: list[Any], key: str | None, option: bool) -> list[Any]:
        client = self._client
        if kind == "lookup":
            clauses = tuple(dict.fromkeys(c for q in items for c in q.any_of))
            terms = tuple(dict.fromkeys(t for q in items for t in q.search_terms))
            conditions = _conditions(items) if len(items) >= INDEX_FROM_QUERIES else None
            if conditions is not None and not self.contacts.too_big and self.contacts.refresh(client):
                return self.contacts.candidates(conditions, terms)
            return client.find_contact_candidates(ContactQuery(clauses, terms))
        if kind == "numbers":  # invoices a call that failed had written: one read for all
            return client.find_invoices(invoice_numbers=sorted(set(items)))
        if kind == "save_contacts":
            saved = client.save_contacts(items, idempotency_key=key)
            self.contacts.add(saved)
            return saved
        if kind == "create_invoices":
            return client.create_invoices(items, idempotency_key=key, unitdp4=option)
        if kind == "save_invoices":
            return client.save_invoices(items, idempotency_key=key, unitdp4=option)
        return client.create_payments(items, idempotency_key=key)

    # -- gathered ---------------------------------------------------------------------------------

    def find_contact_candidates(self, query: ContactQuery) -> list[Contact]:
        return self.gather.call("lookup", [query], None, send=self._send)

    def save_contacts(self, contacts: Sequence[Contact], idempotency_key: str | None = None) -> list[Contact]:
        return self.gather.call("save_contacts", contacts, idempotency_key, send=self._send)

    def create_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]:
        return self.gather.call("create_invoices", invoices, idempotency_key, send=self._send, option=unitdp4)

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]:
        return self.gather.call("save_invoices", invoices, idempotency_key, send=self._send, option=unitdp4)

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]:
        return self.gather.call("create_payments", payments, idempotency_key, send=self._send)

    # -- straight through --------------------------------------------------------------------------

    def find_contacts_by_name_text(self, name: str) -> list[Contact]:
        return self._client.find_contacts_by_name_text(name)

    def find_invoices_by_id(self, invoice_ids: Sequence[str]) -> list[Invoice]:
        return self._client.find_invoices_by_id(invoice_ids)

    def find_invoices_by_number(self, number: str) -> list[Invoice]:
        return self.gather.call("numbers", [number], None, send=self._send)

    def find_invoices_by_reference(self, reference: str, *, ending: str) -> list[Invoice]:
        return self._client.find_invoices_by_reference(reference, ending=ending)

    def find_payments_by_reference(self, reference: str, *, ending: str) -> list[Payment]:
        return self._client.find_payments_by_reference(reference, ending=ending)

    def add_history(self, resource: HistoryResource, record_id: str, details: str) -> None:
        self._client.add_history(resource, record_id, details)

    def invalidate_reference_data(self, *resources: ReferenceResource) -> None:
        self._client.invalidate_reference_data(*resources)

    # -- reference data, read once ----------------------------------------------------------------

    def _once(self, read: Callable[[], T]) -> T:
        with self._reference_lock:
            return read()

    def tax_rates(self) -> list[TaxRate]:
        return self._once(self._client.tax_rates)

    def organisation(self) -> Organisation:
        return self._once(self._client.organisation)

    def currencies(self) -> list[Currency]:
        return self._once(self._client.currencies)
