"""A stateful emulator of Ignition for the local sandbox and the tests.

What it serves (``IgnitionEmulator.app`` is a Flask/WSGI app):

* Reporting API under ``/external/api/v1/reporting/<resource>`` for ``clients``, ``invoices`` and
  ``payments``: list with cursor pagination (``limit`` 1..250, default 100; ``cursor``; the
  incremental parameter, ``updated_from`` unless configured otherwise; ordered by ``updated_at`` -
  or ``created_at`` for a payment without one - then ``slug``, so cursors stay stable while
  records change) and get-one by slug. Bearer auth, and a per-practice fixed-window rate limit
  answered with 429 and a reset header.
* The defaults that hide data, as an integrator observed them live (integration-facts, "Defaults
  that hide data"): invoices outside ``date_from``..``date_to`` (on ``date``; the current month
  when not given) and records in a terminal state (archived clients, cancelled payments, ...)
  unless ``state=`` names it are left out, of listings and of get-one alike.
* OAuth 2.0: ``GET /oauth2/authorize`` (auto-approves), ``POST /oauth2/token`` (authorization_code,
  refresh_token with single-use rotating refresh tokens, 1 h access tokens by the shared ``Clock``),
  ``POST /oauth2/revoke``.
* Admin under ``/_emulator``: put records (which delivers a signed ``<type>.created|updated``
  webhook, synchronously so tests are deterministic; ``?deliver=false`` stores silently,
  ``?payload=id`` sends only the slug, ``?payload=ref`` the slug and ``client.slug``), redeliver or
  send arbitrary webhooks, move the clock, inspect and reset state.

Records are validated with the ``shared.models.ignition`` models (400 with the reason) but not
against each other: an invoice for an unknown client or a payment for an unknown invoice is stored,
as Ignition is the source of truth and the sync must cope. JSON goes in and out through
``shared.ignition.exact_json``: an amount given as a string stays that string, one given as a JSON
number stays that exact number token; nothing passes through a float.

Resources are generic (``RESOURCES``): invoices and payments are one ``ResourceSpec`` each. Every
webhook goes out through ``_transmit``, the one place a fault profile (duplicate, reorder, drop)
hooks in. The wire details mirror what ``shared/ignition`` assumes, and sign with its
``sign_webhook``, so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

import httpx
from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError

from sandbox.clock import Clock
from sandbox.faults import WebhookFaultProfile, WebhookFaults
from shared.config import WebhookVerification
from shared.ignition import exact_json
from shared.ignition.webhook import sign_webhook
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment

logger = logging.getLogger(__name__)

API_PREFIX = "/external/api/v1"
ACCESS_TOKEN_TTL = 3600
AUTH_CODE_TTL = 600
# "Page limit 250 is known to work; larger values may be refused" (integration-facts): the stricter
# reading refuses them, with 400 like every other bad query parameter here (no status is known).
MAX_LIMIT = 250
DEFAULT_LIMIT = 100
# The incremental parameter is "updated_from" in one integrator's code and "updated_since" in
# another's (integration-facts). The emulator serves one of them and refuses the other with 400:
# stricter than a server that ignores unknown parameters (which would answer a silent full read,
# every poll), so a client configured with the wrong name fails at once instead of burning the
# practice's hourly request budget unnoticed.
INCREMENTAL_PARAMS = ("updated_from", "updated_since")
# Left out unless state= names them (integration-facts, "Defaults that hide data", from
# Motta-Financial/v0-motta-hub lib/ignition/sync.ts: archived clients, cancelled payments). Voided
# invoices are not named there; the stricter reading hides them too.
TERMINAL_STATES: dict[str, frozenset[str]] = {
    "clients": frozenset({"archived"}),
    "invoices": frozenset({"void", "voided", "cancelled"}),
    "payments": frozenset({"cancelled"}),
}
TIMESTAMP_FIELDS = ("created_at", "updated_at")
WEBHOOK_PAYLOADS = ("full", "id", "ref")
DEFAULT_WEBHOOK = WebhookVerification()  # frozen, so one shared default is safe


@dataclass(frozen=True)
class ResourceSpec:
    """One Reporting API resource: URL segment, webhook event prefix, validating model."""

    name: str  # "clients": /reporting/clients, PUT /_emulator/clients/<slug>, state["clients"]
    event_prefix: str  # "client": client.created / client.updated
    model: type[BaseModel] | None = None
    # False for records Ignition may list without updated_at (payments): a put then keeps the
    # body's updated_at, or none, instead of stamping the clock's time.
    stamps_updated_at: bool = True
    # The record date date_from/date_to filter on, and the window used when they are not given.
    date_field: str | None = None
    default_window: Literal["month", "week"] | None = None


RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec("clients", "client", IgnitionClient),
    # "/reporting/invoices defaults date_from/date_to to the current month" (integration-facts,
    # Motta-Financial/v0-motta-hub lib/ignition/sync.ts): a full read returned this month only.
    ResourceSpec("invoices", "invoice", IgnitionInvoice, date_field="date", default_window="month"),
    ResourceSpec("payments", "payment", IgnitionPayment, stamps_updated_at=False),
)


class EmulatorAddon(Protocol):
    """Something mounted on the emulator's app with state of its own."""

    def snapshot(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...


@dataclass
class Delivery:
    """One webhook POST (an original send or a redelivery)."""

    event_id: str
    type: str
    slug: str | None
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    kind: Literal["original", "redelivery", "replay"] = "original"
    status: int | None = None
    response_body: str = ""
    error: str | None = None
    sent_at: str | None = None

    def again(self, headers: dict[str, str], kind: Literal["redelivery", "replay"]) -> Delivery:
        """The same event sent once more, signed anew (``headers``), with no answer yet."""
        return Delivery(self.event_id, self.type, self.slug, self.body, headers, kind)

    def summary(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "slug": self.slug,
            "kind": self.kind,
            "status": self.status,
            "body": self.response_body,
            "error": self.error,
            "sent_at": self.sent_at,
        }


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def iso(value: datetime) -> str:
    """Canonical UTC timestamp with milliseconds; fixed width, so string order is time order."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _BadRequest(f"{name} is not ISO-8601: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def default_window(today: date, kind: Literal["month", "week"]) -> tuple[date, date]:
    """The window a listing uses when the caller gives none: the current calendar month, or the
    current Monday-to-Sunday week (collections, per integration-facts)."""
    if kind == "week":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=6)
    start = today.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


def _parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _BadRequest(f"{name} is not a date (YYYY-MM-DD): {value!r}") from None


def _version(record: dict[str, Any]) -> str:
    """The timestamp lists are ordered and filtered by: updated_at, else created_at (payments)."""
    return str(record.get("updated_at") or record["created_at"])


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(exact_json.dumps(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": code, "message": message}, status, headers)


def _encode_cursor(record: dict[str, Any]) -> str:
    raw = json.dumps([_version(record), record["slug"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated_at, slug = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise _BadRequest("cursor is not one this server issued") from None
    if not isinstance(updated_at, str) or not isinstance(slug, str):
        raise _BadRequest("cursor is not one this server issued")
    return updated_at, slug


class IgnitionEmulator:
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        # Well-known sandbox credentials, not secrets: the emulator only ever runs locally.
        webhook_secret: str = "sandbox-webhook-secret",  # noqa: S107
        webhook: WebhookVerification = DEFAULT_WEBHOOK,
        client_id: str = "sandbox-ignition-client",
        client_secret: str = "sandbox-ignition-secret",  # noqa: S107
        rate_limit: int = 1_000,
        rate_limit_window_seconds: int = 3_600,
        rate_limit_reset_header: str = "X-RateLimit-Reset",
        webhook_transport: httpx.BaseTransport | None = None,
        delivery_timeout_seconds: float = 5.0,
        incremental_param: str = "updated_from",
        terminal_states: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        if incremental_param not in INCREMENTAL_PARAMS:
            raise ValueError(f"incremental_param must be one of {', '.join(INCREMENTAL_PARAMS)}")
        self._incremental_param = incremental_param
        self._terminal = {
            name: frozenset(states)
            for name, states in (TERMINAL_STATES if terminal_states is None else terminal_states).items()
        }
        self.clock = clock or Clock()
        self._webhook_secret = webhook_secret
        self._webhook = webhook
        self._client_id = client_id
        self._client_secret = client_secret
        self._rate_limit = rate_limit
        self._rate_window = rate_limit_window_seconds
        self._reset_header = rate_limit_reset_header
        # A transport lets tests deliver in-process; by default webhooks go over loopback HTTP.
        # Built on first delivery: an httpx.Client costs ~60 ms (TLS context) per emulator.
        self._transport = webhook_transport
        self._delivery_timeout = delivery_timeout_seconds
        self._http: httpx.Client | None = None
        self._specs = {spec.name: spec for spec in RESOURCES}
        # Chaos profile for deliveries (POST /_emulator/faults): duplicate, reorder, drop.
        self.faults = WebhookFaults()
        self._lock = threading.RLock()
        self._webhook_url: str | None = None
        # OAuth state survives reset(): a running sandbox keeps its connection.
        self._codes: dict[str, tuple[float, str | None]] = {}
        self._access_tokens: dict[str, float] = {}
        self._refresh_tokens: set[str] = set()
        # Parts mounted on this emulator (the MCP server, sandbox/ignition_mcp.py): their state is
        # listed in /_emulator/state and cleared by /_emulator/reset with the records'.
        self.addons: list[EmulatorAddon] = []
        self._reset_data()
        self.app = self._build_app()

    # -- public helpers (tests and the sandbox runner) ---------------------------------------

    def set_webhook_url(self, url: str | None) -> None:
        with self._lock:
            self._webhook_url = url

    def issue_token_set(self) -> dict[str, Any]:
        """A token set as if a practice admin had just completed the authorization-code flow."""
        with self._lock:
            return self._mint_tokens()

    def issue_authorization_code(self, redirect_uri: str | None = None) -> str:
        with self._lock:
            code = "code_" + secrets.token_urlsafe(16)
            self._codes[code] = (self.clock.time() + AUTH_CODE_TTL, redirect_uri)
            return code

    def state_snapshot(self) -> dict[str, Any]:
        with self._lock:
            snapshot: dict[str, Any] = {
                "now": iso(self.clock.now()),
                "webhook_url": self._webhook_url,
            }
            for name in self._specs:
                snapshot[name] = [dict(r) for r in self._ordered(name)]
            snapshot["deliveries"] = [d.summary() for d in self._deliveries]
            snapshot["requests"] = {"total": self._requests_total, "by_status": dict(self._by_status)}
            snapshot["rate_limit"] = self._rate_state()
            snapshot["faults"] = self.faults.snapshot()
        for addon in self.addons:
            snapshot.update(addon.snapshot())
        return snapshot

    def reset(self) -> None:
        with self._lock:
            self._reset_data()
        for addon in self.addons:
            addon.reset()

    # -- state --------------------------------------------------------------------------------

    def _reset_data(self) -> None:
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self._specs}
        self._deliveries: list[Delivery] = []
        self._requests_total = 0
        self._by_status: Counter[str] = Counter()
        self._window_start: float | None = None
        self._window_count = 0

    def _ordered(self, resource: str) -> list[dict[str, Any]]:
        return sorted(self._records[resource].values(), key=lambda r: (_version(r), r["slug"]))

    def _spec(self, resource: str) -> ResourceSpec:
        spec = self._specs.get(resource)
        if spec is None:
            raise _BadRequest(f"unknown resource {resource!r}", status=404, code="not_found")
        return spec

    # -- app ----------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("ignition_emulator")
        rules: list[tuple[str, str, Any]] = [
            (f"{API_PREFIX}/reporting/<resource>", "GET", self._list),
            (f"{API_PREFIX}/reporting/<resource>/<slug>", "GET", self._get),
            ("/oauth2/authorize", "GET", self._authorize),
            ("/oauth2/token", "POST", self._token),
            ("/oauth2/revoke", "POST", self._revoke),
            ("/_emulator/state", "GET", lambda: _json(self.state_snapshot())),
            ("/_emulator/reset", "POST", self._admin_reset),
            ("/_emulator/clock", "POST", self._admin_clock),
            ("/_emulator/tokens", "POST", lambda: _json(self.issue_token_set(), 201)),
            ("/_emulator/webhook-url", "PUT", self._admin_webhook_url),
            ("/_emulator/webhooks/send", "POST", self._admin_send),
            ("/_emulator/webhooks/redeliver", "POST", self._admin_redeliver),
            ("/_emulator/faults", "POST", self._admin_faults),
            ("/_emulator/faults", "GET", lambda: _json(self.faults.snapshot())),
            ("/_emulator/<resource>/<slug>", "PUT", self._admin_put),
        ]
        for rule, method, view in rules:
            app.add_url_rule(rule, endpoint=f"{method} {rule}", view_func=view, methods=[method])

        @app.errorhandler(_BadRequest)
        def _bad_request(exc: _BadRequest) -> Response:
            return _error(exc.code, str(exc), exc.status)

        @app.after_request
        def _count(response: Response) -> Response:
            if not request.path.startswith("/_emulator"):
                with self._lock:
                    self._requests_total += 1
                    self._by_status[str(response.status_code)] += 1
            return response

        return app

    # -- Reporting API ------------------------------------------------------------------------

    def _guard(self) -> Response | None:
        """Bearer auth, then the practice's rate limit. None when the request may proceed."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        now = self.clock.time()
        with self._lock:
            expires = self._access_tokens.get(token)
            if expires is None or expires <= now:
                return _error(
                    "unauthorized",
                    "access token missing, expired or revoked",
                    401,
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if self._window_start is None or now >= self._window_start + self._rate_window:
                self._window_start, self._window_count = now, 0
            if self._window_count >= self._rate_limit:
                reset_at = self._window_start + self._rate_window
                return _error(
                    "rate_limited",
                    f"more than {self._rate_limit} requests in {self._rate_window} s",
                    429,
                    {**self._rate_headers(), "Retry-After": str(math.ceil(reset_at - now))},
                )
            self._window_count += 1
        return None

    def _rate_state(self) -> dict[str, Any]:
        start = self._window_start if self._window_start is not None else self.clock.time()
        return {
            "limit": self._rate_limit,
            "remaining": max(0, self._rate_limit - self._window_count),
            "reset_at": math.ceil(start + self._rate_window),
        }

    def _rate_headers(self) -> dict[str, str]:
        state = self._rate_state()
        return {
            "X-RateLimit-Limit": str(state["limit"]),
            "X-RateLimit-Remaining": str(state["remaining"]),
            self._reset_header: str(state["reset_at"]),
        }

    def _list(self, resource: str) -> Response:
        spec = self._spec(resource)
        denied = self._guard()
        if denied is not None:
            return denied
        raw_limit = request.args.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise _BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
        limit = int(raw_limit)
        for other in INCREMENTAL_PARAMS:
            if other != self._incremental_param and other in request.args:
                raise _BadRequest(f"unknown parameter {other}; use {self._incremental_param}")
        since = request.args.get(self._incremental_param)
        since_at = _parse_time(since, self._incremental_param) if since else None
        cursor = request.args.get("cursor")
        after = _decode_cursor(cursor) if cursor else None
        visible = self._visibility(spec)
        with self._lock:
            records = [r for r in self._ordered(spec.name) if visible(r)]
            if since_at is not None:
                records = [r for r in records if _parse_time(_version(r), "updated_at") >= since_at]
            if after is not None:
                records = [r for r in records if (_version(r), r["slug"]) > after]
            page = [dict(r) for r in records[:limit]]
            has_more = len(records) > limit
            headers = self._rate_headers()
        body = {
            "data": page,
            "meta": {
                "pagination": {
                    "has_more": has_more,
                    "next_cursor": _encode_cursor(page[-1]) if has_more else None,
                    "limit": limit,
                }
            },
        }
        return _json(body, headers=headers)

    def _visibility(self, spec: ResourceSpec) -> Callable[[dict[str, Any]], bool]:
        """Whether a record is in this request's scope: its state (terminal states only when
        state= names them; state= lists that state alone) and, for dated resources, its date
        within date_from..date_to, each bound the current window's when not given."""
        wanted = request.args.get("state")
        terminal = self._terminal.get(spec.name, frozenset())
        window: tuple[date, date] | None = None
        if spec.date_field is not None and spec.default_window is not None:
            start, end = default_window(self.clock.now().date(), spec.default_window)
            raw_from, raw_to = request.args.get("date_from"), request.args.get("date_to")
            if raw_from is not None:
                start = _parse_date(raw_from, "date_from")
            if raw_to is not None:
                end = _parse_date(raw_to, "date_to")
            if start > end:
                raise _BadRequest("date_from is after date_to")
            window = (start, end)
        date_field = spec.date_field

        def visible(record: dict[str, Any]) -> bool:
            state = record.get("state")
            if wanted is not None and state != wanted:
                return False
            if wanted is None and state in terminal:
                return False
            if window is not None and date_field is not None:
                try:
                    on = date.fromisoformat(str(record.get(date_field)))
                except ValueError:
                    return False
                return window[0] <= on <= window[1]
            return True

        return visible

    def _get(self, resource: str, slug: str) -> Response:
        spec = self._spec(resource)
        denied = self._guard()
        if denied is not None:
            return denied
        visible = self._visibility(spec)
        with self._lock:
            record = self._records[spec.name].get(slug)
            headers = self._rate_headers()
        # The stricter reading: a record is found by slug under the same scope a listing has.
        if record is None or not visible(record):
            return _error("not_found", f"no {spec.event_prefix} {slug!r}", 404, headers)
        return _json(dict(record), headers=headers)

    # -- OAuth --------------------------------------------------------------------------------

    def _mint_tokens(self) -> dict[str, Any]:
        access = "ign_at_" + secrets.token_urlsafe(24)
        refresh = "ign_rt_" + secrets.token_urlsafe(24)
        now = self.clock.time()
        self._access_tokens[access] = now + ACCESS_TOKEN_TTL
        self._refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": "reporting",
            "created_at": int(now),
        }

    def _form(self) -> dict[str, str]:
        if request.is_json:
            body = request.get_json(silent=True)
            return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        return {k: v for k, v in request.form.items()}

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            given = (auth.username or "", auth.password or "")
        else:
            given = (form.get("client_id", ""), form.get("client_secret", ""))
        return secrets.compare_digest(given[0], self._client_id) and secrets.compare_digest(
            given[1], self._client_secret
        )

    def _authorize(self) -> Response:
        if request.args.get("client_id") != self._client_id:
            return _error("invalid_client", "unknown client_id", 400)
        if request.args.get("response_type", "code") != "code":
            return _error("unsupported_response_type", "only response_type=code", 400)
        redirect_uri = request.args.get("redirect_uri")
        if not redirect_uri:
            return _error("invalid_request", "redirect_uri is required", 400)
        code = self.issue_authorization_code(redirect_uri)
        query = {"code": code}
        if state := request.args.get("state"):
            query["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        response = Response(status=302)
        response.headers["Location"] = f"{redirect_uri}{separator}{httpx.QueryParams(query)}"
        return response

    def _token(self) -> Response:
        form = self._form()
        if not self._client_authenticated(form):
            return _error("invalid_client", "client authentication failed", 401)
        grant = form.get("grant_type")
        now = self.clock.time()
        with self._lock:
            if grant == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)  # single use
                if code is None or code[0] <= now:
                    return _error("invalid_grant", "authorization code unknown, used or expired", 400)
                if code[1] is not None and form.get("redirect_uri") != code[1]:
                    return _error("invalid_grant", "redirect_uri does not match the authorization", 400)
                return _json(self._mint_tokens())
            if grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self._refresh_tokens:
                    return _error("invalid_grant", "refresh token unknown, already used or revoked", 400)
                # Rotation: each refresh token works once; the response carries its successor.
                self._refresh_tokens.discard(refresh)
                return _json(self._mint_tokens())
        return _error("unsupported_grant_type", "use authorization_code or refresh_token", 400)

    def _revoke(self) -> Response:
        form = self._form()
        if not self._client_authenticated(form):
            return _error("invalid_client", "client authentication failed", 401)
        token = form.get("token", "")
        with self._lock:
            self._access_tokens.pop(token, None)
            self._refresh_tokens.discard(token)
        return _json({}, 200)  # RFC 7009: 200 whether or not the token was known

    # -- admin --------------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        try:
            # Not request.get_json(): that would read "33.335" (a JSON number) as a float.
            body = exact_json.loads(request.get_data())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise _BadRequest("body must be a JSON object")
        return body

    def _admin_reset(self) -> Response:
        self.reset()
        return _json({"reset": True})

    def _admin_clock(self) -> Response:
        seconds = self._body().get("advance_seconds")
        if not isinstance(seconds, int | float | Decimal) or isinstance(seconds, bool) or seconds < 0:
            raise _BadRequest("advance_seconds must be a number >= 0")
        self.clock.advance(float(seconds))
        return _json({"now": iso(self.clock.now())})

    def _admin_faults(self) -> Response:
        try:
            profile = WebhookFaultProfile.parse(self._body())
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        for held in self.faults.configure(profile):
            self._post(held)  # nothing stays held back once the profile changes
        return _json(self.faults.snapshot())

    def _admin_webhook_url(self) -> Response:
        url = self._body().get("url")
        if url is not None and not isinstance(url, str):
            raise _BadRequest("url must be a string or null")
        self.set_webhook_url(url)
        return _json({"webhook_url": url})

    def _admin_put(self, resource: str, slug: str) -> Response:
        spec = self._spec(resource)
        payload = request.args.get("payload", "full")
        if payload not in WEBHOOK_PAYLOADS:  # checked first: a refused put stores nothing
            raise _BadRequest(f"payload must be one of {', '.join(WEBHOOK_PAYLOADS)}")
        body = self._body()
        if body.get("slug", slug) != slug:
            raise _BadRequest(f"body slug {body.get('slug')!r} differs from the URL slug {slug!r}")
        now = iso(self.clock.now())
        with self._lock:
            existing = self._records[spec.name].get(slug)
            record = {**body, "slug": slug}
            record.setdefault("created_at", existing["created_at"] if existing else now)
            if spec.stamps_updated_at:
                record.setdefault("updated_at", now)
            for name in TIMESTAMP_FIELDS:
                if record.get(name) is not None:  # a missing one is the model's to refuse
                    record[name] = iso(_parse_time(record[name], name))
            if spec.model is not None:
                try:
                    spec.model.model_validate(record)
                except ValidationError as exc:
                    problems = "; ".join(
                        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                    )
                    raise _BadRequest(f"not a valid {spec.event_prefix}: {problems}") from None
            self._records[spec.name][slug] = record
        event_type = f"{spec.event_prefix}.{'updated' if existing else 'created'}"
        delivery: dict[str, Any] | None = None
        if request.args.get("deliver", "true").lower() not in ("false", "0", "no"):
            data = self._webhook_data(record, payload)
            delivery = self._send_event(event_type, data).summary()
        return _json({spec.event_prefix: record, "delivery": delivery}, 200 if existing else 201)

    @staticmethod
    def _webhook_data(record: dict[str, Any], payload: str) -> dict[str, Any]:
        """What a put's webhook carries: the record (full), the slug (id), or the slug and the
        client reference (ref, the hint an invoice or payment event might plausibly carry)."""
        if payload == "id":
            return {"slug": record["slug"]}
        if payload == "ref":
            client = record.get("client")
            return {"slug": record["slug"], **({"client": client} if isinstance(client, dict) else {})}
        return dict(record)

    def _admin_send(self) -> Response:
        body = self._body()
        event_type, data = body.get("type"), body.get("data")
        if not isinstance(event_type, str) or not event_type:
            raise _BadRequest("type must be a non-empty string")
        if not isinstance(data, dict):
            raise _BadRequest("data must be an object")
        occurred = body.get("occurred_at")
        occurred_at = _parse_time(occurred, "occurred_at") if occurred is not None else None
        event_id = body.get("id")
        if event_id is not None and not isinstance(event_id, str):
            raise _BadRequest("id must be a string")
        delivery = self._send_event(event_type, data, occurred_at=occurred_at, event_id=event_id)
        return _json({"delivery": delivery.summary()})

    def _admin_redeliver(self) -> Response:
        body = self._body()
        event_id = body.get("event_id")
        replay = body.get("replay", False) is True
        with self._lock:
            original = next(
                (d for d in self._deliveries if d.event_id == event_id and d.kind == "original"), None
            )
        if original is None:
            raise _BadRequest(f"no delivery with event_id {event_id!r}", status=404, code="not_found")
        # Same bytes. A retry is signed afresh (as senders do); replay=true resends the original
        # headers too, i.e. what an attacker who captured the request could send.
        headers = dict(original.headers) if replay else self._signed_headers(original.body)
        delivery = original.again(headers, "replay" if replay else "redelivery")
        self._transmit(delivery)
        return _json({"delivery": delivery.summary()})

    # -- webhook delivery -----------------------------------------------------------------------

    def _signed_headers(self, body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "ignition-emulator",
            **sign_webhook(body, self._webhook_secret, self._webhook, timestamp=self.clock.now()),
        }

    def _send_event(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        occurred_at: datetime | None = None,
        event_id: str | None = None,
    ) -> Delivery:
        envelope = {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "type": event_type,
            "occurred_at": iso(occurred_at or self.clock.now()),
            "source": {"application_slug": "ignition-emulator"},
            "data": data,
        }
        body = exact_json.dumps(envelope, compact=True).encode("utf-8")
        slug = data.get("slug")
        delivery = Delivery(
            event_id=str(envelope["id"]),
            type=event_type,
            slug=slug if isinstance(slug, str) else None,
            body=body,
            headers=self._signed_headers(body),
        )
        self._transmit(delivery)
        return delivery

    def _transmit(self, delivery: Delivery) -> None:
        """Send one delivery through the fault profile: an original may be dropped (recorded, never
        sent), held back until the next delivery has gone (reordered) or sent twice (duplicated)."""
        plan = self.faults.plan() if delivery.kind == "original" else None
        if plan is not None and plan.drop:
            with self._lock:
                delivery.sent_at = iso(self.clock.now())
                delivery.error = "dropped"
                self._deliveries.append(delivery)
            return
        if plan is not None and plan.hold:
            self.faults.hold(delivery)
            return
        self._post(delivery)
        if plan is not None and plan.duplicate:
            self._post(delivery.again(self._signed_headers(delivery.body), "redelivery"))
        for held in self.faults.release():
            self._post(held)

    def _post(self, delivery: Delivery) -> None:
        """POST one delivery to the webhook URL and record the outcome. Runs outside the lock: the
        receiver may call back into this emulator (e.g. the Reporting API) before it answers."""
        with self._lock:
            url = self._webhook_url
            delivery.sent_at = iso(self.clock.now())
            self._deliveries.append(delivery)
            if self._http is None:
                self._http = httpx.Client(
                    transport=self._transport, timeout=self._delivery_timeout, trust_env=False
                )
            http = self._http
        if url is None:
            delivery.error = "no webhook url configured"
            return
        try:
            response = http.post(url, content=delivery.body, headers=delivery.headers)
        except httpx.HTTPError as exc:
            delivery.error = type(exc).__name__
            logger.warning(
                "webhook delivery failed", extra={"event_id": delivery.event_id, "error": delivery.error}
            )
            return
        delivery.status = response.status_code
        delivery.response_body = response.text[:2_000]
        logger.info(
            "webhook delivered",
            extra={"event_id": delivery.event_id, "type": delivery.type, "status": delivery.status},
        )
