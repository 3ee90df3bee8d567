"""The stateful Xero emulator: identity (OAuth 2.0, /connections) and the Accounting API on one
Flask app, plus ``/_emulator/*`` admin endpoints for tests and the sandbox.

Every Accounting API call goes through one pipeline, in Xero's order as far as it is observable:
injected fault -> bearer token -> tenant -> scope -> rate limits -> (latency) -> idempotency ->
resource handler; every answer carries the X-*Limit-Remaining headers.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Request, Response, request

from sandbox.clock import Clock

from . import responses
from .common import UUID_RE, BodyError, Stamper
from .contacts import ContactsResource
from .faults import FaultPlan, XeroFaultProfile, XeroFaults, lost_response
from .history import HistoryLog
from .invoices import InvoicesResource
from .limits import RateLimiter, request_too_large
from .oauth import ACCESS_TOKEN_SECONDS, DEFAULT_SCOPE, OAuthError, TokenService
from .organisation import DEFAULT_COUNTRY, Organisation, OrganisationError
from .payments import PaymentsResource
from .routing import CONTACTS_READ, CONTACTS_WRITE, Route, find_route
from .settings import SettingsResource
from .store import IDEMPOTENCY_KEY_MAX, FailNext, Fault, IdempotencyCache, ResourceStore

logger = logging.getLogger("sandbox.xero_emulator")

DEFAULT_TENANT_ID = "6f1c2a8e-3d4b-4c5a-9e7f-0a1b2c3d4e5f"
API_PREFIX = "/api.xro/2.0"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class XeroEmulator:
    """Thread-safe Xero state behind a Flask app (serve it with ``sandbox.server.serve_in_thread``)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - a sandbox-only fake
        tenant_id: str = DEFAULT_TENANT_ID,
        tenant_name: str = "Sandbox Accounting Firm Pty Ltd",
        redirect_uris: Collection[str] | None = None,
        app_name: str = "Ignition Xero Sync",
        country: str = DEFAULT_COUNTRY,
    ) -> None:
        self.clock = clock or Clock()
        self.tenant_id = tenant_id
        self.tenant_name = tenant_name
        self._redirect_uris = frozenset(redirect_uris) if redirect_uris is not None else None
        self._connection_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-emulator/{tenant_id}"))
        self._created = self.clock.now()
        # DELETE /connections/{id} disconnects the organisation until the next authorisation.
        self._connected = True
        self._lock = threading.RLock()
        self._tokens = TokenService(client_id, client_secret)
        self._limiter = RateLimiter()
        self._idempotency = IdempotencyCache()
        self._faults: list[Fault] = []
        # Chaos profile (POST /_emulator/faults): random faults, unlike the queued fail-next ones.
        self.faults = XeroFaults()
        self._requests_total = 0
        self._by_status: Counter[str] = Counter()
        self._by_endpoint: Counter[str] = Counter()
        # One store per resource, each listed in /_emulator/state under its own name.
        id_fields = {
            "Contacts": "ContactID",
            "Invoices": "InvoiceID",
            "Payments": "PaymentID",
            "ContactGroups": "ContactGroupID",
            "TaxRates": "TaxType",
            "Accounts": "AccountID",
            "TrackingCategories": "TrackingCategoryID",
            "BrandingThemes": "BrandingThemeID",
        }
        self._stores: dict[str, ResourceStore] = {
            name: ResourceStore(name, f) for name, f in id_fields.items()
        }
        self.contacts = ContactsResource(self._stores["Contacts"], self.clock.now, self._customer_ids)
        stamp = Stamper(self.clock.now)
        self.history = HistoryLog(stamp, self.clock.now, app_name)
        # The organisation's country profile (tax rates, accounts, currencies, lock dates).
        self._country = country.upper()
        self.organisation = Organisation(tenant_id, tenant_name, self.clock.now)
        self.organisation.reset(self._country)
        self.settings = SettingsResource(
            self._stores, self._stores["Contacts"], stamp, self.clock.now, self.organisation
        )
        self.invoices = InvoicesResource(
            self._stores["Invoices"],
            self._stores["Contacts"],
            self.settings,
            self.history,
            stamp,
            self.clock.now,
            lambda item: self.contacts.seed([item])[0],
        )
        self.payments = PaymentsResource(
            self._stores["Payments"], self.invoices, self.settings, self.history, stamp, self.clock.now
        )
        contact_scopes = (CONTACTS_READ, CONTACTS_WRITE)
        self._routes: list[Route] = [
            *self.history.routes("Contacts", "ContactID", self._contact_by_key, contact_scopes),
            *self.contacts.routes(),
            *self.invoices.routes(),
            *self.payments.routes(),
            *self.settings.routes(),
            *self.organisation.routes(),
        ]
        self.app = self._build_app()

    # -- public interface ----------------------------------------------------------------
    def issue_token_set(self) -> dict[str, Any]:
        """A token set as if the authorization-code flow had just run (with offline_access)."""
        with self._lock:
            self._connected = True
            scopes = frozenset(DEFAULT_SCOPE.split())
            return self._tokens.issue(self.clock.time(), scopes, str(uuid.uuid4()), public_client=False)

    def _customer_ids(self) -> set[str]:
        """Contacts with a sales (ACCREC) invoice: Xero sets IsCustomer "when an accounts receivable
        invoice is generated against this contact" (spec, Contact.IsCustomer)."""
        return {
            str((invoice.get("Contact") or {}).get("ContactID") or "").lower()
            for invoice in self._stores["Invoices"]
            if invoice.get("Type") == "ACCREC"
        }

    def _contact_by_key(self, key: str) -> dict[str, Any] | None:
        store = self._stores["Contacts"]
        if UUID_RE.match(key):
            return store.get(key)
        wanted = key.strip().casefold()
        return next(
            (c for c in store if str(c.get("ContactNumber") or "").strip().casefold() == wanted), None
        )

    def state_snapshot(self) -> dict[str, Any]:
        with self._lock:
            state: dict[str, Any] = {name: store.snapshot() for name, store in self._stores.items()}
            state["History"] = self.history.snapshot()
            state["requests"] = {
                "total": self._requests_total,
                "by_status": dict(self._by_status),
                "by_endpoint": dict(self._by_endpoint),
            }
            state["faults"] = self.faults.snapshot()
            state["token_refreshes"] = self._tokens.counters.refreshes
            state["invalid_grants"] = self._tokens.counters.invalid_grants
            limits = self._limiter.limits
            state["limits"] = {
                "per_minute": limits.per_minute,
                "per_day": limits.per_day,
                "concurrent": limits.concurrent,
                "latency_ms": limits.latency_ms,
            }
            return state

    # -- app -----------------------------------------------------------------------------
    def _build_app(self) -> Flask:
        app = Flask("xero_emulator")
        app.url_map.strict_slashes = False
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        app.add_url_rule(
            "/connect/token", "token", self._counted(self._token, "POST /connect/token"), methods=["POST"]
        )
        app.add_url_rule(
            "/connect/revocation",
            "revoke",
            self._counted(self._revoke, "POST /connect/revocation"),
            methods=["POST"],
        )
        app.add_url_rule(
            "/identity/connect/authorize",
            "authorize",
            self._counted(self._authorize, "GET /identity/connect/authorize"),
            methods=["GET"],
        )
        app.add_url_rule("/connections", "connections", self._counted(self._connections, "GET /connections"))
        app.add_url_rule(
            "/connections/<connection_id>",
            "disconnect",
            self._counted(self._disconnect, "DELETE /connections/{id}"),
            methods=["DELETE"],
        )
        app.add_url_rule(f"{API_PREFIX}/<path:subpath>", "api", self._api, methods=methods)
        app.add_url_rule("/_emulator/state", "admin_state", self._admin_state, methods=["GET"])
        app.add_url_rule("/_emulator/reset", "admin_reset", self._admin_reset, methods=["POST"])
        app.add_url_rule("/_emulator/clock", "admin_clock", self._admin_clock, methods=["POST"])
        app.add_url_rule("/_emulator/limits", "admin_limits", self._admin_limits, methods=["POST"])
        app.add_url_rule("/_emulator/fail-next", "admin_fail_next", self._admin_fail_next, methods=["POST"])
        app.add_url_rule("/_emulator/faults", "admin_faults", self._admin_faults, methods=["POST"])
        app.add_url_rule("/_emulator/faults", "admin_faults_state", self._admin_faults_state, methods=["GET"])
        app.add_url_rule("/_emulator/contacts", "admin_contacts", self._admin_contacts, methods=["POST"])
        app.add_url_rule("/_emulator/invoices", "admin_invoices", self._admin_invoices, methods=["POST"])
        app.add_url_rule(
            "/_emulator/organisation", "admin_organisation", self._admin_organisation, methods=["POST"]
        )
        app.add_url_rule("/_emulator/tokens", "admin_tokens", self._admin_tokens, methods=["POST"])
        for path, kind in (
            ("accounts", "Accounts"),
            ("tax-rates", "TaxRates"),
            ("tracking-categories", "TrackingCategories"),
        ):
            app.add_url_rule(
                f"/_emulator/{path}", f"admin_{kind}", self._admin_settings(kind), methods=["POST"]
            )
        app.wsgi_app = _case_insensitive_paths(app.wsgi_app)  # type: ignore[method-assign]
        return app

    def _counted(self, view: Any, label: str) -> Any:
        def wrapper(**kwargs: Any) -> Response:
            response: Response = view(**kwargs)
            self._count(label, response.status_code)
            return response

        return wrapper

    def _count(self, label: str, status: int) -> None:
        with self._lock:
            self._requests_total += 1
            self._by_status[str(status)] += 1
            self._by_endpoint[label] += 1

    # -- identity ------------------------------------------------------------------------
    def _authorize(self) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        # A bad client or redirect URI must not redirect anywhere (RFC 6749 4.1.2.1).
        if args.get("client_id") != self._tokens.client_id:
            return responses.text_response("unauthorized_client: unknown client_id", 400)
        if not TokenService.valid_redirect_uri(redirect_uri) or (
            self._redirect_uris is not None and redirect_uri not in self._redirect_uris
        ):
            return responses.text_response("invalid_request: redirect_uri is not registered", 400)
        state = args.get("state")
        challenge, method = args.get("code_challenge"), args.get("code_challenge_method")
        try:
            if args.get("response_type") != "code":
                raise OAuthError("unsupported_response_type")
            scopes = TokenService.parse_scopes(args.get("scope", ""))
            if challenge is not None and (method or "plain") != "S256":
                raise OAuthError("invalid_request")  # Xero supports S256 only
            with self._lock:
                code = self._tokens.issue_code(self.clock.time(), redirect_uri, scopes, challenge, method)
            params = {"code": code, "scope": " ".join(sorted(scopes))}
        except OAuthError as error:
            params = {"error": error.error}
        if state is not None:
            params["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    def _token(self) -> Response:
        form = request.form
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, client_secret = auth.username, auth.password
        else:
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        grant_type = form.get("grant_type")
        with self._lock:
            now = self.clock.time()
            try:
                if grant_type == "authorization_code":
                    self._tokens.check_client(client_id, client_secret, public_ok=True)
                    body = self._tokens.exchange_code(
                        now,
                        form.get("code", ""),
                        form.get("redirect_uri"),
                        form.get("code_verifier"),
                        client_secret is not None,
                    )
                    self._connected = True  # consenting connects the organisation (again)
                elif grant_type == "refresh_token":
                    self._tokens.check_client(client_id, client_secret, public_ok=True)
                    body = self._tokens.refresh_grant(
                        now, form.get("refresh_token", ""), client_secret is not None
                    )
                    if self.faults.drop_token_response():
                        # Refreshed server-side, answer lost on the way back.
                        logger.info("token response dropped by the fault profile")
                        return lost_response(responses.json_response(body).get_data())
                elif grant_type == "client_credentials":
                    self._tokens.check_client(client_id, client_secret, public_ok=False)
                    body = self._tokens.client_credentials(now, form.get("scope"))
                    self._connected = True  # a Custom Connection is always connected
                else:
                    raise OAuthError("unsupported_grant_type")
            except OAuthError as error:
                logger.info("token request refused", extra={"grant_type": grant_type, "error": error.error})
                return responses.json_response({"error": error.error}, error.status)
        logger.info("token issued", extra={"grant_type": grant_type})
        return responses.json_response(body, 200, {"Cache-Control": "no-store"})

    def _revoke(self) -> Response:
        auth = request.authorization
        client_id = auth.username if auth is not None else request.form.get("client_id")
        client_secret = auth.password if auth is not None else request.form.get("client_secret")
        with self._lock:
            try:
                self._tokens.check_client(client_id, client_secret, public_ok=True)
            except OAuthError as error:
                return responses.json_response({"error": error.error}, error.status)
            self._tokens.revoke(request.form.get("token", ""))
        return Response(status=200)

    def _connections(self) -> Response:
        with self._lock:
            refused, token = self._authenticate(request)
        if refused is not None:
            return refused
        assert token is not None
        if not self._connected:
            return responses.json_response([])
        created = self._created.strftime("%Y-%m-%dT%H:%M:%S.%f0")
        return responses.json_response(
            [
                {
                    "id": self._connection_id,
                    "authEventId": token.auth_event_id,
                    "tenantId": self.tenant_id,
                    "tenantType": "ORGANISATION",
                    "tenantName": self.tenant_name,
                    "createdDateUtc": created,
                    "updatedDateUtc": created,
                }
            ]
        )

    def _disconnect(self, connection_id: str) -> Response:
        """``DELETE /Connections/{id}`` (xero-identity.yaml deleteConnection: 204, unknown id 404).
        Then the organisation's API calls answer 403 until it is authorised again."""
        with self._lock:
            refused, _token = self._authenticate(request)
            if refused is not None:
                return refused
            if not self._connected or connection_id.lower() != self._connection_id:
                return responses.not_found()
            self._connected = False
        logger.info("connection removed")
        return Response(status=204)

    def _authenticate(self, req: Request) -> tuple[Response | None, Any]:
        header = req.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = self._tokens.access.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return responses.problem(401, "Unauthorized", "AuthenticationUnsuccessful"), None
        now = self.clock.time()
        if token.expires_at <= now:
            expired = datetime.fromtimestamp(token.expires_at, tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
            return responses.problem(401, "Unauthorized", f"TokenExpired: token expired at {expired}"), None
        return None, token

    # -- accounting API pipeline ---------------------------------------------------------
    def _api(self, subpath: str) -> Response:
        found = find_route(self._routes, request.method, subpath)
        label = found[0].label if found else f"{request.method} /{subpath.split('/')[0]}"
        plan = self.faults.plan(self.clock.time())
        if plan.hang_seconds and not plan.hang_after_apply:
            # A timeout before Xero saw the call: the client gives up; nothing was applied.
            time.sleep(plan.hang_seconds)
            response = responses.problem(504, "Gateway Timeout", "Injected timeout")
            self._count(label, response.status_code)
            return response
        response = self._pipeline(found, subpath, plan)
        if plan.hang_seconds:
            # A timeout after Xero applied the call: the answer arrives after the client gave up.
            time.sleep(plan.hang_seconds)
        with self._lock:
            response.headers.update(self._limiter.headers(self.clock.time()))
        self._count(label, response.status_code)
        return response

    def _pipeline(
        self, found: tuple[Route, dict[str, str]] | None, subpath: str, plan: FaultPlan | None = None
    ) -> Response:
        plan = plan or FaultPlan()
        with self._lock:
            fault = self._next_fault() or plan.response
            if fault is not None:
                logger.info("injected fault", extra={"status": fault.status_code, "path": subpath})
                return fault
            if _too_large(request):
                # Refused for its size before anything else looks at it (see limits.request_too_large).
                return responses.not_found()
            if plan.expire_tokens:
                self._expire_tokens_early(request)
            refused, token = self._authenticate(request)
            if refused is not None:
                return refused
            if (
                not self._connected
                or request.headers.get("xero-tenant-id", "").strip().lower() != self.tenant_id.lower()
            ):
                return responses.problem(403, "Forbidden", "AuthenticationUnsuccessful")
            if found is not None and not (token.scopes & found[0].scopes):
                return responses.problem(401, "Unauthorized", "AuthorizationUnsuccessful")
            verdict = self._limiter.admit(self.clock.time())
            if verdict is not None:
                logger.info(
                    "rate limited", extra={"problem": verdict.problem, "retry_after": verdict.retry_after}
                )
                return responses.problem(
                    429,
                    "Too Many Requests",
                    f"Rate limit exceeded: {verdict.problem}",
                    {"Retry-After": str(verdict.retry_after), "X-Rate-Limit-Problem": verdict.problem},
                )
            latency = self._limiter.limits.latency_ms / 1000 + plan.latency_seconds
        try:
            if latency > 0:
                time.sleep(latency)  # outside the lock, so concurrent calls really overlap
            with self._lock:
                return self._dispatch(found)
        finally:
            with self._lock:
                self._limiter.release()

    def _dispatch(self, found: tuple[Route, dict[str, str]] | None) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method not in _WRITE_METHODS:
            return self._handle(found)
        if len(key) > IDEMPOTENCY_KEY_MAX:
            return responses.problem(
                400, "Bad Request", f"The Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters."
            )
        fingerprint = hashlib.sha256(
            b"\n".join([request.method.encode(), request.full_path.encode(), request.get_data()])
        ).hexdigest()
        now = self.clock.time()
        cached = self._idempotency.lookup(key, now)
        if cached is not None:
            if cached.fingerprint != fingerprint:
                return responses.problem(400, "Bad Request", responses.IDEMPOTENCY_MISMATCH_DETAIL)
            logger.info("idempotent replay", extra={"status": cached.status})
            return Response(cached.body, status=cached.status, mimetype=cached.mimetype)
        response = self._handle(found)
        self._idempotency.remember(key, fingerprint, now, response)
        return response

    def _handle(self, found: tuple[Route, dict[str, str]] | None) -> Response:
        if found is None:
            return responses.not_found()
        if request.content_length and request.content_length > 3_500_000:
            return responses.text_response("Request Entity Too Large", 413)
        route, params = found
        try:
            return route.handler(request, params)
        except BodyError as error:
            # Raised by read_elements before a handler writes anything: one answer for every endpoint.
            return responses.post_data_invalid(str(error))

    def _expire_tokens_early(self, req: Request) -> None:
        """Invalidate every valid access token, when the presented one is valid and old enough (a
        token refreshed a moment ago is spared, so one logical call never meets two expiries)."""
        scheme, _, value = req.headers.get("Authorization", "").partition(" ")
        presented = self._tokens.access.get(value.strip()) if scheme.lower() == "bearer" else None
        now = self.clock.time()
        if presented is None or presented.expires_at <= now:
            return
        if now - (presented.expires_at - ACCESS_TOKEN_SECONDS) < self.faults.min_token_age:
            return
        for token in self._tokens.access.values():
            if token.expires_at > now:
                token.expires_at = now
        self.faults.count("tokens_expired")
        logger.info("access tokens expired early by the fault profile")

    def _next_fault(self) -> Response | None:
        while self._faults:
            response = self._faults[0].take()
            if self._faults[0].exhausted:
                self._faults.pop(0)
            if response is not None:
                return response
        return None

    # -- admin (not counted, no auth, no limits) -----------------------------------------
    def _admin_state(self) -> Response:
        return responses.json_response(self.state_snapshot())

    def _admin_reset(self) -> Response:
        with self._lock:
            for store in self._stores.values():
                store.clear()
            self.history.clear()
            # Reference data is the organisation's setup, not test state: back to the defaults.
            self.organisation.reset(self._country)
            self.settings.seed_defaults()
            self._requests_total = 0
            self._by_status.clear()
            self._by_endpoint.clear()
            self._tokens.counters.refreshes = 0
            self._tokens.counters.invalid_grants = 0
            self._limiter.reset_counters()
            self._idempotency.entries.clear()
            self._faults.clear()
            self._connected = True
        self.faults.configure(XeroFaultProfile())
        self.faults.reset_counters()
        return responses.json_response({"reset": True})

    def _admin_clock(self) -> Response:
        body = _json_object(request)
        seconds = body.get("advance_seconds", 0)
        if not isinstance(seconds, int | float):
            return responses.json_response({"error": "advance_seconds must be a number"}, 400)
        self.clock.advance(float(seconds))
        return responses.json_response({"now": self.clock.now().isoformat()})

    def _admin_limits(self) -> Response:
        body = _json_object(request)
        with self._lock:
            limits = self._limiter.limits
            for name in ("per_minute", "per_day", "concurrent", "app_per_minute", "latency_ms"):
                value = body.get(name)
                if value is not None:
                    if not isinstance(value, int) or value < 0:
                        return responses.json_response(
                            {"error": f"{name} must be a non-negative integer"}, 400
                        )
                    setattr(limits, name, value)
        return responses.json_response(self.state_snapshot()["limits"])

    def _admin_fail_next(self) -> Response:
        body = _json_object(request)
        status = body.get("status")
        count = body.get("count", 1)
        retry_after = body.get("retry_after")
        if not isinstance(status, int) or not 400 <= status <= 599 or not isinstance(count, int) or count < 1:
            return responses.json_response({"error": "status (4xx/5xx) and count >= 1 are required"}, 400)
        fault = FailNext(
            status=status,
            count=count,
            retry_after=int(retry_after) if isinstance(retry_after, int | float) else None,
            body=str(body["body"]) if body.get("body") is not None else None,
            problem=str(body.get("problem", "minute")),
        )
        with self._lock:
            self._faults.append(fault)
        return responses.json_response({"queued": count, "status": status})

    def _admin_faults(self) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return responses.json_response({"error": "expected a fault profile object ({} clears)"}, 400)
        try:
            profile = XeroFaultProfile.parse(body)
        except ValueError as error:
            return responses.json_response({"error": str(error)}, 400)
        self.faults.configure(profile)
        return responses.json_response(self.faults.snapshot())

    def _admin_faults_state(self) -> Response:
        return responses.json_response(self.faults.snapshot())

    def _admin_contacts(self) -> Response:
        items = _seed_items(request, "Contacts")
        if isinstance(items, Response):
            return items
        with self._lock:
            seeded = self.contacts.seed(items)
        return responses.json_response({"Contacts": seeded})

    def _admin_invoices(self) -> Response:
        items = _seed_items(request, "Invoices")
        if isinstance(items, Response):
            return items
        with self._lock:
            try:
                seeded = self.invoices.seed(items)
            except (KeyError, ValueError) as error:
                return responses.json_response({"error": f"bad invoice seed: {error}"}, 400)
        return responses.json_response({"Invoices": seeded})

    def _admin_organisation(self) -> Response:
        """Country profile, base and enabled currencies, lock dates; answers the organisation."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return responses.json_response({"error": "expected a JSON object"}, 400)
        with self._lock:
            try:
                if self.organisation.configure(body):
                    self.settings.seed_defaults()  # a new country brings its own rates and chart
            except OrganisationError as error:
                return responses.json_response({"error": str(error)}, 400)
            return responses.json_response(self.organisation.admin_view())

    def _admin_tokens(self) -> Response:
        """An access token for the sandbox tenant, so a person can call the emulated API by hand."""
        tokens = self.issue_token_set()
        return responses.json_response({"access_token": tokens["access_token"], "tenant_id": self.tenant_id})

    def _admin_settings(self, kind: str) -> Any:
        def view() -> Response:
            body = _json_object(request)
            items = body.get(kind)
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                return responses.json_response({"error": f'expected {{"{kind}": [ {{...}}, ... ]}}'}, 400)
            with self._lock:
                try:
                    added = self.settings.admin_add(kind, items)
                except (KeyError, ValueError) as error:
                    return responses.json_response({"error": f"bad {kind} item: {error}"}, 400)
            return responses.json_response({kind: added})

        return view


def _too_large(req: Request) -> bool:
    # The path as sent (still percent-encoded) when the server kept it; the query as sent.
    raw = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI")
    raw_path = str(raw).partition("?")[0] if raw else quote(req.path)
    query = req.query_string.decode("latin-1")
    ids = next((value for key, value in req.args.items() if key.lower() == "ids"), None)
    return request_too_large(req.host_url.rstrip("/"), raw_path, query, ids)


def _case_insensitive_paths(wsgi_app: Any) -> Any:
    """Xero's API paths are not case-sensitive (``/Connections``, ``/API.XRO/2.0/contacts``); Flask's
    are, so the prefixes are brought to one spelling before routing (resource routes below the
    prefix already match ignoring case: routing.Route)."""
    prefixes = (f"{API_PREFIX}/", "/connections")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        lowered = path.lower()
        for prefix in prefixes:
            bare = prefix.rstrip("/")
            if (lowered == bare or lowered.startswith(bare + "/")) and not path.startswith(bare):
                environ["PATH_INFO"] = bare + path[len(bare) :]
                break
        return wsgi_app(environ, start_response)

    return app


def _seed_items(req: Request, key: str) -> list[dict[str, Any]] | Response:
    """The records of a seeding body ``{"<key>": [{...}, ...]}``, or the 400 that says so."""
    items = _json_object(req).get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return responses.json_response({"error": f'expected {{"{key}": [ {{...}}, ... ]}}'}, 400)
    return items


def _json_object(req: Request) -> dict[str, Any]:
    body = req.get_json(silent=True)
    return body if isinstance(body, dict) else {}
