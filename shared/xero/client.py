"""The Xero Accounting API client: one request path for every call.

``_request`` does everything a call needs: token (refresh once on 401), ``xero-tenant-id``,
the call budget around the wire, ``Idempotency-Key`` on writes (one key per logical call, reused by
its retries), retries (429 with ``Retry-After``, 5xx and transport errors with exponential backoff
and full jitter), error mapping (``shared.xero.errors``) and the ``on_call`` record for metrics.
Resource methods (contacts, invoices, payments, history, reference data) are thin: build the
query, pick a model, call ``_get_collection`` / ``_write_batches``.

Every JSON body is parsed with ``parse_float=Decimal``: amounts go from Xero's text straight to
``Decimal`` and never pass through a binary float (``0.30`` stays ``Decimal("0.30")``).

In-process waiting is bounded by ``XeroConfig.max_inline_wait_seconds`` in total per logical call;
anything longer is raised as a transient error so the message goes back to the queue.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import ValidationError

from shared.config import XeroConfig
from shared.models.xero import (
    Account,
    Contact,
    Currency,
    HistoryRecord,
    Invoice,
    Organisation,
    Payment,
    TaxRate,
    XeroModel,
)
from shared.oauth import TokenProvider
from shared.xero.budget import CallBudget
from shared.xero.errors import (
    XeroAuthError,
    XeroError,
    XeroNotFound,
    XeroRateLimited,
    XeroRequestError,
    XeroTokenRejected,
    XeroUnavailable,
    XeroUnexpectedResponse,
    XeroValidationError,
)
from shared.xero.finders import XeroFinders
from shared.xero.reference_cache import ReferenceDataCache
from shared.xero.where import where_all, where_any, where_eq

logger = logging.getLogger(__name__)
# httpx logs every request's URL at INFO, and a Contacts lookup's URL carries the client's name and
# e-mail in its where clause: with Lambda's application log level at INFO that is personal data in
# CloudWatch. Our own records log ids only (docs/security.md; tests/integration/test_no_secrets_in_logs).
logging.getLogger("httpx").setLevel(logging.WARNING)

ACCOUNTING_PATH = "/api.xro/2.0"
# Xero recommends about 50 elements per batch (and caps bodies at 3.5 MB).
MAX_BATCH_SIZE = 50
MAX_IDEMPOTENCY_KEY_LENGTH = 128
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_BACKOFF_BASE_SECONDS = 0.5
_BACKOFF_CAP_SECONDS = 8.0
_DEFAULT_RETRY_AFTER_SECONDS = 60.0
# Xero's limit on a history note (developer.xero.com/documentation/api/history-and-notes).
MAX_HISTORY_DETAILS_LENGTH = 250
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

M = TypeVar("M", bound=XeroModel)

HistoryResource = Literal["Contacts", "Invoices", "Payments"]
ReferenceResource = Literal[
    "TaxRates",
    "Accounts",
    "TrackingCategories",
    "ContactGroups",
    "BrandingThemes",
    "Organisation",
    "Currencies",
]
_HISTORY_ID_FIELD = {"Contacts": "ContactID", "Invoices": "InvoiceID", "Payments": "PaymentID"}
_ID_FIELDS = {"ContactID", "InvoiceID", "PaymentID"}


@dataclass(frozen=True)
class XeroCall:
    """One HTTP exchange with Xero, for metrics (``Metric.XERO_CALLS`` etc.). No bodies, no tokens."""

    method: str
    endpoint: str  # the template, e.g. "/Contacts/{ContactID}", so metrics have few dimensions
    status: int | None  # None: no response (timeout, connection error)
    duration_ms: float
    attempt: int
    min_remaining: int | None
    day_remaining: int | None
    app_min_remaining: int | None
    rate_limit_problem: str | None
    error: str | None = None  # transport error class name when status is None


# --- request size -------------------------------------------------------------------------------
# Xero answers 404 "resource cannot be found" to IDs= with more than about 50 ids, or to any URL over
# about 2,000 characters (XeroAPI/Xero-OpenAPI#534, xero-node#404, Xero-NetStandard#471).
MAX_IDS_PER_CALL = 50
MAX_URL_LENGTH = 2_000

T = TypeVar("T")


def url_length(url: str, params: Mapping[str, str]) -> int:
    """The length of ``url`` with ``params`` percent-encoded exactly as httpx sends them."""
    return len(str(httpx.URL(url, params=dict(params))))


def fit_in_url(
    values: Sequence[T],
    url: str,
    params_for: Callable[[list[T]], Mapping[str, str]],
    *,
    max_count: int | None = MAX_IDS_PER_CALL,
    max_length: int = MAX_URL_LENGTH,
) -> list[list[T]]:
    """Split ``values`` into as few consecutive chunks as keep each request within Xero's limits:
    at most ``max_count`` values, and ``url`` with ``params_for(chunk)`` (the whole query, other
    parameters included) at most ``max_length`` characters. The one place lookups are sized."""
    chunks: list[list[T]] = []
    current: list[T] = []
    for value in values:
        candidate = [*current, value]
        fits = (max_count is None or len(candidate) <= max_count) and url_length(
            url, params_for(candidate)
        ) <= max_length
        if fits:
            current = candidate
            continue
        if not current:
            raise ValueError(f"one value alone makes the request longer than {max_length} characters")
        chunks.append(current)
        current = [value]
        if url_length(url, params_for(current)) > max_length:
            raise ValueError(f"one value alone makes the request longer than {max_length} characters")
    if current:
        chunks.append(current)
    return chunks


def format_if_modified_since(value: datetime) -> str:
    """Xero wants UTC ``yyyy-MM-ddTHH:mm:ss`` (no fraction). Truncating to the second can only
    return a record again, never skip one."""
    if value.tzinfo is None:
        raise ValueError("modified_since must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


# --- the client ---------------------------------------------------------------------------------


class XeroClient(XeroFinders):
    def __init__(
        self,
        config: XeroConfig,
        tokens: TokenProvider,
        tenant_id: str,
        budget: CallBudget,
        http: httpx.Client | None = None,
        on_call: Callable[[XeroCall], None] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        reference_cache: ReferenceDataCache | None = None,
    ) -> None:
        self.config = config
        self.tenant_id = tenant_id
        self._tokens = tokens
        self._budget = budget
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=config.timeout_seconds)
        self._on_call = on_call
        self._sleep = sleep
        self._rand = rand
        self._monotonic = monotonic
        self._accounting_url = config.api_url.rstrip("/") + ACCOUNTING_PATH
        self._identity_url = config.api_url.rstrip("/")
        # One per client unless shared: a warm Lambda keeps its client, so reads stay cached.
        self.reference_cache = reference_cache if reference_cache is not None else ReferenceDataCache()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> XeroClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- identity ---------------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        """``GET /connections``: the organisations this token may reach (``tenantId``, ...)."""
        response = self._request("GET", "/connections", api="identity")
        body = _json(response, "/connections")
        if not isinstance(body, list):
            raise XeroUnavailable("unexpected /connections body", status=response.status_code)
        return [item for item in body if isinstance(item, dict)]

    # --- contacts ---------------------------------------------------------------------------

    def find_contacts(
        self,
        where: str | None = None,
        *,
        any_of: Sequence[str] = (),
        ids: Sequence[str] = (),
        search_term: str | None = None,
        page: int | None = None,
        page_size: int | None = None,
        include_archived: bool = False,
        summary_only: bool = False,
        modified_since: datetime | None = None,
    ) -> list[Contact]:
        """One page of ``GET /Contacts`` (Xero's default order: UpdatedDateUTC, ContactID).

        ``any_of`` (clauses OR-ed, AND-ed with ``where``) and ``ids`` take any number: they are
        sent in as many calls as Xero's size limits need (``fit_in_url``), each contact once.
        ``search_term`` is Xero's case-insensitive text search (Name, FirstName, LastName,
        ContactNumber, EmailAddress): plain text, safe for any characters."""
        params = _query(
            searchTerm=search_term,
            page=page,
            pageSize=page_size,
            includeArchived=include_archived,
            summaryOnly=summary_only,
        )
        return self._get_fitted(
            "/Contacts",
            "Contacts",
            Contact,
            params,
            where,
            any_of=any_of,
            ids=ids,
            modified_since=modified_since,
        )

    def iter_contacts(
        self, where: str | None = None, *, page_size: int = 100, include_archived: bool = False
    ) -> Iterator[Contact]:
        """Every page of ``GET /Contacts``, lazily (each page is one budgeted call). A read of
        everything (the backfill's): the finer filters are ``find_contacts``'s, one page at a time."""
        return _every_page(
            lambda page: self.find_contacts(
                where, page=page, page_size=page_size, include_archived=include_archived
            ),
            page_size,
        )

    def get_contact(self, contact_id_or_number: str) -> Contact | None:
        """``GET /Contacts/{ContactID}`` or ``/Contacts/{ContactNumber}``; None when Xero has none."""
        if not contact_id_or_number:
            raise ValueError("contact id or number is required")
        template = (
            "/Contacts/{ContactID}" if _UUID.match(contact_id_or_number) else "/Contacts/{ContactNumber}"
        )
        field = "ContactID" if template.endswith("{ContactID}") else "ContactNumber"
        return self._get_one(template, "Contacts", Contact, {field: contact_id_or_number})

    def save_contacts(self, contacts: Sequence[Contact], idempotency_key: str | None = None) -> list[Contact]:
        """``POST /Contacts?summarizeErrors=false``: create, or update by ContactID. One Contact
        back per element, in order, each with its own ``ValidationErrors``."""
        return self._write_batch("POST", "/Contacts", "Contacts", Contact, contacts, idempotency_key)

    def create_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]:
        """``PUT /Contacts?summarizeErrors=false``: create only (an existing Name fails per element)."""
        return self._write_batch("PUT", "/Contacts", "Contacts", Contact, contacts, idempotency_key)

    # --- invoices ---------------------------------------------------------------------------

    def find_invoices(
        self,
        where: str | None = None,
        *,
        ids: Sequence[str] = (),
        invoice_numbers: Sequence[str] = (),
        contact_ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
        page: int | None = None,
        page_size: int | None = None,
        modified_since: datetime | None = None,
        summary_only: bool = False,
        unitdp4: bool = False,
    ) -> list[Invoice]:
        """One page of ``GET /Invoices``. Xero includes line items only when ``page`` is given
        (or for a single invoice); ``summary_only`` leaves them out for a lighter, faster call."""
        params = _query(
            InvoiceNumbers=invoice_numbers,
            ContactIDs=contact_ids,
            Statuses=statuses,
            page=page,
            pageSize=page_size,
            summaryOnly=summary_only,
            unitdp=4 if unitdp4 else None,
        )
        return self._get_fitted(
            "/Invoices", "Invoices", Invoice, params, where, ids=ids, modified_since=modified_since
        )

    def iter_invoices(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Invoice]:
        """Every page of ``GET /Invoices``, lazily (each page is one budgeted call)."""
        return _every_page(lambda page: self.find_invoices(where, page=page, page_size=page_size), page_size)

    def get_invoice(self, invoice_id_or_number: str, *, unitdp4: bool = False) -> Invoice | None:
        """One invoice with its line items, by InvoiceID or InvoiceNumber; None when Xero has none.

        A number is looked up with the ``InvoiceNumbers`` filter (in the official spec, unlike a
        number in the path); an ACCREC match wins, as only sales invoice numbers are unique.
        """
        if not invoice_id_or_number:
            raise ValueError("invoice id or number is required")
        params = {"unitdp": "4"} if unitdp4 else {}
        if _UUID.match(invoice_id_or_number):
            return self._get_one(
                "/Invoices/{InvoiceID}", "Invoices", Invoice, {"InvoiceID": invoice_id_or_number}, params
            )
        candidates = [
            invoice
            for invoice in self.find_invoices(invoice_numbers=[invoice_id_or_number], page=1, unitdp4=unitdp4)
            if invoice.InvoiceNumber == invoice_id_or_number
        ]
        candidates.sort(key=lambda invoice: invoice.Type != "ACCREC")
        return candidates[0] if candidates else None

    def save_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]:
        """``POST /Invoices?summarizeErrors=false``: create, or update by InvoiceID. One Invoice back
        per element, in order, each with its own ``ValidationErrors`` (``HasErrors``). Sent in
        batches of ``MAX_BATCH_SIZE``; see ``_write_batches`` for keys and partial failure."""
        return self._write_batches(
            "POST", "/Invoices", "Invoices", Invoice, invoices, idempotency_key, _unitdp(unitdp4)
        )

    def create_invoices(
        self, invoices: Sequence[Invoice], idempotency_key: str | None = None, *, unitdp4: bool = False
    ) -> list[Invoice]:
        """``PUT /Invoices?summarizeErrors=false``: create only (an InvoiceID fails per element)."""
        return self._write_batches(
            "PUT", "/Invoices", "Invoices", Invoice, invoices, idempotency_key, _unitdp(unitdp4)
        )

    # --- payments ---------------------------------------------------------------------------

    def create_payments(
        self, payments: Sequence[Payment], idempotency_key: str | None = None
    ) -> list[Payment]:
        """``PUT /Payments?summarizeErrors=false``: one Payment back per element, in order; a refused
        payment (invoice not AUTHORISED, amount over what is due) carries its ``ValidationErrors``."""
        return self._write_batches("PUT", "/Payments", "Payments", Payment, payments, idempotency_key)

    def find_payments(
        self,
        where: str | None = None,
        *,
        ids: Sequence[str] = (),
        page: int | None = None,
        page_size: int | None = None,
        modified_since: datetime | None = None,
    ) -> list[Payment]:
        """One page of ``GET /Payments``. The endpoint has no ``IDs`` parameter, so ``ids`` become
        ``PaymentID==Guid(...)`` clauses OR-ed (and AND-ed with ``where``), in as many calls as the
        URL length needs."""
        any_of = [where_eq("PaymentID", UUID(payment_id)) for payment_id in ids]
        params = _query(page=page, pageSize=page_size)
        return self._get_fitted(
            "/Payments", "Payments", Payment, params, where, any_of=any_of, modified_since=modified_since
        )

    def iter_payments(self, where: str | None = None, *, page_size: int = 100) -> Iterator[Payment]:
        """Every page of ``GET /Payments``, lazily."""
        return _every_page(lambda page: self.find_payments(where, page=page, page_size=page_size), page_size)

    def get_payment(self, payment_id: str) -> Payment | None:
        """``GET /Payments/{PaymentID}``; None when Xero has none."""
        _require_uuid(payment_id, "payment id")
        return self._get_one("/Payments/{PaymentID}", "Payments", Payment, {"PaymentID": payment_id})

    def delete_payment(self, payment_id: str, *, idempotency_key: str | None = None) -> Payment:
        """``POST /Payments/{PaymentID}`` ``{"Status":"DELETED"}``: the invoice is due again.
        Xero refuses (400, raised) e.g. a payment already reconciled or on a locked period."""
        _require_uuid(payment_id, "payment id")
        template = "/Payments/{PaymentID}"
        response = self._request(
            "POST",
            template,
            path={"PaymentID": payment_id},
            body={"Status": "DELETED"},
            idempotency_key=idempotency_key,
        )
        payments = _parse_items(_json(response, template), "Payments", Payment, template)
        if not payments:
            raise XeroUnexpectedResponse(
                "Xero answered no Payment to a delete", status=response.status_code, endpoint=template
            )
        _raise_element_errors(payments[0].ValidationErrors, template)
        return payments[0]

    # --- history and notes ------------------------------------------------------------------

    def add_history(
        self,
        resource: HistoryResource,
        record_id: str,
        details: str,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """``PUT /{resource}/{id}/History``: a note the accountant sees in Xero's history. Details
        over Xero's 250 characters are cut, ending in an ellipsis, rather than refused."""
        template = _history_endpoint(resource, record_id)
        details = details.strip()
        if not details:
            raise ValueError("history details must not be empty")
        if len(details) > MAX_HISTORY_DETAILS_LENGTH:
            details = details[: MAX_HISTORY_DETAILS_LENGTH - 1] + "\u2026"
        self._request(
            "PUT",
            template,
            path={_HISTORY_ID_FIELD[resource]: record_id},
            body={"HistoryRecords": [{"Details": details}]},
            idempotency_key=idempotency_key,
        )

    def history(self, resource: HistoryResource, record_id: str) -> list[HistoryRecord]:
        """``GET /{resource}/{id}/History``, oldest first as Xero returns them."""
        template = _history_endpoint(resource, record_id)
        return self._get_collection(
            template, "HistoryRecords", HistoryRecord, {}, path={_HISTORY_ID_FIELD[resource]: record_id}
        )

    # --- reference data (cached, see ReferenceDataCache) --------------------------------------

    def tax_rates(self) -> list[TaxRate]:
        """``GET /TaxRates`` (cached)."""
        return self._cached(("TaxRates",), lambda: self._get_collection("/TaxRates", "TaxRates", TaxRate, {}))

    def organisation(self) -> Organisation:
        """``GET /Organisation`` (cached): country, base currency, lock dates."""
        found: list[Organisation] = self._cached(
            ("Organisation",),
            lambda: self._get_collection("/Organisation", "Organisations", Organisation, {}),
        )
        if not found:
            raise XeroUnexpectedResponse("Xero answered no Organisation", endpoint="/Organisation")
        return found[0]

    def currencies(self) -> list[Currency]:
        """``GET /Currencies`` (cached): the currencies enabled in the organisation."""
        return self._cached(
            ("Currencies",), lambda: self._get_collection("/Currencies", "Currencies", Currency, {})
        )

    def accounts(self, where: str | None = None) -> list[Account]:
        """``GET /Accounts`` (cached per ``where``)."""
        params = {"where": where} if where else {}
        return self._cached(
            ("Accounts", where or ""),
            lambda: self._get_collection("/Accounts", "Accounts", Account, params),
        )

    def tracking_categories(self) -> list[dict[str, Any]]:
        """``GET /TrackingCategories``: active categories with their ``Options`` (cached)."""
        return self._cached(
            ("TrackingCategories",), lambda: self._get_raw("/TrackingCategories", "TrackingCategories")
        )

    def contact_groups(self) -> list[dict[str, Any]]:
        """``GET /ContactGroups`` (cached; creating a group here drops the entry)."""
        return self._cached(("ContactGroups",), lambda: self._get_raw("/ContactGroups", "ContactGroups"))

    def branding_themes(self) -> list[dict[str, Any]]:
        """``GET /BrandingThemes`` (cached)."""
        return self._cached(("BrandingThemes",), lambda: self._get_raw("/BrandingThemes", "BrandingThemes"))

    def create_contact_group(self, name: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """``PUT /ContactGroups``; Xero refuses a name already in use (XeroValidationError)."""
        if not name.strip():
            raise ValueError("contact group name must not be empty")
        endpoint = "/ContactGroups"
        try:
            response = self._request(
                "PUT", endpoint, body={"ContactGroups": [{"Name": name}]}, idempotency_key=idempotency_key
            )
        finally:
            # Even a refusal says our view may be stale (someone else made that group).
            self.invalidate_reference_data("ContactGroups")
        groups = _raw_items(_json(response, endpoint), "ContactGroups", endpoint)
        if not groups:
            raise XeroUnexpectedResponse(
                "Xero answered no ContactGroup", status=response.status_code, endpoint=endpoint
            )
        _raise_element_errors(groups[0].get("ValidationErrors"), endpoint)
        return groups[0]

    def add_contacts_to_group(
        self, group_id: str, contact_ids: Sequence[str], *, idempotency_key: str | None = None
    ) -> None:
        """``PUT /ContactGroups/{ContactGroupID}/Contacts``; adding a member twice is harmless."""
        _require_uuid(group_id, "contact group id")
        chunks = _chunks(list(contact_ids), MAX_BATCH_SIZE)
        for chunk, key in zip(chunks, _batch_keys(idempotency_key, len(chunks)), strict=True):
            self._request(
                "PUT",
                "/ContactGroups/{ContactGroupID}/Contacts",
                path={"ContactGroupID": group_id},
                body={"Contacts": [{"ContactID": contact_id} for contact_id in chunk]},
                idempotency_key=key,
            )

    def invalidate_reference_data(self, *resources: ReferenceResource) -> None:
        """Drop cached reference data of this organisation (all of it when none is named), e.g.
        after Xero refused a TaxType/AccountCode pairing the cached data allowed."""
        if not resources:
            self.reference_cache.invalidate(self.tenant_id)
        for resource in resources:
            self.reference_cache.invalidate(self.tenant_id, resource)

    # --- shared machinery for every resource -------------------------------------------------

    def _get_collection(
        self,
        endpoint: str,
        key: str,
        model: type[M],
        params: Mapping[str, str],
        modified_since: datetime | None = None,
        path: Mapping[str, str] | None = None,
    ) -> list[M]:
        headers = {"If-Modified-Since": format_if_modified_since(modified_since)} if modified_since else {}
        response = self._request("GET", endpoint, path=path, params=params, headers=headers)
        if response.status_code == 304:
            return []
        return _parse_items(_json(response, endpoint), key, model, endpoint)

    def _get_one(
        self,
        template: str,
        key: str,
        model: type[M],
        path: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> M | None:
        """One record by its own path; None when Xero has none (404, or an empty list)."""
        try:
            found = self._get_collection(template, key, model, params or {}, path=path)
        except XeroNotFound:
            return None
        return found[0] if found else None

    def _get_fitted(
        self,
        endpoint: str,
        key: str,
        model: type[M],
        params: Mapping[str, str],
        where: str | None,
        *,
        any_of: Sequence[str] = (),
        ids: Sequence[str] = (),
        modified_since: datetime | None = None,
    ) -> list[M]:
        """``_get_collection`` for a lookup of many ids or OR-ed clauses: split by ``fit_in_url`` so
        every call stays within Xero's limits; records found by two calls are kept once."""
        if any_of and ids:
            raise ValueError("look up by ids or by clauses, not both in one call")
        base = {**params, **({"where": where} if where else {})}
        if not any_of and not ids:
            return self._get_collection(endpoint, key, model, base, modified_since)
        url = self._accounting_url + endpoint
        if ids:
            values: list[str] = list(dict.fromkeys(ids))
            max_count: int | None = MAX_IDS_PER_CALL

            def params_for(chunk: list[str]) -> dict[str, str]:
                return {**base, "IDs": ",".join(chunk)}

        else:
            values, max_count = list(dict.fromkeys(any_of)), None

            def params_for(chunk: list[str]) -> dict[str, str]:
                return {**params, "where": where_all(where or "", where_any(*chunk))}

        chunks = fit_in_url(values, url, params_for, max_count=max_count)
        if len(chunks) > 1 and "page" in params:
            raise ValueError("a lookup that needs several calls cannot be paged: leave page unset")
        found: dict[str, M] = {}
        for chunk in chunks:
            for item in self._get_collection(endpoint, key, model, params_for(chunk), modified_since):
                found.setdefault(item.model_dump_json(include=_ID_FIELDS), item)
        return list(found.values())

    def _get_raw(self, endpoint: str, key: str) -> list[dict[str, Any]]:
        """A list endpoint we keep as plain dicts (small reference data without a model)."""
        response = self._request("GET", endpoint)
        return _raw_items(_json(response, endpoint), key, endpoint)

    def _cached(self, key: tuple[str, ...], load: Callable[[], list[Any]]) -> list[Any]:
        return self.reference_cache.get((self.tenant_id, *key), load)

    def _write_batches(
        self,
        method: Literal["POST", "PUT"],
        endpoint: str,
        key: str,
        model: type[M],
        items: Sequence[M],
        idempotency_key: str | None,
        params: Mapping[str, str] | None = None,
    ) -> list[M]:
        """Any number of elements, ``MAX_BATCH_SIZE`` per call, results in the order sent.

        With a caller key and more than one batch, batch ``i`` is sent with ``{key}-{i}`` (the
        same body under the same key is the only thing Xero replays). If a later batch fails, the
        error is raised and the earlier batches stay done in Xero: retrying the whole call with the
        same key within Xero's ~6 minute key lifetime replays them, later on the caller's own
        mapping (InvoiceNumber, Reference) must find them.
        """
        chunks = _chunks(list(items), MAX_BATCH_SIZE)
        keys = _batch_keys(idempotency_key, len(chunks))
        results: list[M] = []
        for chunk, chunk_key in zip(chunks, keys, strict=True):
            results.extend(self._write_batch(method, endpoint, key, model, chunk, chunk_key, params=params))
        return results

    def _write_batch(
        self,
        method: Literal["POST", "PUT"],
        endpoint: str,
        key: str,
        model: type[M],
        items: Sequence[M],
        idempotency_key: str | None,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> list[M]:
        if not items:
            return []
        if len(items) > MAX_BATCH_SIZE:
            raise ValueError(f"at most {MAX_BATCH_SIZE} elements per batch, got {len(items)}")
        response = self._request(
            method,
            endpoint,
            path=path,
            params={**(params or {}), "summarizeErrors": "false"},
            body={key: [item.to_xero() for item in items]},
            idempotency_key=idempotency_key,
        )
        result = _parse_items(_json(response, endpoint), key, model, endpoint)
        if len(result) != len(items):
            raise XeroUnexpectedResponse(
                f"Xero answered {len(result)} {key} for {len(items)} sent",
                status=response.status_code,
                endpoint=endpoint,
            )
        return result

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        api: Literal["accounting", "identity"] = "accounting",
    ) -> httpx.Response:
        """Send one logical call, with retries. Returns the 2xx/304 response; raises a
        ``XeroError`` otherwise (404: ``XeroNotFound``)."""
        method = method.upper()
        url = (self._accounting_url if api == "accounting" else self._identity_url) + endpoint.format(
            **{k: quote(v, safe="") for k, v in (path or {}).items()}
        )
        if params and url_length(url, params) > MAX_URL_LENGTH:
            # Xero would answer 404 as if the resource did not exist: never send it (fit_in_url).
            raise ValueError(f"{method} {endpoint}: URL longer than {MAX_URL_LENGTH} characters")
        send_headers = {"Accept": "application/json", **(headers or {})}
        if api == "accounting":
            send_headers["xero-tenant-id"] = self.tenant_id
        if method in _WRITE_METHODS:
            # One key per logical call, reused by every retry of it, so Xero applies it once.
            key = idempotency_key or uuid.uuid4().hex
            if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
                raise ValueError(f"Idempotency-Key longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
            send_headers["Idempotency-Key"] = key

        max_wait = self.config.max_inline_wait_seconds
        waited = 0.0
        failures = 0
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = self._tokens.access_token()
            response, transport_error = self._send(
                method,
                url,
                endpoint,
                api,
                params,
                body,
                {**send_headers, "Authorization": f"Bearer {token}"},
                attempt,
            )
            if response is None:
                failures += 1
                delay = self._backoff(failures)
                if failures >= self.config.max_attempts or waited + delay > max_wait:
                    raise XeroUnavailable(
                        f"Xero unreachable after {attempt} attempts ({transport_error})", endpoint=endpoint
                    )
                self._pause(delay, endpoint, attempt, None)
                waited += delay
                continue

            status = response.status_code
            if status < 300 or status == 304:
                return response
            if status == 401 and not refreshed:
                # TokenExpired (or revoked early): one forced refresh, then give up.
                refreshed = True
                self._tokens.force_refresh(token)
                continue
            if status == 429 or (status == 503 and "retry-after" in response.headers):
                failures += 1
                retry_after = _retry_after(response.headers)
                problem = response.headers.get("X-Rate-Limit-Problem")
                # A day-limit sleep could be hours: never in-process.
                if (
                    (problem or "").lower() == "day"
                    or failures >= self.config.max_attempts
                    or waited + retry_after > max_wait
                ):
                    raise XeroRateLimited(retry_after, problem, status=status, endpoint=endpoint)
                self._pause(retry_after, endpoint, attempt, status)
                waited += retry_after
                continue
            if status >= 500:
                failures += 1
                delay = self._backoff(failures)
                if failures >= self.config.max_attempts or waited + delay > max_wait:
                    raise XeroUnavailable(
                        f"Xero answered {status} after {attempt} attempts", status=status, endpoint=endpoint
                    )
                self._pause(delay, endpoint, attempt, status)
                waited += delay
                continue
            raise _client_error(response, endpoint)

    def _send(
        self,
        method: str,
        url: str,
        endpoint: str,
        api: str,
        params: Mapping[str, str] | None,
        body: Any,
        headers: dict[str, str],
        attempt: int,
    ) -> tuple[httpx.Response | None, str | None]:
        budgeted = api == "accounting"  # the identity API is not an organisation call
        if budgeted:
            self._budget.acquire()
        started = self._monotonic()
        response: httpx.Response | None = None
        error: str | None = None
        try:
            response = self._http.request(
                method, url, params=params, json=body, headers=headers, timeout=self.config.timeout_seconds
            )
        except httpx.TransportError as exc:  # timeouts, connection errors, protocol errors
            error = type(exc).__name__
        finally:
            if budgeted:
                self._budget.release()
        duration_ms = (self._monotonic() - started) * 1000
        if response is not None and budgeted:
            self._budget.observe(response.headers)
        if self._on_call is not None:
            rh = response.headers if response is not None else httpx.Headers()
            self._on_call(
                XeroCall(
                    method=method,
                    endpoint=endpoint,
                    status=response.status_code if response is not None else None,
                    duration_ms=duration_ms,
                    attempt=attempt,
                    min_remaining=_int_header(rh, "X-MinLimit-Remaining"),
                    day_remaining=_int_header(rh, "X-DayLimit-Remaining"),
                    app_min_remaining=_int_header(rh, "X-AppMinLimit-Remaining"),
                    rate_limit_problem=rh.get("X-Rate-Limit-Problem"),
                    error=error,
                )
            )
        return response, error

    def _backoff(self, failures: int) -> float:
        # Full jitter: spreads retries of many workers hitting the same outage.
        return self._rand() * min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2.0 ** (failures - 1))

    def _pause(self, seconds: float, endpoint: str, attempt: int, status: int | None) -> None:
        logger.info(
            "retrying Xero call",
            extra={
                "endpoint": endpoint,
                "attempt": attempt,
                "status": status,
                "delay_seconds": round(seconds, 3),
            },
        )
        self._sleep(seconds)


# --- parsing helpers ------------------------------------------------------------------------------


def _loads(content: bytes) -> Any:
    """JSON with every fractional number as ``Decimal`` (bytes: json detects UTF-8/16/32 and a BOM).

    Raises ValueError (JSONDecodeError, UnicodeDecodeError) for a body that is not JSON.
    """
    return json.loads(content, parse_float=Decimal)


def _json(response: httpx.Response, endpoint: str) -> Any:
    try:
        return _loads(response.content)
    except ValueError:
        # E.g. a maintenance page served with 200: treat as an outage, not as data.
        raise XeroUnavailable(
            f"Xero answered {response.status_code} with a non-JSON body",
            status=response.status_code,
            endpoint=endpoint,
        ) from None


def _query(**values: str | int | bool | Sequence[str] | None) -> dict[str, str]:
    """Xero query parameters: None, False, "" and empty lists are left out, True is "true" and a
    list is comma-joined."""
    params: dict[str, str] = {}
    for name, value in values.items():
        if value is None or value is False or value == "" or (isinstance(value, Sequence) and not value):
            continue
        if value is True:
            params[name] = "true"
        elif isinstance(value, str | int):
            params[name] = str(value)
        else:
            params[name] = ",".join(value)
    return params


def _every_page(fetch: Callable[[int], list[M]], page_size: int) -> Iterator[M]:
    """Pages 1, 2, ... of a list read, lazily (each page is one budgeted call), until a short one."""
    page = 1
    while True:
        batch = fetch(page)
        yield from batch
        if len(batch) < page_size:
            return
        page += 1


def _parse_items(body: Any, key: str, model: type[M], endpoint: str) -> list[M]:
    items = body.get(key) if isinstance(body, dict) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise XeroUnavailable(f"unexpected {key} body", endpoint=endpoint)
    try:
        return [model.model_validate(item) for item in items]
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) for err in exc.errors(include_input=False)})
        raise XeroUnexpectedResponse(
            f"Xero {key} did not match the model: {', '.join(fields)}", endpoint=endpoint
        ) from None


def _raw_items(body: Any, key: str, endpoint: str) -> list[dict[str, Any]]:
    items = body.get(key) if isinstance(body, dict) else None
    if items is None:
        return []
    if not isinstance(items, list):
        raise XeroUnavailable(f"unexpected {key} body", endpoint=endpoint)
    return [item for item in items if isinstance(item, dict)]


def _raise_element_errors(errors: Any, endpoint: str) -> None:
    """A single-element write that came back 200 with ``ValidationErrors``: raise it like a 400."""
    messages = [
        str(e.get("Message") if isinstance(e, dict) else getattr(e, "Message", "")) for e in errors or []
    ]
    messages = [m for m in messages if m]
    if messages:
        raise XeroValidationError(
            f"Xero validation failed: {'; '.join(messages[:5])}",
            messages=messages,
            status=200,
            endpoint=endpoint,
        )


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _batch_keys(key: str | None, count: int) -> list[str | None]:
    """One Idempotency-Key per batch, checked before the first batch is sent (a too-long derived
    key must not fail half-way through a call)."""
    if key is None or count <= 1:
        return [key] * count
    keys: list[str | None] = [f"{key}-{i}" for i in range(1, count + 1)]
    if any(len(k or "") > MAX_IDEMPOTENCY_KEY_LENGTH for k in keys):
        raise ValueError(
            f"Idempotency-Key longer than {MAX_IDEMPOTENCY_KEY_LENGTH} characters once numbered per batch"
        )
    return keys


def _unitdp(unitdp4: bool) -> dict[str, str]:
    # Without it Xero rounds UnitAmount to 2 dp on the way in and out.
    return {"unitdp": "4"} if unitdp4 else {}


def _require_uuid(value: str, what: str) -> None:
    if not _UUID.match(value or ""):
        raise ValueError(f"{what} must be a Xero GUID, got {value!r}")


def _history_endpoint(resource: str, record_id: str) -> str:
    field = _HISTORY_ID_FIELD.get(resource)
    if field is None:
        raise ValueError(f"history is kept here for {sorted(_HISTORY_ID_FIELD)}, not {resource!r}")
    _require_uuid(record_id, f"{resource} id")
    return f"/{resource}/{{{field}}}/History"


def _client_error(response: httpx.Response, endpoint: str) -> XeroError:
    status = response.status_code
    try:
        body: Any = _loads(response.content)
    except ValueError:
        body = None
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("Message") or body.get("Detail") or body.get("Title") or "")[:500]
    if status == 400 and isinstance(body, dict) and body.get("Type") == "ValidationException":
        elements = [e for e in body.get("Elements") or [] if isinstance(e, dict)]
        messages = [m for e in elements for m in _validation_messages(e)] or ([detail] if detail else [])
        return XeroValidationError(
            f"Xero validation failed: {'; '.join(messages[:5]) or detail}",
            messages=messages,
            elements=elements,
            status=status,
            endpoint=endpoint,
        )
    if status == 401 and "tokenexpired" in detail.replace(" ", "").lower():
        return XeroTokenRejected(
            f"Xero refused a just-refreshed token ({status}): {detail}; retried later",
            status=status,
            endpoint=endpoint,
        )
    if status in (401, 403):
        return XeroAuthError(
            f"Xero refused the request ({status}): {detail or 'not authorised'}; "
            "check the connection and the tenant id",
            status=status,
            endpoint=endpoint,
        )
    if status == 404:
        return XeroNotFound(f"Xero has no such resource: {endpoint}", status=status, endpoint=endpoint)
    return XeroRequestError(
        f"Xero refused the request ({status}): {detail}", status=status, endpoint=endpoint
    )


def _validation_messages(node: Any) -> Iterator[str]:
    """Every ``ValidationErrors[].Message`` in an element, including nested ones (line items)."""
    if isinstance(node, dict):
        for err in node.get("ValidationErrors") or []:
            if isinstance(err, dict) and err.get("Message"):
                yield str(err["Message"])
        for key, value in node.items():
            if key != "ValidationErrors" and isinstance(value, dict | list):
                yield from _validation_messages(value)
    elif isinstance(node, list):
        for item in node:
            yield from _validation_messages(item)


def _retry_after(headers: httpx.Headers) -> float:
    raw = headers.get("Retry-After")
    if raw is None:
        return _DEFAULT_RETRY_AFTER_SECONDS
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return _DEFAULT_RETRY_AFTER_SECONDS
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    try:
        value = headers.get(name)
        return int(value) if value is not None else None
    except ValueError:
        return None
