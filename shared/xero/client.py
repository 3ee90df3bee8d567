"""The Xero Accounting API client: one request path for every call.

``_request`` does everything a call needs: token (refresh once on 401), ``xero-tenant-id``,
the call budget around the wire, ``Idempotency-Key`` on writes (one key per logical call, reused by
its retries), retries (429 with ``Retry-After``, 5xx and transport errors with exponential backoff
and full jitter), error mapping (``shared.xero.errors``) and the ``on_call`` record for metrics.
Resource methods (contacts now; invoices, payments, history and tax rates next) are thin: build
the query, pick a model, call ``_get_collection`` / ``_write_batch``.

In-process waiting is bounded by ``XeroConfig.max_inline_wait_seconds`` in total per logical call;
anything longer is raised as a transient error so the message goes back to the queue.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from shared.config import XeroConfig
from shared.models.xero import Contact, XeroModel
from shared.oauth import TokenProvider
from shared.xero.budget import CallBudget
from shared.xero.errors import (
    XeroAuthError,
    XeroError,
    XeroNotFound,
    XeroRateLimited,
    XeroRequestError,
    XeroUnavailable,
    XeroValidationError,
)

logger = logging.getLogger(__name__)

ACCOUNTING_PATH = "/api.xro/2.0"
# Xero recommends about 50 elements per batch (and caps bodies at 3.5 MB).
MAX_BATCH_SIZE = 50
MAX_IDEMPOTENCY_KEY_LENGTH = 128
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_BACKOFF_BASE_SECONDS = 0.5
_BACKOFF_CAP_SECONDS = 8.0
_DEFAULT_RETRY_AFTER_SECONDS = 60.0
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

M = TypeVar("M", bound=XeroModel)


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


class _Collection(BaseModel):
    """Any Xero list envelope: ``{"Contacts": [...], "pagination": {...}, ...}``."""

    model_config = {"extra": "allow"}


# --- where clauses ------------------------------------------------------------------------------

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")


def where_eq(field: str, value: str | bool | int | UUID) -> str:
    """``Field=="value"`` for Xero's ``where`` parameter, safe for any value.

    Xero's filter is a Dynamic LINQ expression: a double quote inside a string literal is written
    twice (backslashes are not escapes). This is how Dynamic LINQ's tokenizer reads literals; Xero's
    own documentation does not say, so a name containing ``"`` should also be matched another way
    (ContactNumber, IDs) by callers that can.
    """
    if not _FIELD.match(field):
        raise ValueError(f"not a Xero field name: {field!r}")
    if isinstance(value, bool):
        return f"{field}=={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{field}=={value}"
    if isinstance(value, UUID):
        return f'{field}==Guid("{value}")'
    return f'{field}=="{value.replace(chr(34), chr(34) * 2)}"'


def where_any(*clauses: str) -> str:
    """OR-join clauses (each parenthesised); empty clauses are dropped."""
    return _join(" OR ", clauses)


def where_all(*clauses: str) -> str:
    """AND-join clauses (each parenthesised); empty clauses are dropped."""
    return _join(" AND ", clauses)


def _join(operator: str, clauses: Sequence[str]) -> str:
    kept = [c for c in clauses if c]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return operator.join(f"({c})" for c in kept)


def format_if_modified_since(value: datetime) -> str:
    """Xero wants UTC ``yyyy-MM-ddTHH:mm:ss`` (no fraction). Truncating to the second can only
    return a record again, never skip one."""
    if value.tzinfo is None:
        raise ValueError("modified_since must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


# --- the client ---------------------------------------------------------------------------------


class XeroClient:
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
        ids: Sequence[str] = (),
        page: int | None = None,
        page_size: int | None = None,
        include_archived: bool = False,
        summary_only: bool = False,
        modified_since: datetime | None = None,
    ) -> list[Contact]:
        """One page of ``GET /Contacts`` (Xero's default order: UpdatedDateUTC, ContactID)."""
        params: dict[str, str] = {}
        if where:
            params["where"] = where
        if ids:
            params["IDs"] = ",".join(ids)
        if page is not None:
            params["page"] = str(page)
        if page_size is not None:
            params["pageSize"] = str(page_size)
        if include_archived:
            params["includeArchived"] = "true"
        if summary_only:
            params["summaryOnly"] = "true"
        return self._get_collection("/Contacts", "Contacts", Contact, params, modified_since)

    def iter_contacts(
        self,
        where: str | None = None,
        *,
        ids: Sequence[str] = (),
        page_size: int = 100,
        include_archived: bool = False,
        summary_only: bool = False,
        modified_since: datetime | None = None,
    ) -> Iterator[Contact]:
        """Every page of ``GET /Contacts``, lazily (each page is one budgeted call)."""
        page = 1
        while True:
            batch = self.find_contacts(
                where,
                ids=ids,
                page=page,
                page_size=page_size,
                include_archived=include_archived,
                summary_only=summary_only,
                modified_since=modified_since,
            )
            yield from batch
            if len(batch) < page_size:
                return
            page += 1

    def get_contact(self, contact_id_or_number: str) -> Contact | None:
        """``GET /Contacts/{ContactID}`` or ``/Contacts/{ContactNumber}``; None when Xero has none."""
        if not contact_id_or_number:
            raise ValueError("contact id or number is required")
        template = (
            "/Contacts/{ContactID}" if _UUID.match(contact_id_or_number) else "/Contacts/{ContactNumber}"
        )
        field = "ContactID" if template.endswith("{ContactID}") else "ContactNumber"
        try:
            response = self._request("GET", template, path={field: contact_id_or_number})
        except XeroNotFound:
            return None
        if response.status_code == 304:
            return None
        contacts = _parse_items(_json(response, template), "Contacts", Contact, template)
        return contacts[0] if contacts else None

    def save_contacts(self, contacts: Sequence[Contact], idempotency_key: str | None = None) -> list[Contact]:
        """``POST /Contacts?summarizeErrors=false``: create, or update by ContactID. One Contact
        back per element, in order, each with its own ``ValidationErrors``."""
        return self._write_batch("POST", "/Contacts", "Contacts", Contact, contacts, idempotency_key)

    def create_contacts(
        self, contacts: Sequence[Contact], idempotency_key: str | None = None
    ) -> list[Contact]:
        """``PUT /Contacts?summarizeErrors=false``: create only (an existing Name fails per element)."""
        return self._write_batch("PUT", "/Contacts", "Contacts", Contact, contacts, idempotency_key)

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

    def _write_batch(
        self,
        method: Literal["POST", "PUT"],
        endpoint: str,
        key: str,
        model: type[M],
        items: Sequence[M],
        idempotency_key: str | None,
        path: Mapping[str, str] | None = None,
    ) -> list[M]:
        if not items:
            return []
        if len(items) > MAX_BATCH_SIZE:
            raise ValueError(f"at most {MAX_BATCH_SIZE} elements per batch, got {len(items)}")
        response = self._request(
            method,
            endpoint,
            path=path,
            params={"summarizeErrors": "false"},
            body={key: [item.to_xero() for item in items]},
            idempotency_key=idempotency_key,
        )
        result = _parse_items(_json(response, endpoint), key, model, endpoint)
        if len(result) != len(items):
            raise XeroError(
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


def _json(response: httpx.Response, endpoint: str) -> Any:
    try:
        return response.json()
    except ValueError:
        # E.g. a maintenance page served with 200: treat as an outage, not as data.
        raise XeroUnavailable(
            f"Xero answered {response.status_code} with a non-JSON body",
            status=response.status_code,
            endpoint=endpoint,
        ) from None


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
        raise XeroError(
            f"Xero {key} did not match the model: {', '.join(fields)}", endpoint=endpoint
        ) from None


def _client_error(response: httpx.Response, endpoint: str) -> XeroError:
    status = response.status_code
    try:
        body: Any = response.json()
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
