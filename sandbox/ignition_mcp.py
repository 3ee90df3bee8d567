"""An emulator of Ignition's MCP server, mounted at ``{ignition_url}/mcp`` on the Ignition emulator.

Built with the official ``mcp`` SDK's server side (the low-level ``Server`` and its streamable
HTTP session manager), so the protocol a client meets here is the real one; the WSGI emulator
hands ``/mcp`` to it through ``sandbox/ignition_mcp_bridge.py``. What Ignition's server does is
known second-hand (integration-facts.md, "MCP server"); each rule below cites that, or says
"stricter reading" where Ignition is silent and the emulator picks the reading that catches more.

URL layout (on the Ignition emulator's base URL):

* ``POST /mcp``: MCP over streamable HTTP (stateless, JSON answers), bearer token per user.
* ``GET /mcp/oauth/authorize``, ``POST /mcp/oauth/token``: OAuth per user (authorization code;
  rotating single-use refresh tokens, or none with ``issue_refresh_tokens=False``).
* ``POST /_emulator/mcp/tokens``: a token set as if a user had just connected.
* ``POST /_emulator/mcp/limits``: change the limits or how RATE_LIMITED is answered.
* ``POST /_emulator/mcp/readings``: switch a rule Ignition is silent on to its other reading
  (``{"list_invoices_drafts": true}``: ``list_invoices`` lists drafts too).
* ``POST /_emulator/invoice-drafts/<id>/finalise``: a person's one click in Ignition.
* ``GET /_emulator/state`` gains ``invoice_drafts`` and ``mcp``.

Tools: ``create_invoice_draft``, ``get_client``, ``list_invoices``, ``list_tax_rates``,
``list_services``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import jsonschema
import mcp_types as types
from flask import Response, request
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

from sandbox.ignition_emulator import IgnitionEmulator, iso
from sandbox.ignition_mcp_bridge import AsgiBridge
from shared.ignition import exact_json

ACCESS_TOKEN_TTL = 3600
AUTH_CODE_TTL = 600
DEFAULT_USER = "usr_sandbox"
# Well-known sandbox credentials of the MCP OAuth client, not secrets: the emulator runs locally.
MCP_CLIENT_ID = "sandbox-ignition-mcp-client"
MCP_CLIENT_SECRET = "sandbox-ignition-mcp-secret"
CENT = Decimal("0.01")

# AU practice defaults. Ignition's tax rates are the practice's own (integration-facts lists the
# tool, not its rates): GST 10% and GST-free are what an AU practice bills; the others are what an
# AU ledger also carries (input taxed, BAS excluded, export).
TAX_RATES: tuple[dict[str, Any], ...] = (
    {"id": "txr_gst", "name": "GST", "rate": "10"},
    {"id": "txr_gst_free", "name": "GST Free", "rate": "0"},
    {"id": "txr_input_taxed", "name": "Input Taxed", "rate": "0"},
    {"id": "txr_bas_excluded", "name": "BAS Excluded", "rate": "0"},
    {"id": "txr_gst_free_export", "name": "GST Free Exports", "rate": "0"},
)
SERVICES: tuple[dict[str, Any], ...] = (
    {"id": "svc_bookkeeping", "name": "Bookkeeping", "code": "BOOK"},
    {"id": "svc_tax_return", "name": "Tax Return", "code": "TAX"},
    {"id": "svc_advisory", "name": "Advisory", "code": "ADV"},
)

_DATE = {"type": "string", "format": "date"}
# Input schemas published in tools/list. Ignition's are not public (integration-facts: "read them
# from tools/list at run time"); these are the emulator's and its config's shared guess. Stricter
# reading: unknown properties are refused (additionalProperties false), money is a JSON number.
TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "create_invoice_draft": (
        "Create an invoice draft for a client; a person finishes it in Ignition with one click.",
        {
            "type": "object",
            "properties": {
                "client_id": {"type": "string", "minLength": 1},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "reference": {"type": "string", "maxLength": 255},
                "issue_date": _DATE,
                "due_date": _DATE,
                "line_items": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "description": {"type": "string", "minLength": 1},
                            "quantity": {"type": "number", "exclusiveMinimum": 0},
                            "unit_price": {"type": "number"},
                            "tax_rate_id": {"type": "string"},
                            "service_id": {"type": "string"},
                        },
                        "required": ["description", "quantity", "unit_price"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["client_id", "currency", "line_items"],
            "additionalProperties": False,
        },
    ),
    "get_client": (
        "Get one client by its id (slug).",
        {
            "type": "object",
            "properties": {"client_id": {"type": "string", "minLength": 1}},
            "required": ["client_id"],
            "additionalProperties": False,
        },
    ),
    "list_invoices": (
        "List invoices, newest first; search matches the reference.",
        {
            "type": "object",
            "properties": {
                "client_id": {"type": "string"},
                "state": {"type": "string"},
                "search": {"type": "string"},
                "cursor": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            "additionalProperties": False,
        },
    ),
    "list_tax_rates": (
        "List the practice's tax rates.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
    "list_services": (
        "List the practice's services.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
}
PAGE_SIZE = 25


def runtime_config(ignition_url: str) -> dict[str, str]:
    """``runtime.ignition.mcp`` pointing at this emulator on the Ignition emulator's base URL."""
    return {
        "url": f"{ignition_url}/mcp",
        "authorize_url": f"{ignition_url}/mcp/oauth/authorize",
        "token_url": f"{ignition_url}/mcp/oauth/token",
    }


class ToolRefused(Exception):
    """A tool's own error: answered as a result with ``isError`` and the message."""


@dataclass
class McpLimits:
    """Ignition's limits (integration-facts, "MCP server"): 2,000/h per practice, 1,000/h per OAuth
    client, 600/h and 60/min per user; over them 429 RATE_LIMITED with Retry-After."""

    per_user_minute: int = 60
    per_user_hour: int = 600
    per_client_hour: int = 1_000
    per_practice_hour: int = 2_000
    # How RATE_LIMITED reaches the client: an HTTP 429 (the facts' reading), or a tool error (an
    # MCP server may answer a tools/call that way; the client must honour both).
    style: Literal["http", "tool"] = "http"


@dataclass
class _Grant:
    user: str
    client_id: str
    expires_at: float


@dataclass
class _Counters:
    windows: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    rate_limited: int = 0


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _decimal(value: Any, where: str) -> Decimal:
    try:
        # A JSON number arrives as a float; its repr is the shortest text that reads back as it.
        return Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ToolRefused(f"{where} is not a number") from None


class IgnitionMcpEmulator:
    """The MCP server of one emulated practice, sharing the Ignition emulator's clients, invoices,
    clock and webhook delivery."""

    def __init__(
        self,
        ignition: IgnitionEmulator,
        *,
        limits: McpLimits | None = None,
        issue_refresh_tokens: bool = True,
        list_invoices_drafts: bool = False,
    ) -> None:
        self.ignition = ignition
        self.limits = limits or McpLimits()
        self.issue_refresh_tokens = issue_refresh_tokens
        # Whether list_invoices lists unfinished drafts (see _tool_list_invoices): off is the
        # stricter reading, on the lenient one; like the limits, it survives reset().
        self.list_invoices_drafts = list_invoices_drafts
        self._lock = threading.RLock()
        # OAuth state survives reset(), as the Reporting API's does: a running sandbox keeps its
        # connection.
        self._codes: dict[str, tuple[float, str, str | None]] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # token -> (user, client id)
        self._reset_data()
        self._server = Server(
            "ignition-emulator-mcp",
            version="0.1",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        manager = StreamableHTTPSessionManager(app=self._server, stateless=True, json_response=True)
        self._bridge = AsgiBridge(StreamableHTTPASGIApp(manager), manager.run, name="sandbox-ignition-mcp")
        self._mount()
        ignition.addons.append(self)

    def close(self) -> None:
        self._bridge.close()

    # -- state ---------------------------------------------------------------------------------

    def _reset_data(self) -> None:
        with self._lock:
            self.drafts: dict[str, dict[str, Any]] = {}
            self.tax_rates = [dict(r) for r in TAX_RATES]
            self.services = [dict(s) for s in SERVICES]
            self._counters = _Counters()
            self._tool_calls: Counter[str] = Counter()

    def reset(self) -> None:
        self._reset_data()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "invoice_drafts": [dict(d) for d in self.drafts.values()],
                "mcp": {
                    "requests": self._counters.requests,
                    "rate_limited": self._counters.rate_limited,
                    "tool_calls": dict(self._tool_calls),
                    "limits": {
                        "per_user_minute": self.limits.per_user_minute,
                        "per_user_hour": self.limits.per_user_hour,
                        "per_client_hour": self.limits.per_client_hour,
                        "per_practice_hour": self.limits.per_practice_hour,
                        "style": self.limits.style,
                    },
                    "tax_rates": [dict(r) for r in self.tax_rates],
                    "services": [dict(s) for s in self.services],
                    "readings": self._readings(),
                },
            }

    # -- OAuth (per user; integration-facts: "browser OAuth per user, scoped to the practice") -----

    def issue_token_set(self, user: str = DEFAULT_USER, client_id: str = MCP_CLIENT_ID) -> dict[str, Any]:
        with self._lock:
            return self._mint(user, client_id)

    def sandbox_secret(self) -> str:
        """The ignition-mcp secret's value as ``connect ignition-mcp`` leaves it: the MCP OAuth
        client's credentials and a freshly connected user's token set (shared.oauth.TokenSet)."""
        granted = self.issue_token_set()
        expires_at = self.ignition.clock.now() + timedelta(seconds=int(granted["expires_in"]))
        return json.dumps(
            {
                "client_id": MCP_CLIENT_ID,
                "client_secret": MCP_CLIENT_SECRET,
                "access_token": granted["access_token"],
                "refresh_token": granted.get("refresh_token"),
                "expires_at": expires_at.isoformat(),
                "scope": granted["scope"],
            }
        )

    def revoke_user(self, user: str = DEFAULT_USER) -> None:
        """Profile -> Connected apps -> revoke (integration-facts): every token of the user dies."""
        with self._lock:
            self._access = {t: g for t, g in self._access.items() if g.user != user}
            self._refresh = {t: o for t, o in self._refresh.items() if o[0] != user}

    def _mint(self, user: str, client_id: str) -> dict[str, Any]:
        access = "ign_mcp_at_" + secrets.token_urlsafe(24)
        self._access[access] = _Grant(user, client_id, self.ignition.clock.time() + ACCESS_TOKEN_TTL)
        tokens: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": "mcp",
        }
        if self.issue_refresh_tokens:
            refresh = "ign_mcp_rt_" + secrets.token_urlsafe(24)
            self._refresh[refresh] = (user, client_id)
            tokens["refresh_token"] = refresh
        return tokens

    def _authorize(self) -> Response:
        if request.args.get("client_id") != MCP_CLIENT_ID:
            return _error("invalid_client", "unknown client_id", 400)
        redirect_uri = request.args.get("redirect_uri")
        if not redirect_uri:
            return _error("invalid_request", "redirect_uri is required", 400)
        code = "mcp_code_" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = (self.ignition.clock.time() + AUTH_CODE_TTL, DEFAULT_USER, redirect_uri)
        query = {"code": code, **({"state": request.args["state"]} if "state" in request.args else {})}
        separator = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + separator + "&".join(f"{k}={v}" for k, v in query.items())
        return Response(status=302, headers={"Location": location})

    def _token(self) -> Response:
        auth = request.authorization
        given = (auth.username, auth.password) if auth is not None and auth.type == "basic" else (None, None)
        form = dict(request.form.items())
        client_id = given[0] or form.get("client_id", "")
        secret = given[1] or form.get("client_secret", "")
        if not (
            secrets.compare_digest(client_id, MCP_CLIENT_ID)
            and secrets.compare_digest(secret, MCP_CLIENT_SECRET)
        ):
            return _error("invalid_client", "client authentication failed", 401)
        now = self.ignition.clock.time()
        with self._lock:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)  # single use
                if code is None or code[0] <= now:
                    return _error("invalid_grant", "authorization code unknown, used or expired", 400)
                if code[2] is not None and form.get("redirect_uri") != code[2]:
                    return _error("invalid_grant", "redirect_uri does not match the authorization", 400)
                return _json(self._mint(code[1], client_id))
            if grant == "refresh_token":
                # Stricter reading (integration-facts says only "browser OAuth per user"): single-use
                # rotating refresh tokens, as the Reporting API's and Xero's rotate.
                owner = self._refresh.pop(form.get("refresh_token", ""), None)
                if owner is None:
                    return _error("invalid_grant", "refresh token unknown, already used or revoked", 400)
                return _json(self._mint(*owner))
        return _error("unsupported_grant_type", "use authorization_code or refresh_token", 400)

    # -- the endpoint: auth and limits before the SDK sees the request ---------------------------

    def _mount(self) -> None:
        app = self.ignition.app
        for rule, method, view in (
            ("/mcp", "POST", self._endpoint),
            ("/mcp", "GET", self._endpoint),
            ("/mcp", "DELETE", self._endpoint),
            ("/mcp/oauth/authorize", "GET", self._authorize),
            ("/mcp/oauth/token", "POST", self._token),
            ("/_emulator/mcp/tokens", "POST", lambda: _json(self.issue_token_set(), 201)),
            ("/_emulator/mcp/limits", "POST", self._admin_limits),
            ("/_emulator/mcp/readings", "POST", self._admin_readings),
            ("/_emulator/mcp/revoke", "POST", self._admin_revoke),
            ("/_emulator/invoice-drafts/<draft_id>/finalise", "POST", self._admin_finalise),
        ):
            app.add_url_rule(rule, endpoint=f"mcp {method} {rule}", view_func=view, methods=[method])

    def _endpoint(self) -> Response:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        now = self.ignition.clock.time()
        with self._lock:
            grant = self._access.get(token)
            if grant is None or grant.expires_at <= now:
                return _error(
                    "unauthorized",
                    "access token missing, expired or revoked",
                    401,
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            body = request.get_data()
            limited = self._spend(grant, now)
        if limited is not None:
            return self._rate_limited(limited, body)
        status, headers, answer = self._bridge.handle(
            request.method,
            "/mcp",
            request.query_string,
            [(k, v) for k, v in request.headers.items()],
            body,
        )
        return Response(answer, status=status, headers=headers)

    def _spend(self, grant: _Grant, now: float) -> tuple[str, float] | None:
        """Count one request (stricter reading: every HTTP request to the endpoint counts, the
        initialize handshake and notifications included); the window over its limit, if any."""
        self._counters.requests += 1
        minute, hour = int(now // 60), int(now // 3600)
        windows = (
            (f"user:{grant.user}:m{minute}", self.limits.per_user_minute, (minute + 1) * 60),
            (f"user:{grant.user}:h{hour}", self.limits.per_user_hour, (hour + 1) * 3600),
            (f"client:{grant.client_id}:h{hour}", self.limits.per_client_hour, (hour + 1) * 3600),
            (f"practice:h{hour}", self.limits.per_practice_hour, (hour + 1) * 3600),
        )
        for key, limit, ends in windows:
            if self._counters.windows[key] >= limit:
                self._counters.rate_limited += 1
                return key, ends - now
        for key, _, _ in windows:
            self._counters.windows[key] += 1
        return None

    def _rate_limited(self, limited: tuple[str, float], body: bytes) -> Response:
        window, wait = limited
        retry_after = max(1, int(wait + 0.999))
        message = f"RATE_LIMITED: over the {window.split(':')[0]} limit; retry after {retry_after} seconds"
        request_id, method = _rpc_head(body)
        if self.limits.style == "tool" and method == "tools/call" and request_id is not None:
            result = {
                "content": [{"type": "text", "text": message}],
                "structuredContent": {"error": "RATE_LIMITED", "retry_after": retry_after},
                "isError": True,
            }
            return _json({"jsonrpc": "2.0", "id": request_id, "result": result})
        # integration-facts: "over them 429 RATE_LIMITED with Retry-After".
        return _error("RATE_LIMITED", message, 429, {"Retry-After": str(retry_after)})

    # -- tools ---------------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=name, description=description, input_schema=schema)
                for name, (description, schema) in TOOLS.items()
            ]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        with self._lock:
            self._tool_calls[params.name] += 1
        try:
            if params.name not in TOOLS:
                raise ToolRefused(f"unknown tool {params.name!r}")
            _check(params.name, arguments)
            result = getattr(self, f"_tool_{params.name}")(arguments)
        except ToolRefused as exc:
            return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
        return types.CallToolResult(
            content=[types.TextContent(text=exact_json.dumps(result, compact=True))],
            structured_content=result,
        )

    def _client(self, slug: str) -> dict[str, Any]:
        client = next((c for c in self.ignition.state_snapshot()["clients"] if c.get("slug") == slug), None)
        if client is None:
            raise ToolRefused(f"client {slug!r} not found")
        return dict(client)

    def _tool_get_client(self, arguments: dict[str, Any]) -> dict[str, Any]:
        client = self._client(arguments["client_id"])
        return {**client, "id": client["slug"]}

    def _tool_list_tax_rates(self, arguments: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"tax_rates": [dict(r) for r in self.tax_rates]}

    def _tool_list_services(self, arguments: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"services": [dict(s) for s in self.services]}

    def _tool_create_invoice_draft(self, arguments: dict[str, Any]) -> dict[str, Any]:
        # integration-facts: "create_invoice_draft (a draft that a person finishes in Ignition with
        # one click; returns an app_path)". Stricter reading: not idempotent (two calls, two drafts),
        # and every id it is given must exist.
        client = self._client(arguments["client_id"])
        if client.get("state") == "archived":
            raise ToolRefused(f"client {client['slug']!r} is archived")
        with self._lock:
            rates = {r["id"]: Decimal(str(r["rate"])) for r in self.tax_rates}
            services = {s["id"]: s for s in self.services}
        lines, subtotal, tax_total = [], Decimal(0), Decimal(0)
        for index, item in enumerate(arguments["line_items"]):
            where = f"line_items[{index}]"
            quantity = _decimal(item["quantity"], f"{where}.quantity")
            unit_price = _decimal(item["unit_price"], f"{where}.unit_price")
            rate_id, service_id = item.get("tax_rate_id"), item.get("service_id")
            if rate_id is not None and rate_id not in rates:
                raise ToolRefused(f"{where}.tax_rate_id {rate_id!r} is not one of list_tax_rates")
            if service_id is not None and service_id not in services:
                raise ToolRefused(f"{where}.service_id {service_id!r} is not one of list_services")
            rate = rates[rate_id] if rate_id is not None else Decimal(0)
            # Stricter reading: amounts rounded per line, half up, as Xero does by default.
            amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
            tax = (amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            subtotal, tax_total = subtotal + amount, tax_total + tax
            lines.append(
                {
                    "description": item["description"],
                    "quantity": str(quantity),
                    "unit_price": str(unit_price),
                    "tax_rate_id": rate_id,
                    "tax_rate": str(rate),
                    "service_id": service_id,
                    "service_name": services[service_id]["name"] if service_id else None,
                    "amount": _money(amount),
                    "tax": _money(tax),
                }
            )
        issued = arguments.get("issue_date") or self.ignition.clock.now().date().isoformat()
        if arguments.get("due_date") is not None and arguments["due_date"] < issued:
            raise ToolRefused("due_date is before issue_date")
        draft_id = "drf_" + uuid.uuid4().hex[:16]
        draft = {
            "id": draft_id,
            "client_id": client["slug"],
            "reference": arguments.get("reference"),
            "currency": arguments["currency"],
            "issue_date": issued,
            "due_date": arguments.get("due_date"),
            "lines": lines,
            "subtotal": _money(subtotal),
            "tax_total": _money(tax_total),
            "total": _money(subtotal + tax_total),
            "state": "draft",
            "app_path": f"/invoices/drafts/{draft_id}",
            "invoice_slug": None,
            "created_at": iso(self.ignition.clock.now()),
        }
        with self._lock:
            self.drafts[draft_id] = draft
        return {
            k: draft[k]
            for k in ("id", "app_path", "state", "reference", "currency", "subtotal", "tax_total", "total")
        }

    def _tool_list_invoices(self, arguments: dict[str, Any]) -> dict[str, Any]:
        # integration-facts lists the tool and says nothing of drafts; no public source says
        # whether list_invoices shows an unfinished draft (a person's one click makes it an
        # invoice). Stricter reading by default: it does not, so a draft is found by its reference
        # only once finished, and a lookup before create_invoice_draft cannot prove none was made.
        # ``list_invoices_drafts`` is the lenient reading: drafts listed too (state "draft").
        # Also stricter: search is a loose case-insensitive substring match, and pages are small.
        rows: list[dict[str, Any]] = []
        with self._lock:
            if self.list_invoices_drafts:
                rows.extend(_draft_row(d) for d in self.drafts.values() if d["state"] == "draft")
        for invoice in self.ignition.state_snapshot()["invoices"]:
            client = invoice.get("client")
            rows.append(
                {
                    "id": invoice["slug"],
                    "reference_number": invoice.get("reference_number"),
                    "reference": invoice.get("reference"),
                    "client_id": client.get("slug") if isinstance(client, dict) else None,
                    "state": invoice.get("state"),
                    "total": (invoice.get("amount") or {}).get("total"),
                    "currency": (invoice.get("amount") or {}).get("currency"),
                    "app_path": f"/invoices/{invoice['slug']}",
                    "created_at": invoice.get("created_at"),
                }
            )
        if "client_id" in arguments:
            rows = [r for r in rows if r["client_id"] == arguments["client_id"]]
        if "state" in arguments:
            rows = [r for r in rows if r["state"] == arguments["state"]]
        if "search" in arguments:
            needle = arguments["search"].casefold()
            rows = [r for r in rows if needle in str(r.get("reference") or "").casefold()]
        rows.sort(key=lambda r: (str(r.get("created_at") or ""), r["id"]), reverse=True)
        start = int(arguments["cursor"]) if str(arguments.get("cursor", "")).isdigit() else 0
        size = int(arguments.get("limit", PAGE_SIZE))
        page = rows[start : start + size]
        more = start + size < len(rows)
        return {"invoices": page, "next_cursor": str(start + size) if more else None}

    # -- admin ---------------------------------------------------------------------------------

    def _admin_limits(self) -> Response:
        body = exact_json.loads(request.get_data() or b"{}")
        if not isinstance(body, dict):
            return _error("invalid_request", "body must be a JSON object", 400)
        with self._lock:
            for name in ("per_user_minute", "per_user_hour", "per_client_hour", "per_practice_hour"):
                if name in body:
                    setattr(self.limits, name, int(body[name]))
            if body.get("style") in ("http", "tool"):
                self.limits.style = body["style"]
            if "issue_refresh_tokens" in body:
                self.issue_refresh_tokens = bool(body["issue_refresh_tokens"])
        return _json(self.snapshot()["mcp"]["limits"])

    def _readings(self) -> dict[str, bool]:
        return {"list_invoices_drafts": self.list_invoices_drafts}

    def _admin_readings(self) -> Response:
        body = exact_json.loads(request.get_data() or b"{}")
        if not isinstance(body, dict) or set(body) - set(self._readings()):
            return _error("invalid_request", f"body must be a JSON object of {sorted(self._readings())}", 400)
        with self._lock:
            if "list_invoices_drafts" in body:
                self.list_invoices_drafts = bool(body["list_invoices_drafts"])
            return _json(self._readings())

    def _admin_revoke(self) -> Response:
        self.revoke_user()
        return _json({"revoked": DEFAULT_USER})

    def finalise(self, draft_id: str) -> dict[str, Any]:
        """A person finishes the draft in Ignition: it becomes an invoice with a new slug and its own
        INV-#### number (stricter reading: neither is the draft's id), keeping client, reference,
        lines, dates, currency and totals; it is then in the Reporting API and, with webhooks on,
        delivered as invoice.created."""
        with self._lock:
            draft = self.drafts.get(draft_id)
            if draft is None:
                raise ToolRefused(f"no invoice draft {draft_id!r}")
            if draft["state"] != "draft":
                raise ToolRefused(f"draft {draft_id} is already {draft['state']}")
            draft["state"] = "finalising"
        slug = "inv_" + uuid.uuid4().hex[:12]
        invoice = {
            "slug": slug,
            "reference_number": self._next_number(),
            "state": "awaiting_payment",
            "client": {"slug": draft["client_id"]},
            "amount": {"total": draft["total"], "currency": draft["currency"]},
            "date": draft["issue_date"],
            "due_date": draft["due_date"],
            "reference": draft["reference"],
            "payment_state": "unpaid",
            "tax_inclusive": False,
            "items": [
                {
                    "description": line["description"],
                    "quantity": line["quantity"],
                    "unit_price": {"amount": line["unit_price"], "currency": draft["currency"]},
                    "tax_rate": line["tax_rate"] if line["tax_rate_id"] is not None else None,
                    **(
                        {"service": {"slug": line["service_id"], "name": line["service_name"]}}
                        if line["service_id"]
                        else {}
                    ),
                }
                for line in draft["lines"]
            ],
        }
        # Through the emulator's own admin put: validated as a Reporting API invoice, stored, and
        # delivered as a webhook exactly like any other invoice.
        answer = self.ignition.app.test_client().put(
            f"/_emulator/invoices/{slug}", data=exact_json.dumps(invoice), content_type="application/json"
        )
        with self._lock:
            if answer.status_code >= 300:
                draft["state"] = "draft"
                raise ToolRefused(f"the invoice could not be stored: {answer.get_data(as_text=True)[:300]}")
            draft.update(state="finalised", invoice_slug=slug, finalised_at=iso(self.ignition.clock.now()))
            return {"draft": dict(draft), **exact_json.loads(answer.get_data())}

    def _admin_finalise(self, draft_id: str) -> Response:
        try:
            return _json(self.finalise(draft_id))
        except ToolRefused as exc:
            status = 404 if "no invoice draft" in str(exc) else 409
            return _error("not_found" if status == 404 else "conflict", str(exc), status)

    def _next_number(self) -> str:
        used = [
            int(m.group(1))
            for invoice in self.ignition.state_snapshot()["invoices"]
            if (m := re.fullmatch(r"INV-(\d+)", str(invoice.get("reference_number") or "")))
        ]
        return f"INV-{max(used, default=8999) + 1:04d}"


def _draft_row(draft: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": draft["id"],
        "reference_number": None,
        "reference": draft["reference"],
        "client_id": draft["client_id"],
        "state": draft["state"],
        "total": draft["total"],
        "currency": draft["currency"],
        "app_path": draft["app_path"],
        "created_at": draft["created_at"],
    }


def _check(tool: str, arguments: dict[str, Any]) -> None:
    """Arguments against the published schema: a bad one is a tool error naming it."""
    schema = TOOLS[tool][1]
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if problems:
        raise ToolRefused(
            "invalid arguments: "
            + "; ".join(
                f"{'.'.join(str(p) for p in e.absolute_path) or '<arguments>'}: {e.message}" for e in problems
            )
        )


def _rpc_head(body: bytes) -> tuple[Any, str | None]:
    try:
        message = exact_json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(message, dict):
        return None, None
    method = message.get("method")
    return message.get("id"), method if isinstance(method, str) else None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(exact_json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _error(code: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": code, "message": message}, status, headers)
