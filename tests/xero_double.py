"""The one Xero test double: the sandbox's Xero emulator (``sandbox/xero_emulator/``) mounted
in-process with ``httpx.WSGITransport``, so the real ``shared/xero`` client and ``shared/oauth``
token providers speak HTTP to the same rules the sandbox and the integration tests use, with no
socket and a clock that moves only when told.

Xero's behaviour (token rotation and grace, 401/403/429, validation, idempotency, totals) is the
emulator's; its admin controls (``/_emulator/*``: fail-next, fault profiles, seeding, state) are
reached through the double. The double adds only what a network does and Xero cannot be asked to:
a call that times out before reaching Xero, an answer lost after Xero applied the call, a slow
token endpoint, and a canned answer for bytes the emulator never writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import httpx

from sandbox.xero_emulator import DEFAULT_TENANT_ID, XeroEmulator
from shared.config import XeroConfig
from shared.oauth import (
    ClientCredentials,
    Lock,
    RefreshingTokenProvider,
    RefreshOutcome,
    TokenProviderOptions,
    TokenSet,
    TokenStore,
)
from shared.xero.budget import InMemoryCallBudget
from shared.xero.client import XeroCall, XeroClient
from shared.xero.reference_cache import ReferenceDataCache
from tests.fakes import ManualClock

CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
TENANT_ID = DEFAULT_TENANT_ID
# Any host reaches the emulator through the transport; distinct names keep the two APIs apart.
API_URL = "https://api.xero.test"
TOKEN_URL = "https://identity.xero.test/connect/token"


class ThreadLock:
    """In-process stand-in for the DynamoDB lease lock (tested on its own in test_locks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> None:
        assert self._lock.acquire(timeout=-1 if timeout is None else timeout)

    def extend(self, seconds: float | None = None) -> None:
        assert self._lock.locked()  # one process: the lease cannot be lost

    def release(self) -> None:
        self._lock.release()


@dataclass(frozen=True)
class WireFault:
    """What the network does to the next matching call: ``timeout`` (never reaches Xero), ``lost``
    (Xero applies it, the answer never arrives) or ``answer`` (these bytes instead of Xero's)."""

    kind: Literal["timeout", "lost", "answer"]
    token_endpoint: bool = False  # the token endpoint's next call instead of the API's
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class XeroDouble:
    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.emulator = XeroEmulator(clock=self.clock, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        self.requests: list[httpx.Request] = []
        self.wire_faults: list[WireFault] = []
        self.token_latency = 0.0  # real seconds: widens a race between threads
        # Runs once, after Xero answered a token call and before the caller reads the answer: a
        # slow network or a paused Lambda, while other workers go on.
        self.before_token_answer: Callable[[httpx.Response], None] | None = None
        self._admin = self.emulator.app.test_client()
        self._wsgi = httpx.WSGITransport(app=self.emulator.app)
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        return _Wire(self._send)

    def http(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def token_set(self, **fields: Any) -> TokenSet:
        """A token set as the consent flow leaves it in the store (30-minute access token)."""
        issued = self.emulator.issue_token_set()
        values: dict[str, Any] = {
            "access_token": issued["access_token"],
            "refresh_token": issued["refresh_token"],
            "expires_at": self.clock.now() + timedelta(seconds=int(issued["expires_in"])),
            "scope": issued["scope"],
            **fields,
        }
        return TokenSet.model_validate(values)

    def refreshing_tokens(self, store: TokenStore, lock: Lock | None = None) -> RefreshingTokenProvider:
        return RefreshingTokenProvider(
            TOKEN_URL,
            CREDENTIALS,
            store,
            lock or ThreadLock(),
            self.token_options(),
        )

    def token_options(
        self, on_refresh: Callable[[RefreshOutcome], None] | None = None
    ) -> TokenProviderOptions:
        """A provider's options that keep the double's time and call its token endpoint."""
        return TokenProviderOptions(
            clock=self.clock.time, sleep=self.clock.sleep, http=self.http(), on_refresh=on_refresh
        )

    def client(
        self,
        tokens: RefreshingTokenProvider,
        *,
        tenant_id: str = TENANT_ID,
        on_call: Callable[[XeroCall], None] | None = None,
        reference_cache: ReferenceDataCache | None = None,
        **config: Any,
    ) -> XeroClient:
        """The real client on the double: the clock's sleep, the worst case of full jitter (the cap
        itself), an in-memory budget on the same clock."""
        settings = XeroConfig.model_validate({"api_url": API_URL, "max_inline_wait_seconds": 20, **config})
        return XeroClient(
            settings,
            tokens,
            tenant_id,
            InMemoryCallBudget(settings, clock=self.clock.time, sleep=self.clock.sleep),
            http=self.http(),
            on_call=on_call,
            sleep=self.clock.sleep,
            rand=lambda: 1.0,
            reference_cache=reference_cache,
        )

    # -- the emulator's admin controls ------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        retry_after: int | None = None,
        body: str | None = None,
        problem: str = "minute",
    ) -> None:
        """Xero answers the next ``count`` API calls with ``status`` (503 plain text, 429 with
        Retry-After and X-Rate-Limit-Problem, ``body`` verbatim when given)."""
        spec: dict[str, Any] = {"status": status, "count": count, "problem": problem}
        if retry_after is not None:
            spec["retry_after"] = retry_after
        if body is not None:
            spec["body"] = body
        self._post("/_emulator/fail-next", spec)

    def fault_profile(self, **profile: Any) -> None:
        """``POST /_emulator/faults`` (sandbox/xero_emulator/faults.py names the keys); none clears."""
        self._post("/_emulator/faults", profile)

    def seed(
        self, resource: Literal["Contacts", "Invoices"], *records: dict[str, Any]
    ) -> list[dict[str, Any]]:
        seeded: list[dict[str, Any]] = self._post(
            f"/_emulator/{resource.lower()}", {resource: list(records)}
        )[resource]
        return seeded

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self._admin.get("/_emulator/state").get_json()
        return state

    def records(self, resource: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.state()[resource]
        return records

    def record(self, resource: str, id_field: str, record_id: str) -> dict[str, Any]:
        return next(r for r in self.records(resource) if str(r[id_field]).lower() == record_id.lower())

    @property
    def refreshes(self) -> int:
        return int(self.state()["token_refreshes"])

    @property
    def invalid_grants(self) -> int:
        return int(self.state()["invalid_grants"])

    def revoke(self, token: str) -> None:
        """Xero's revocation endpoint: the refresh token is dead (the user disconnected the app)."""
        response = self._admin.post(
            "/connect/revocation", data={"token": token}, auth=(CLIENT_ID, CLIENT_SECRET)
        )
        assert response.status_code == 200, response.get_data(as_text=True)

    def api_requests(self) -> list[httpx.Request]:
        """What reached the wire, token endpoint excepted (identity's /connections included)."""
        with self._lock:
            return [r for r in self.requests if not _token_call(r)]

    def token_requests(self) -> list[httpx.Request]:
        with self._lock:
            return [r for r in self.requests if _token_call(r)]

    # -- internals ---------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._admin.post(path, json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def _send(self, request: httpx.Request) -> httpx.Response:
        token_call = _token_call(request)
        with self._lock:
            self.requests.append(request)
            fault = next((f for f in self.wire_faults if f.token_endpoint == token_call), None)
            if fault is not None:
                self.wire_faults.remove(fault)
        if token_call and self.token_latency:
            time.sleep(self.token_latency)
        if fault is not None and fault.kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault is not None and fault.kind == "answer":
            return httpx.Response(fault.status, headers=dict(fault.headers), content=fault.body)
        response = self._wsgi.handle_request(request)
        response.read()
        if fault is not None and fault.kind == "lost":
            raise httpx.ReadTimeout("timed out", request=request)
        with self._lock:
            hook = self.before_token_answer if token_call else None
            if hook is not None:
                self.before_token_answer = None
        if hook is not None:
            hook(response)
        return response


class _Wire(httpx.BaseTransport):
    def __init__(self, send: Callable[[httpx.Request], httpx.Response]) -> None:
        self._send = send

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._send(request)


def _token_call(request: httpx.Request) -> bool:
    return request.url.path.rstrip("/").endswith("/connect/token")
