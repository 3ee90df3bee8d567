"""Client for Ignition's Reporting API (read-only REST/JSON, OAuth bearer tokens).

Every call goes through ``_request``: bearer auth, retries with backoff and jitter for 5xx and
transport faults, a bounded wait on 429, and typed errors. Resources are thin wrappers over
``_get_record`` and ``_iter_records``, so invoices and payments are one method each.

Shapes (``{"data": [...], "meta": {"pagination": {...}}}``, the incremental parameter, the
rate-limit reset header) come from integrators' code, not from published docs: they are kept here
and in ``IgnitionConfig`` so they can be corrected in one place.

Ignition's own defaults hide data (integration-facts, "Defaults that hide data"): invoices are
listed for the current month only unless ``date_from``/``date_to`` say otherwise, and records in a
terminal state (archived clients, cancelled payments, ...) only when ``state=`` names that state.
So every read here, listing or get-one, sends an explicit wide date window, and every listing reads
each terminal state in a pass of its own, merged with the default pass in the API's order.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.config import IgnitionConfig
from shared.errors import LimitWait, PermanentError, TransientSyncError
from shared.ignition import exact_json
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment

logger = logging.getLogger(__name__)

RecordT = TypeVar("RecordT", bound=BaseModel)
# Which listings a read makes: the default one, the terminal-state ones, or all (the default).
Passes = Literal["all", "default", "terminal"]

# Reset headers above this are epoch seconds; below it, seconds to wait (APIs use both readings).
_EPOCH_THRESHOLD = 1_000_000_000
_DEFAULTS = IgnitionConfig()
# Larger pages may be refused (integration-facts); IgnitionConfig enforces the same bound.
MAX_PAGE_LIMIT = 250


class IgnitionApiError(Exception):
    """A Reporting API call failed. ``status`` is the HTTP status, or None for a transport fault.
    Each one raised is also transient or permanent (``shared/errors.py``): whether a later retry
    can succeed, which the sync's retry policy reads."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class IgnitionAuthError(IgnitionApiError, PermanentError):
    """401/403: the access token is invalid, expired or lacks the ``reporting`` scope."""


class IgnitionRateLimited(IgnitionApiError, LimitWait):
    """429 and the reset is further away than the client may wait in-process."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Ignition rate limit reached; retry in {retry_after:.0f} s", status=429)
        self.retry_after = retry_after


class IgnitionUnavailable(IgnitionApiError, TransientSyncError):
    """5xx or a transport fault that outlasted every retry: transient, retry later."""


class IgnitionResponseError(IgnitionApiError, PermanentError):
    """An unexpected status or a body that does not have the documented shape."""


class RequestBudget(Protocol):
    """The practice's shared request budget (``shared/ignition/budget.py``)."""

    def acquire(self) -> None:
        """Take one request, or raise an ``IgnitionRateLimited`` without making it."""
        ...


class _Pagination(BaseModel):
    model_config = ConfigDict(extra="ignore")
    has_more: bool = False
    next_cursor: str | None = None
    limit: int | None = None


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")
    pagination: _Pagination = _Pagination()


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    data: list[dict[str, Any]]
    meta: _Meta = _Meta()


def _merge_payment(seen: IgnitionPayment, other: IgnitionPayment) -> IgnitionPayment:
    """One payment listed twice: the newer copy, or for equal versions the first copy with the
    second's invoice allocations added (an allocation repeated on both copies is kept once)."""
    if other.version_at != seen.version_at:
        return other if other.version_at > seen.version_at else seen
    known = {allocation.slug for allocation in seen.invoices}
    extra = [allocation for allocation in other.invoices if allocation.slug not in known]
    if not extra:
        return seen
    return seen.model_copy(update={"invoices": [*seen.invoices, *extra]})


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("updated_from must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _version(record: BaseModel) -> datetime:
    """The change time listings are ordered by: updated_at, or created_at for a payment without."""
    version = getattr(record, "updated_at", None) or getattr(record, "created_at", None)
    if not isinstance(version, datetime):
        raise TypeError(f"{type(record).__name__} has no updated_at or created_at")
    return version


def _order(record: BaseModel) -> tuple[datetime, str]:
    return _version(record), str(getattr(record, "slug", ""))


class IgnitionReportingClient:
    def __init__(
        self,
        base_url: str,
        access_token: Callable[[], str],
        *,
        http: httpx.Client | None = None,
        page_limit: int = _DEFAULTS.page_limit,
        updated_param: str = _DEFAULTS.updated_param,
        dated_resources: Collection[str] = tuple(_DEFAULTS.dated_resources),
        window_start: date = _DEFAULTS.window_start,
        window_ahead_days: int = _DEFAULTS.window_ahead_days,
        terminal_states: Mapping[str, Sequence[str]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rate_limit_reset_header: str = "X-RateLimit-Reset",
        max_wait_seconds: float = 20.0,
        max_attempts: int = 4,
        backoff_base_seconds: float = 0.5,
        backoff_cap_seconds: float = 8.0,
        timeout_seconds: float = 20.0,
        jitter: Callable[[float, float], float] = random.uniform,
        force_refresh: Callable[[str], str] | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        if not 1 <= page_limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page_limit must be between 1 and {MAX_PAGE_LIMIT}")
        self._base_url = base_url.rstrip("/")
        self._access_token = access_token
        # Given the rejected token, returns a fresh one (the token provider's force_refresh): an
        # access token can die before its stated expiry (revoked, clock skew).
        self._force_refresh = force_refresh
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout_seconds)
        self._page_limit = page_limit
        self._updated_param = updated_param
        self._dated = frozenset(dated_resources)
        self._window_start = window_start
        self._window_ahead = timedelta(days=window_ahead_days)
        terminal = _DEFAULTS.terminal_states if terminal_states is None else terminal_states
        self._terminal = {resource: tuple(states) for resource, states in terminal.items()}
        self._sleep = sleep
        self._clock = clock
        self._reset_header = rate_limit_reset_header
        # Longer waits go back to the caller (IgnitionRateLimited) so a Lambda is not billed for
        # sleeping through an hourly window.
        self._max_wait = max_wait_seconds
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base_seconds
        self._backoff_cap = backoff_cap_seconds
        self._jitter = jitter
        # None: nothing else shares the practice's hourly limit (tests, a one-off script).
        self._budget = budget

    @classmethod
    def from_config(
        cls, config: IgnitionConfig, access_token: Callable[[], str], **kwargs: Any
    ) -> IgnitionReportingClient:
        settings: dict[str, Any] = {
            "page_limit": config.page_limit,
            "updated_param": config.updated_param,
            "dated_resources": tuple(config.dated_resources),
            "window_start": config.window_start,
            "window_ahead_days": config.window_ahead_days,
            "terminal_states": config.terminal_states,
        }
        return cls(config.api_url, access_token, **{**settings, **kwargs})

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- resources ---------------------------------------------------------------------------

    def get_client(self, slug: str) -> IgnitionClient | None:
        """The client, or None when Ignition does not know the slug (404)."""
        return self._get_record("clients", slug, IgnitionClient)

    def iter_clients(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionClient]:
        """Every client (updated at or after ``updated_from``), page by page."""
        return self._iter_records("clients", IgnitionClient, updated_from, passes=passes)

    def get_invoice(self, slug: str) -> IgnitionInvoice | None:
        """The invoice, or None when Ignition does not know the slug (404)."""
        return self._get_record("invoices", slug, IgnitionInvoice)

    def iter_invoices(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionInvoice]:
        """Every invoice (updated at or after ``updated_from``), page by page."""
        return self._iter_records("invoices", IgnitionInvoice, updated_from, passes=passes)

    def get_payment(self, slug: str) -> IgnitionPayment | None:
        """The payment, or None when Ignition does not know the slug (404)."""
        return self._get_record("payments", slug, IgnitionPayment)

    def iter_payments(
        self, updated_from: datetime | None = None, *, passes: Passes = "all"
    ) -> Iterator[IgnitionPayment]:
        """Every payment (changed at or after ``updated_from``), each slug once per iteration.

        Ignition may list one payment on several pages (integration-facts), and nobody has said
        whether each copy carries all of its invoices or only some. So the whole listing is read
        first and copies are merged: the newest copy wins, and copies of that same version pool
        their invoice allocations. Payments are few next to invoices, so holding one listing in
        memory is cheap; yielding a partial payment first would be worse.
        """
        merged: dict[str, IgnitionPayment] = {}
        listing = self._iter_records(
            "payments", IgnitionPayment, updated_from, drop_repeats=False, passes=passes
        )
        for payment in listing:
            seen = merged.get(payment.slug)
            merged[payment.slug] = payment if seen is None else _merge_payment(seen, payment)
        # dicts keep first-seen order, i.e. the API's order (oldest change first).
        yield from merged.values()

    # -- generic record access ---------------------------------------------------------------

    def _scope(self, resource: str) -> dict[str, str]:
        """The parameters that keep Ignition's defaults from hiding records: an explicit date
        window for dated resources (Ignition's own is the current month or week)."""
        if resource not in self._dated:
            return {}
        today = datetime.fromtimestamp(self._clock(), tz=UTC).date()
        return {
            "date_from": self._window_start.isoformat(),
            "date_to": (today + self._window_ahead).isoformat(),
        }

    def _get_record(self, resource: str, slug: str, model: type[RecordT]) -> RecordT | None:
        """The record by slug. A record in a terminal state may be found only when state= names
        it, so a miss asks once per terminal state before answering None (misses are rare)."""
        path = f"/reporting/{resource}/{quote(slug, safe='')}"
        scope = self._scope(resource)
        for state in (None, *self._terminal.get(resource, ())):
            params = scope if state is None else {**scope, "state": state}
            body = self._request(path, params, allow_404=True)
            if body is None:
                continue
            # Single records may or may not be wrapped in {"data": ...}; accept both readings.
            record = body.get("data", body) if isinstance(body, dict) else body
            return self._validate(model, record, resource)
        return None

    def _iter_records(
        self,
        resource: str,
        model: type[RecordT],
        updated_from: datetime | None,
        *,
        drop_repeats: bool = True,
        passes: Passes = "all",
    ) -> Iterator[RecordT]:
        """Every record: the default pass and one pass per terminal state, merged in the API's
        order (oldest change first, so a caller may resume from the last change it saw).

        With ``drop_repeats`` a copy of a version already yielded (the same record on two pages,
        or in two passes) is dropped, so each slug comes once per version; a newer copy, changed
        while the read ran, still comes, as a single pass would yield it.
        """
        base: dict[str, str] = {"limit": str(self._page_limit), **self._scope(resource)}
        if updated_from is not None:
            base[self._updated_param] = _iso(updated_from)
        # A caller that polls often may read the terminal states less often than the rest.
        listings = [self._pages(resource, model, base)] if passes != "terminal" else []
        if passes != "default":
            listings += [
                self._pages(resource, model, {**base, "state": state})
                for state in self._terminal.get(resource, ())
            ]
        if not listings:
            return
        records = listings[0] if len(listings) == 1 else heapq.merge(*listings, key=_order)
        if not drop_repeats:
            yield from records
            return
        yielded: dict[str, datetime] = {}
        for record in records:
            version, slug = _order(record)
            if slug in yielded and version <= yielded[slug]:
                continue
            yielded[slug] = version
            yield record

    def _pages(self, resource: str, model: type[RecordT], query: dict[str, str]) -> Iterator[RecordT]:
        """One listing, page by page, with the same query on every page."""
        params = dict(query)
        seen_cursors: set[str] = set()
        while True:
            body = self._request(f"/reporting/{resource}", params)
            try:
                page = _Page.model_validate(body)
            except ValidationError:
                raise IgnitionResponseError(f"{resource} page has an unexpected shape") from None
            for record in page.data:
                yield self._validate(model, record, resource)
            cursor = page.meta.pagination.next_cursor
            if not page.meta.pagination.has_more:
                return
            # A server that repeats a cursor would otherwise loop forever.
            if not cursor or cursor in seen_cursors:
                raise IgnitionResponseError(f"{resource} pagination has_more without a new cursor")
            seen_cursors.add(cursor)
            params["cursor"] = cursor

    @staticmethod
    def _validate(model: type[RecordT], record: Any, resource: str) -> RecordT:
        try:
            return model.model_validate(record)
        except ValidationError as exc:
            slug = record.get("slug") if isinstance(record, dict) else None
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise IgnitionResponseError(f"{resource} record {slug!r} is invalid: {fields}") from None

    # -- the one request path ----------------------------------------------------------------

    def _request(self, path: str, params: dict[str, str], *, allow_404: bool = False) -> Any:
        url = f"{self._base_url}{path}"
        attempt = 0
        token: str | None = None
        refreshed = False
        while True:
            attempt += 1
            if self._budget is not None:
                # Every attempt is a request Ignition counts, retries included; taken before the
                # token, so a caller refused by the budget costs nothing else.
                self._budget.acquire()
            if token is None:
                token = self._access_token()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            try:
                response = self._http.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:  # timeouts, connection resets, DNS
                if attempt >= self._max_attempts:
                    raise IgnitionUnavailable(f"Ignition unreachable: {type(exc).__name__}") from None
                self._backoff(attempt, path, reason=type(exc).__name__)
                continue

            status = response.status_code
            if status == 404 and allow_404:
                return None
            if status == 401 and self._force_refresh is not None and not refreshed:
                logger.info("ignition refused the access token; refreshing once", extra={"path": path})
                token, refreshed = self._force_refresh(token), True
                attempt -= 1
                continue
            if status in (401, 403):
                raise IgnitionAuthError(f"Ignition refused the access token ({status})", status=status)
            if status == 429:
                wait = self._retry_after(response)
                if wait > self._max_wait or attempt >= self._max_attempts:
                    logger.warning(
                        "ignition rate limited", extra={"path": path, "retry_after": wait, "attempt": attempt}
                    )
                    raise IgnitionRateLimited(wait)
                logger.info("ignition rate limited, waiting", extra={"path": path, "retry_after": wait})
                self._sleep(wait)
                continue
            if status >= 500:
                if attempt >= self._max_attempts:
                    raise IgnitionUnavailable(f"Ignition answered {status} {attempt} times", status=status)
                self._backoff(attempt, path, reason=str(status))
                continue
            if status >= 400:
                raise IgnitionResponseError(f"Ignition answered {status} for {path}", status=status)
            try:
                # Amounts sent as JSON numbers become Decimals, never floats.
                return exact_json.loads(response.content)
            except ValueError:
                raise IgnitionResponseError(f"Ignition answered non-JSON for {path}", status=status) from None

    def _backoff(self, attempt: int, path: str, *, reason: str) -> None:
        # Full jitter: spreads retries from concurrent Lambdas instead of synchronising them.
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = self._jitter(0.0, ceiling)
        logger.warning(
            "ignition request failed, retrying",
            extra={"path": path, "reason": reason, "attempt": attempt, "delay": round(delay, 3)},
        )
        self._sleep(delay)

    def _retry_after(self, response: httpx.Response) -> float:
        """Seconds until the rate-limit window resets, from the configured header or Retry-After."""
        for name in (self._reset_header, "Retry-After"):
            value = response.headers.get(name)
            if value is None:
                continue
            seconds = self._seconds_until(value.strip())
            if seconds is not None:
                return max(0.0, seconds)
        # No usable header: one backoff ceiling is a guess that neither hammers nor stalls.
        return self._backoff_cap

    def _seconds_until(self, value: str) -> float | None:
        try:
            number = float(value)
        except ValueError:
            try:  # Retry-After may be an HTTP date
                return parsedate_to_datetime(value).timestamp() - self._clock()
            except (TypeError, ValueError):
                return None
        return number - self._clock() if number > _EPOCH_THRESHOLD else number
