"""Ignition's MCP server through the official ``mcp`` SDK (streamable HTTP): the adapter behind
:class:`shared.ignition.drafts.IgnitionDraftsPort`.

Ignition's only write path is its MCP server (integration-facts, "MCP server"); the tools' input
schemas are not public. So:

* Schemas come from ``tools/list`` at run time, once per process (and per server URL), and every
  call's arguments are validated against them (``jsonschema``) before anything is sent: a refused
  argument costs no request and names the field.
* Our models map to the tools' field names here and in ``IgnitionMcpConfig`` (shared/config.py,
  ``runtime.ignition.mcp``), never in the feature. Money is encoded as the schema asks: a string
  stays exact; a JSON number is sent only when the float reads back as the same decimal.
* Every HTTP request spends from one budget (:class:`IgnitionMcpBudget`, shared/windowed_budget.py
  in the state table): Ignition allows 60 a minute and 600 an hour per user, 1,000 an hour per
  OAuth client. ``RATE_LIMITED``, as HTTP 429 or as a tool error, raises
  :class:`IgnitionMcpRateLimited` with the server's ``Retry-After``.
* The SDK is async; each port method is one ``anyio.run`` batch with its own session (initialize,
  tools/list when not cached, the calls). Nothing outlives the call, which suits Lambda.

The user's OAuth token set lives in Secrets Manager (``IGNITION_MCP_SECRET_ID``) and rotates under
the same lease, journal and fence as Xero's (``shared.oauth.RefreshingTokenProvider``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, Protocol, TypeVar

import anyio
import httpx2
import jsonschema
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

from shared.config import IgnitionMcpConfig, IntegrationConfig
from shared.ignition.drafts import (
    CreatedDraft,
    IgnitionDraftSummary,
    IgnitionMcpAuthError,
    IgnitionMcpRateLimited,
    IgnitionMcpRefused,
    IgnitionMcpUnavailable,
    IgnitionService,
    IgnitionTaxRate,
    InvoiceDraftRequest,
)
from shared.oauth import (
    IGNITION_MCP_TOKEN_LOCK,
    AuthorisationLost,
    DynamoRefreshJournal,
    OAuthError,
    RefreshingTokenProvider,
    RefreshOutcome,
    SecretTokenStore,
    TokenProvider,
    TokenProviderOptions,
    TokenStoreError,
    read_client_credentials,
)
from shared.store.locks import DynamoLeaseLock
from shared.windowed_budget import (
    DynamoWindowCounts,
    InMemoryWindowCounts,
    WindowCounts,
    WindowedBudget,
    WindowSpec,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# One user and one OAuth client per deployment, so one budget key.
IGNITION_MCP_BUDGET_PK = "budget#ignition-mcp"
IGNITION_MCP_PROVIDER = "ignition-mcp"
IGNITION_MCP_REAUTHORISE = "run `python -m cli connect ignition-mcp --client NAME` and then replay the DLQ"
# Every session starts with two requests: initialize and notifications/initialized.
SESSION_OVERHEAD_REQUESTS = 2
_RETRY_AFTER_TEXT = re.compile(r"retry[ _-]?after\D{0,20}?(\d+(?:\.\d+)?)", re.IGNORECASE)


class McpSettings(Protocol):
    """What the deployed client reads from a function's settings (shared/config.py)."""

    @property
    def state_table(self) -> str: ...

    @property
    def ignition_mcp_secret_id(self) -> str | None: ...


# --- budget -------------------------------------------------------------------------------------


class IgnitionMcpBudget:
    """``acquire()`` before every HTTP request to the MCP server (per-minute and per-hour windows)."""

    def __init__(
        self,
        counts: WindowCounts,
        config: IgnitionMcpConfig,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        def exhausted(retry_after: float, problem: str) -> Exception:
            return IgnitionMcpRateLimited(
                f"Ignition MCP request budget spent ({problem}); retry in {retry_after:.0f} s",
                retry_after=retry_after,
            )

        self._windows = WindowedBudget(
            counts,
            (
                WindowSpec("minute", 60, config.requests_per_minute),
                # Never sleep for the hour: the queue's delay is as good a wait and bills nothing.
                WindowSpec("hour", 3_600, config.requests_per_hour, wait_inline=False),
            ),
            clock=clock,
            sleep=sleep,
            max_inline_wait_seconds=config.budget_max_inline_wait_seconds,
            exhausted=exhausted,
        )

    @classmethod
    def in_table(cls, table_name: str, config: IgnitionMcpConfig) -> IgnitionMcpBudget:
        return cls(DynamoWindowCounts(table_name, IGNITION_MCP_BUDGET_PK), config)

    @classmethod
    def in_memory(
        cls,
        config: IgnitionMcpConfig,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> IgnitionMcpBudget:
        return cls(InMemoryWindowCounts(), config, clock=clock, sleep=sleep)

    def acquire(self, units: int = 1) -> None:
        for _ in range(units):
            self._windows.take()

    def used(self) -> int:
        """Requests counted in the current minute."""
        minute = self._windows.windows()[0]
        return self._windows.counts.used(minute)


# --- per-process caches -------------------------------------------------------------------------

_cache_mutex = threading.Lock()
# server URL -> the tools it lists (input schemas, and output schemas the SDK checks results with)
_schemas: dict[str, list[Tool]] = {}
# (server URL, catalogue) -> (monotonic time read, records)
_catalogues: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}


def _cached_schema(url: str, tool: str) -> dict[str, Any] | None:
    with _cache_mutex:
        found = next((t for t in _schemas.get(url, []) if t.name == tool), None)
    return None if found is None else dict(found.input_schema)


def forget_cached_schemas() -> None:
    """Drop every cached tool schema and catalogue (tests; a server that refused our arguments)."""
    with _cache_mutex:
        _schemas.clear()
        _catalogues.clear()


# --- encoding and validation -------------------------------------------------------------------


def _types(schema: Mapping[str, Any] | None) -> set[str]:
    kind = (schema or {}).get("type")
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def _encode_decimal(value: Decimal, schema: Mapping[str, Any] | None, where: str) -> Any:
    """A decimal as the property's schema asks: a string (exact), or a JSON number only when the
    float reads back as the same decimal (so nothing is rounded in transit)."""
    kinds = _types(schema)
    if "string" in kinds or not kinds:
        return str(value)
    if "integer" in kinds and value == value.to_integral_value():
        return int(value)
    if "number" in kinds:
        as_float = float(value)
        if math.isfinite(as_float) and Decimal(repr(as_float)) == value:
            return as_float
    raise IgnitionMcpRefused(
        f"{where}: {value} cannot be sent exactly as {'/'.join(sorted(kinds))}", category="ignition_schema"
    )


def _encode(value: Any, schema: Mapping[str, Any] | None, where: str) -> Any:
    if isinstance(value, Decimal):
        return _encode_decimal(value, schema, where)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _validate(tool: str, schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> None:
    """Refuse, before sending, arguments the tool's published input schema refuses."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    problems = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.absolute_path))
    if problems:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '<arguments>'}: {e.message}" for e in problems[:5]
        )
        raise IgnitionMcpRefused(
            f"arguments for Ignition's {tool} do not match its published schema: {detail}",
            category="ignition_schema",
        )


def _properties(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    props = (schema or {}).get("properties")
    return props if isinstance(props, Mapping) else {}


def _draft_arguments(
    request: InvoiceDraftRequest, config: IgnitionMcpConfig, schema: Mapping[str, Any]
) -> dict[str, Any]:
    """InvoiceDraftRequest -> create_invoice_draft's arguments, through the configured names."""
    props = _properties(schema)
    arguments: dict[str, Any] = {}
    for field, name in config.draft_fields.items():
        if not name or field not in InvoiceDraftRequest.model_fields:
            continue
        value = getattr(request, field)
        if value is None:
            continue  # optional in our model: left out rather than sent as null
        if field == "lines":
            item_schema = props.get(name, {}).get("items") if isinstance(props.get(name), Mapping) else None
            item_props = _properties(item_schema)
            lines = []
            for index, line in enumerate(request.lines):
                encoded: dict[str, Any] = {}
                for line_field, line_name in config.line_fields.items():
                    line_value = getattr(line, line_field, None)
                    if line_name and line_value is not None:
                        encoded[line_name] = _encode(
                            line_value, item_props.get(line_name), f"{name}[{index}].{line_name}"
                        )
                lines.append(encoded)
            arguments[name] = lines
        else:
            arguments[name] = _encode(value, props.get(name), name)
    return arguments


# --- results -----------------------------------------------------------------------------------


def _text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent)).strip()


def _payload(tool: str, result: CallToolResult) -> Any:
    """A tool's structured result, or the JSON in its text when it gives none."""
    if result.structured_content is not None:
        return result.structured_content
    text = _text(result)
    try:
        return json.loads(text)
    except ValueError:
        raise IgnitionMcpUnavailable(
            f"Ignition's {tool} answered without a JSON result: {text[:200]!r}"
        ) from None


def _records(tool: str, payload: Any, key: str) -> tuple[list[dict[str, Any]], Any]:
    """A listing's records and its next cursor (None on the last page)."""
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, dict)], None
    if isinstance(payload, dict):
        records = payload.get(key)
        if records is None:
            lists = [v for v in payload.values() if isinstance(v, list)]
            records = lists[0] if len(lists) == 1 else None
        if isinstance(records, list):
            return [r for r in records if isinstance(r, dict)], payload
    raise IgnitionMcpUnavailable(f"Ignition's {tool} answered without a list of {key}")


def _retry_after(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _tool_error(tool: str, result: CallToolResult) -> Exception:
    """A tool's own error: RATE_LIMITED waits, anything else is Ignition refusing the call."""
    message = _text(result) or "no message"
    structured = result.structured_content if isinstance(result.structured_content, dict) else {}
    code = str(structured.get("error") or structured.get("code") or "")
    if code.upper() == "RATE_LIMITED" or "RATE_LIMITED" in message:
        found = _RETRY_AFTER_TEXT.search(message)
        wait = _retry_after(structured.get("retry_after")) or (
            _retry_after(found.group(1)) if found else None
        )
        return IgnitionMcpRateLimited(f"Ignition's {tool}: {message}", retry_after=wait or 60.0)
    return IgnitionMcpRefused(f"Ignition refused {tool}: {message}")


# --- HTTP: bearer auth and what the SDK does not pass on ----------------------------------------


class _HttpProbe:
    """The last failing HTTP answer: the SDK turns a 429 or 401 without a JSON-RPC body into a
    generic error, so its status and ``Retry-After`` are read here."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None
        self.requests = 0

    async def on_request(self, request: httpx2.Request) -> None:
        self.requests += 1

    async def on_response(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.status = response.status_code
            self.retry_after = _retry_after(response.headers.get("retry-after"))

    def clear(self) -> None:
        self.status, self.retry_after = None, None


class _BearerAuth(httpx2.Auth):
    """The user's access token on every request; one refresh and retry on a 401."""

    def __init__(self, token: str, refresh: Callable[[str], str]) -> None:
        self.token = token
        self._refresh = refresh
        self.failure: Exception | None = None

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code != 401:
            return
        try:
            self.token = self._refresh(self.token)
        except Exception as exc:  # noqa: BLE001 - raised here it would be lost in the SDK's task group
            self.failure = exc
            return
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def _auth_failure(exc: Exception) -> Exception:
    if isinstance(exc, AuthorisationLost | TokenStoreError):
        return IgnitionMcpAuthError(f"Ignition MCP: {exc}")
    if isinstance(exc, OAuthError):
        return IgnitionMcpUnavailable(f"Ignition MCP token refresh failed: {exc}")
    return exc


def _first(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of ``kinds`` in ``exc`` or, for task groups, in its group."""
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first(inner, kinds)
            if found is not None:
                return found
    return None


_OURS = (IgnitionMcpRateLimited, IgnitionMcpUnavailable, IgnitionMcpRefused, IgnitionMcpAuthError)


# --- the session --------------------------------------------------------------------------------


class _Batch:
    """One SDK session: tools/list when the schemas are not cached, then validated calls."""

    def __init__(
        self, client: IgnitionMcpClient, session: ClientSession, probe: _HttpProbe, auth: _BearerAuth
    ) -> None:
        self._client = client
        self._session = session
        self._probe = probe
        self._auth = auth

    def absorb_cached_listing(self) -> None:
        """Hand the process's cached listing to this session: the SDK checks each tool result
        against the tool's output schema and would otherwise list the tools again, once per
        session, for a request our budget does not count."""
        with _cache_mutex:
            tools = _schemas.get(self._client.config.url)
        if tools is not None:
            self._session._absorb_tool_listing(ListToolsResult(tools=list(tools)), complete=True)

    async def tools(self) -> dict[str, Tool]:
        url = self._client.config.url
        with _cache_mutex:
            cached = _schemas.get(url)
        if cached is None:
            cached = []
            cursor: str | None = None
            for _ in range(self._client.config.max_pages):
                params = PaginatedRequestParams(cursor=cursor) if cursor else None
                listed = await self._request("tools/list", partial(self._session.list_tools, params=params))
                cached.extend(listed.tools)
                cursor = listed.next_cursor
                if not cursor:
                    break
            with _cache_mutex:
                _schemas[url] = cached
        return {tool.name: tool for tool in cached}

    async def schema(self, tool: str) -> dict[str, Any]:
        tools = await self.tools()
        found = tools.get(tool)
        if found is None:
            raise IgnitionMcpRefused(
                f"Ignition's MCP server lists no tool {tool!r} for this user (tools are filtered by role; "
                f"it lists {', '.join(sorted(tools)) or 'none'}): check runtime.ignition.mcp.tools",
                category="ignition_tool_missing",
            )
        return dict(found.input_schema)

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        _validate(tool, await self.schema(tool), arguments)
        result = await self._request(tool, lambda: self._session.call_tool(tool, arguments))
        if result.is_error:
            raise _tool_error(tool, result)
        return _payload(tool, result)

    async def _request(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        self._client.budget.acquire()
        self._probe.clear()
        try:
            return await send()
        except MCPError as exc:
            raise self.translate(what, exc) from None

    def translate(self, what: str, exc: MCPError) -> Exception:
        """A JSON-RPC error, read with the HTTP answer behind it."""
        if self._auth.failure is not None:
            return _auth_failure(self._auth.failure)
        status, message = self._probe.status, exc.message
        data = exc.data if isinstance(exc.data, dict) else {}
        if status == 429 or "RATE_LIMITED" in message or data.get("error") == "RATE_LIMITED":
            wait = self._probe.retry_after or _retry_after(data.get("retry_after"))
            return IgnitionMcpRateLimited(f"Ignition MCP {what}: RATE_LIMITED", retry_after=wait or 60.0)
        if status in (401, 403):
            return IgnitionMcpAuthError(
                f"Ignition's MCP server refused the user's token (HTTP {status}): {IGNITION_MCP_REAUTHORISE}"
            )
        if exc.code in (INVALID_PARAMS, METHOD_NOT_FOUND) or (status is not None and 400 <= status < 500):
            if exc.code == INVALID_PARAMS:
                forget_cached_schemas()  # the published schema may have changed: read it again
            return IgnitionMcpRefused(f"Ignition refused {what}: {message}")
        return IgnitionMcpUnavailable(f"Ignition MCP {what} failed ({status or exc.code}): {message}")


class IgnitionMcpClient:
    """:class:`shared.ignition.drafts.IgnitionDraftsPort` over Ignition's MCP server."""

    def __init__(
        self,
        config: IgnitionMcpConfig,
        tokens: TokenProvider,
        budget: IgnitionMcpBudget,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # A client's config names only what differs: the rest keeps the defaults.
        defaults = IgnitionMcpConfig()
        self.config = config.model_copy(
            update={
                "draft_fields": {**defaults.draft_fields, **config.draft_fields},
                "line_fields": {**defaults.line_fields, **config.line_fields},
                "result_fields": {**defaults.result_fields, **config.result_fields},
                "list_keys": {**defaults.list_keys, **config.list_keys},
            }
        )
        self.tokens = tokens
        self.budget = budget
        self._transport = transport  # tests: an in-process ASGI app
        self._monotonic = monotonic

    @classmethod
    def from_settings(
        cls,
        settings: McpSettings,
        config: IntegrationConfig,
        *,
        on_refresh: Callable[[RefreshOutcome], None] | None = None,
    ) -> IgnitionMcpClient:
        """The deployed client: token set and client credentials in ``IGNITION_MCP_SECRET_ID``,
        refreshed under the state table's lease, budget in the state table."""
        secret_id = settings.ignition_mcp_secret_id
        if not secret_id:
            raise IgnitionMcpAuthError(
                "IGNITION_MCP_SECRET_ID is not set: runtime.xero_to_ignition is not enabled here",
                category="ignition_mcp_not_configured",
            )
        mcp = config.ignition.mcp
        try:
            credentials = read_client_credentials(secret_id, provider=IGNITION_MCP_PROVIDER)
        except TokenStoreError as exc:
            raise IgnitionMcpAuthError(f"Ignition MCP: {exc}; {IGNITION_MCP_REAUTHORISE}") from None
        tokens = RefreshingTokenProvider(
            mcp.token_url,
            credentials,
            SecretTokenStore(secret_id, provider=IGNITION_MCP_PROVIDER),
            DynamoLeaseLock(settings.state_table, IGNITION_MCP_TOKEN_LOCK),
            TokenProviderOptions(
                provider=IGNITION_MCP_PROVIDER,
                reauthorise_hint=IGNITION_MCP_REAUTHORISE,
                on_refresh=on_refresh,
            ),
            journal=DynamoRefreshJournal(settings.state_table, IGNITION_MCP_TOKEN_LOCK),
        )
        return cls(mcp, tokens, IgnitionMcpBudget.in_table(settings.state_table, mcp))

    # -- the port ------------------------------------------------------------------------------

    def list_tax_rates(self) -> list[IgnitionTaxRate]:
        fields = self.config.result_fields
        return [
            IgnitionTaxRate(
                id=str(r[fields["id"]]),
                name=str(r.get(fields["name"]) or ""),
                rate=Decimal(str(r[fields["rate"]])),
            )
            for r in self._catalogue("tax_rates", self.config.tools.list_tax_rates)
        ]

    def list_services(self) -> list[IgnitionService]:
        fields = self.config.result_fields
        services = []
        for record in self._catalogue("services", self.config.tools.list_services):
            code = record.get(fields["code"])
            services.append(
                IgnitionService(
                    id=str(record[fields["id"]]),
                    name=str(record.get(fields["name"]) or ""),
                    code=None if code is None else str(code),
                )
            )
        return services

    def find_drafts(self, reference: str) -> list[IgnitionDraftSummary]:
        """Invoices and drafts (list_invoices includes drafts) whose reference is exactly
        ``reference``. The tool's text filter is used when its schema has one; the match is ours."""
        wanted = reference.strip()
        tool = self.config.tools.list_invoices

        async def work(batch: _Batch) -> list[dict[str, Any]]:
            schema = await batch.schema(tool)
            props = _properties(schema)
            arguments: dict[str, Any] = {}
            if self.config.search_argument in props:
                arguments[self.config.search_argument] = wanted
            found: list[dict[str, Any]] = []
            for _ in range(self.config.max_pages):
                records, page = _records(
                    tool, await batch.call(tool, arguments), self.config.list_keys["invoices"]
                )
                found.extend(records)
                cursor = page.get(self.config.next_cursor_field) if isinstance(page, dict) else None
                if not cursor or self.config.cursor_argument not in props:
                    break
                arguments = {**arguments, self.config.cursor_argument: cursor}
            return found

        fields = self.config.result_fields
        summaries = []
        for record in self._run(work):
            if str(record.get(fields["reference"]) or "").strip() != wanted:
                continue
            client = record.get(fields["client_slug"])
            if isinstance(client, dict):  # {"slug": ...} as in the Reporting API
                client = client.get("slug")
            app_path = record.get(fields["app_path"])
            summaries.append(
                IgnitionDraftSummary(
                    draft_id=str(record[fields["draft_id"]]),
                    reference=wanted,
                    client_slug=None if client is None else str(client),
                    state=str(record.get(fields["state"]) or "unknown"),
                    app_path=None if app_path is None else str(app_path),
                )
            )
        return summaries

    def create_invoice_draft(self, request: InvoiceDraftRequest) -> CreatedDraft:
        """One draft. Not idempotent (stricter reading): the caller looks with find_drafts first."""
        tool = self.config.tools.create_invoice_draft
        known = _cached_schema(self.config.url, tool)
        if known is not None:  # a refusal from the cached schema opens no session at all
            _validate(tool, known, _draft_arguments(request, self.config, known))

        async def work(batch: _Batch) -> Any:
            arguments = _draft_arguments(request, self.config, await batch.schema(tool))
            return await batch.call(tool, arguments)

        payload = self._run(work)
        if not isinstance(payload, dict):
            raise IgnitionMcpUnavailable(f"Ignition's {tool} answered without a draft object")
        fields = self.config.result_fields
        draft_id, app_path, total = (payload.get(fields[k]) for k in ("draft_id", "app_path", "total"))
        if draft_id is None or app_path is None:
            # The draft may exist: the feature's find_drafts by reference finds it on the next try.
            raise IgnitionMcpUnavailable(
                f"Ignition's {tool} answered without {fields['draft_id']}/{fields['app_path']}"
            )
        try:
            computed = None if total is None else Decimal(str(total))
        except InvalidOperation:
            computed = None
        logger.info(
            "Ignition invoice draft created", extra={"draft_id": draft_id, "reference": request.reference}
        )
        return CreatedDraft(draft_id=str(draft_id), app_path=str(app_path), total=computed)

    # -- generic -------------------------------------------------------------------------------

    def call_tool(self, tool: str, arguments: Mapping[str, Any]) -> Any:
        """Any tool, its arguments validated against its published schema (doctor, the CLI)."""
        known = _cached_schema(self.config.url, tool)
        if known is not None:
            _validate(tool, known, arguments)

        async def work(batch: _Batch) -> Any:
            return await batch.call(tool, dict(arguments))

        return self._run(work)

    def tool_schemas(self) -> dict[str, dict[str, Any]]:
        """The input schemas the server publishes (read once per process)."""

        async def work(batch: _Batch) -> dict[str, dict[str, Any]]:
            return {name: dict(tool.input_schema) for name, tool in (await batch.tools()).items()}

        return self._run(work)

    def _catalogue(self, name: str, tool: str) -> list[dict[str, Any]]:
        key = (self.config.url, name)
        with _cache_mutex:
            cached = _catalogues.get(key)
        if cached is not None and self._monotonic() - cached[0] < self.config.catalogue_cache_seconds:
            return cached[1]

        async def work(batch: _Batch) -> list[dict[str, Any]]:
            records, _ = _records(tool, await batch.call(tool, {}), self.config.list_keys[name])
            return records

        records = self._run(work)
        with _cache_mutex:
            _catalogues[key] = (self._monotonic(), records)
        return records

    def _run(self, work: Callable[[_Batch], Awaitable[T]]) -> T:
        """One batch in a fresh event loop: a session, ``work``, closed again."""
        try:
            token = self.tokens.access_token()
        except Exception as exc:  # noqa: BLE001 - classified: auth lost, or a transient fault
            raise _auth_failure(exc) from None
        self.budget.acquire(SESSION_OVERHEAD_REQUESTS)
        probe = _HttpProbe()
        auth = _BearerAuth(token, self._refreshed)

        url, timeout = self.config.url, self.config.timeout_seconds

        async def main() -> T:
            async with httpx2.AsyncClient(
                auth=auth,
                transport=self._transport,
                timeout=httpx2.Timeout(timeout),
                event_hooks={"request": [probe.on_request], "response": [probe.on_response]},
                trust_env=self._transport is None,
            ) as http:
                with anyio.fail_after(self.config.batch_timeout_seconds):
                    streams = streamable_http_client(url, http_client=http, terminate_on_close=False)
                    async with (
                        streams as (read, write),
                        ClientSession(read, write, read_timeout_seconds=timeout) as session,
                    ):
                        batch = _Batch(self, session, probe, auth)
                        try:
                            await session.initialize()
                        except MCPError as exc:
                            raise batch.translate("initialize", exc) from None
                        batch.absorb_cached_listing()
                        return await work(batch)

        try:
            return anyio.run(main)
        except BaseException as exc:  # noqa: BLE001 - the SDK's task groups wrap what happened
            raise self._classified(exc, auth) from None
        finally:
            logger.debug("Ignition MCP batch", extra={"http_requests": probe.requests})

    def _refreshed(self, stale: str) -> str:
        """A 401: one more request, with a refreshed token."""
        self.budget.acquire()
        return self.tokens.force_refresh(stale)

    @staticmethod
    def _classified(exc: BaseException, auth: _BearerAuth) -> BaseException:
        ours = _first(exc, _OURS)
        if ours is not None:
            return ours
        if auth.failure is not None:
            return _auth_failure(auth.failure)
        if _first(exc, (TimeoutError,)) is not None:
            return IgnitionMcpUnavailable("Ignition's MCP server did not answer in time")
        transport = _first(
            exc, (httpx2.TransportError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
        )
        if transport is not None:
            return IgnitionMcpUnavailable(f"Ignition's MCP server is unreachable: {type(transport).__name__}")
        mcp_error = _first(exc, (MCPError,))
        if isinstance(mcp_error, MCPError):
            return IgnitionMcpUnavailable(f"Ignition MCP failed: {mcp_error.message}")
        return exc
