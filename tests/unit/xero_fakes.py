"""Fakes that behave like Xero (token endpoint + Accounting API) and a controllable clock, for the
unit tests of shared/oauth.py and shared/xero/. Plugged in with ``httpx.MockTransport``: no network.

The fake token endpoint rotates single-use refresh tokens (with a configurable grace period for the
previous one, 30 minutes at Xero), the API answers 401 TokenExpired for expired/revoked tokens,
403 for a wrong tenant, 429 over 60 calls a minute with ``Retry-After``, and accepts scripted
faults (503 plain text, timeouts, lost responses).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

CLIENT_ID = "client-id-123"
CLIENT_SECRET = "client-secret-456"
TENANT_ID = "11111111-2222-3333-4444-555555555555"
TOKEN_URL = "https://identity.xero.test/connect/token"
API_URL = "https://api.xero.test"


class FakeClock:
    """Epoch-seconds clock that only moves when told to; ``sleep`` advances it and records."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@dataclass
class _Refresh:
    token: str
    used_at: float | None = None


@dataclass
class Fault:
    """A scripted answer for the next matching API request instead of the real one."""

    kind: str  # "status" | "timeout" | "lost" (process, then raise ReadTimeout)
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str = "text/plain"


class FakeXero:
    def __init__(self, clock: FakeClock, *, grace_seconds: float = 1_800, token_latency: float = 0.0) -> None:
        self.clock = clock
        self.grace_seconds = grace_seconds
        self.token_latency = token_latency
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.refresh_tokens: dict[str, _Refresh] = {}
        self.access_tokens: dict[str, float] = {}  # token -> expires at
        self.refresh_calls = 0
        self.client_credentials_calls = 0
        self.invalid_grants = 0
        self.token_faults: list[str] = []  # "timeout" | "lost" | "503"
        self.api_faults: list[Fault] = []
        self.requests: list[httpx.Request] = []
        self.minute_counts: dict[int, int] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, int, bytes]] = {}
        self.on_api_request: Callable[[httpx.Request], None] | None = None

    # --- set-up helpers -----------------------------------------------------------------------

    def issue(self, lifetime: float = 1_800) -> dict[str, Any]:
        """A fresh token pair, as the token endpoint would answer (also used to seed the store)."""
        with self._lock:
            n = next(self._ids)
            access, refresh = f"access-{n}-{uuid.uuid4().hex[:8]}", f"refresh-{n}-{uuid.uuid4().hex[:8]}"
            self.access_tokens[access] = self.clock.time() + lifetime
            self.refresh_tokens[refresh] = _Refresh(refresh)
            return {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": int(lifetime),
                "token_type": "Bearer",
                "scope": "offline_access accounting.contacts",
            }

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        contact = {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "UpdatedDateUTC": f"/Date({int(self.clock.time() * 1000)}+0000)/",
            **fields,
        }
        self.contacts[contact["ContactID"]] = contact
        return contact

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == "api.xero.test"]

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "identity.xero.test":
            return self._token(request)
        with self._lock:
            self.requests.append(request)
        if self.on_api_request is not None:
            self.on_api_request(request)
        return self._api(request)

    # --- token endpoint ---------------------------------------------------------------------

    def _token(self, request: httpx.Request) -> httpx.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return httpx.Response(400, json={"error": "invalid_client"})
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if self.token_latency:
            time.sleep(self.token_latency)  # widen the race window for concurrency tests
        fault = self.token_faults.pop(0) if self.token_faults else None
        if fault == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "503":
            return httpx.Response(503, text="Service Unavailable")
        if form.get("grant_type") == "client_credentials":
            with self._lock:
                self.client_credentials_calls += 1
                body = self.issue()
                body.pop("refresh_token")
                self.refresh_tokens.popitem()
            return httpx.Response(200, json=body)
        if form.get("grant_type") != "refresh_token":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        with self._lock:
            self.refresh_calls += 1
            record = self.refresh_tokens.get(form.get("refresh_token", ""))
            now = self.clock.time()
            usable = record is not None and (
                record.used_at is None or now - record.used_at <= self.grace_seconds
            )
            if not usable or (record is not None and record.used_at is not None and self.grace_seconds <= 0):
                self.invalid_grants += 1
                return httpx.Response(400, json={"error": "invalid_grant"})
            assert record is not None
            record.used_at = record.used_at or now
            body = self.issue()
        if fault == "lost":  # Xero rotated, but the answer never arrives
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json=body)

    # --- Accounting API -----------------------------------------------------------------------

    def _limit_headers(self) -> dict[str, str]:
        used = self.minute_counts.get(int(self.clock.time() // 60), 0)
        return {
            "X-MinLimit-Remaining": str(max(60 - used, 0)),
            "X-DayLimit-Remaining": str(5_000 - sum(self.minute_counts.values())),
            "X-AppMinLimit-Remaining": "9999",
        }

    def _api(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.lower() == "/connections":
            return self._json(
                200,
                [
                    {
                        "id": str(uuid.uuid4()),
                        "tenantId": TENANT_ID,
                        "tenantType": "ORGANISATION",
                        "tenantName": "Demo Company (AU)",
                    }
                ],
            )
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        expires = self.access_tokens.get(token)
        if expires is None:
            return self._json(
                401, {"Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}
            )
        if expires <= self.clock.time():
            return self._json(
                401, {"Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired"}
            )
        if request.headers.get("xero-tenant-id") != TENANT_ID:
            return self._json(
                403, {"Type": "AuthenticationUnsuccessful", "Title": "Forbidden", "Status": 403}
            )
        with self._lock:
            window = int(self.clock.time() // 60)
            self.minute_counts[window] = self.minute_counts.get(window, 0) + 1
            if self.minute_counts[window] > 60:
                retry = str(60 - int(self.clock.time() % 60))
                return httpx.Response(
                    429, headers={"Retry-After": retry, "X-Rate-Limit-Problem": "minute"}, text=""
                )
            fault = self.api_faults.pop(0) if self.api_faults else None
        if fault is not None and fault.kind == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault is not None and fault.kind == "status":
            return httpx.Response(
                fault.status,
                headers={"Content-Type": fault.content_type, **self._limit_headers(), **fault.headers},
                content=fault.body,
            )
        response = self._idempotent(request)
        if fault is not None and fault.kind == "lost":
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    def _idempotent(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("Idempotency-Key")
        if request.method not in ("POST", "PUT") or key is None:
            return self._route(request)
        digest = hashlib.sha256(request.content).hexdigest()
        with self._lock:
            if key in self.idempotency:
                seen_digest, status, content = self.idempotency[key]
                if seen_digest != digest:
                    return self._json(
                        400,
                        {
                            "ErrorNumber": 10,
                            "Type": "ValidationException",
                            "Message": "Idempotency key reused with a different body",
                        },
                    )
                return httpx.Response(
                    status,
                    content=content,
                    headers={"Content-Type": "application/json", **self._limit_headers()},
                )
            response = self._route(request)
            self.idempotency[key] = (digest, response.status_code, response.content)
            return response

    def _json(self, status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body, headers=self._limit_headers())

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api.xro/2.0")
        if path == "/Contacts" and request.method == "GET":
            return self._list_contacts(request)
        if path == "/Contacts" and request.method in ("POST", "PUT"):
            return self._write_contacts(request)
        raw = request.url.raw_path.decode().split("?")[0].removeprefix("/api.xro/2.0")
        match = re.fullmatch(r"/Contacts/([^/]+)", raw)
        if match and request.method == "GET":
            ident = unquote(match.group(1))
            found = [c for c in self.contacts.values() if ident in (c["ContactID"], c.get("ContactNumber"))]
            if not found:
                return self._json(404, {"Title": "NotFound"})
            return self._json(200, {"Contacts": found})
        return self._json(404, {"Title": "NotFound"})

    def _list_contacts(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        items = list(self.contacts.values())
        if params.get("includeArchived") != "true":
            items = [c for c in items if c["ContactStatus"] != "ARCHIVED"]
        if "IDs" in params:
            wanted = set(params["IDs"].split(","))
            items = [c for c in items if c["ContactID"] in wanted]
        if "where" in params:
            clauses = re.findall(r'(\w+)=="((?:[^"]|"")*)"', params["where"])
            items = [
                c
                for c in items
                if any(str(c.get(f, "")).lower() == v.replace('""', '"').lower() for f, v in clauses)
            ]
        since = request.headers.get("If-Modified-Since")
        if since:
            cutoff = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000
            items = [c for c in items if int(c["UpdatedDateUTC"][6:19]) >= cutoff]
        size = int(params.get("pageSize", "100"))
        if "page" in params:
            page = int(params["page"])
            items = items[(page - 1) * size : page * size]
        return self._json(200, {"Contacts": items})

    def _write_contacts(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        summarize = request.url.params.get("summarizeErrors", "true") != "false"
        results: list[dict[str, Any]] = []
        for element in body["Contacts"]:
            errors: list[dict[str, str]] = []
            name = element.get("Name")
            existing = self.contacts.get(element.get("ContactID", ""))
            if not name and existing is None:
                errors.append({"Message": "The contact name must be specified."})
            clash = [
                c
                for c in self.contacts.values()
                if name
                and c["Name"].lower() == name.lower()
                and c["ContactStatus"] == "ACTIVE"
                and c is not existing
            ]
            if clash:
                errors.append(
                    {
                        "Message": f"The contact name {name} is already assigned to another contact. "
                        "The contact name must be unique across all active contacts."
                    }
                )
            if request.method == "PUT" and existing is not None:
                errors.append({"Message": "Contact already exists."})
            if errors:
                results.append(
                    {
                        **element,
                        "HasValidationErrors": True,
                        "ValidationErrors": errors,
                        "StatusAttributeString": "ERROR",
                    }
                )
                continue
            if existing is not None:
                existing.update(element)
                results.append(existing)
            else:
                results.append(self.add_contact(**element))
        if summarize and any(r.get("HasValidationErrors") for r in results):
            return self._json(
                400,
                {
                    "ErrorNumber": 10,
                    "Type": "ValidationException",
                    "Message": "A validation exception occurred",
                    "Elements": results,
                },
            )
        return self._json(200, {"Contacts": results})


STATE_TABLE = "state-table"


@contextmanager
def moto_aws() -> Iterator[None]:
    """moto's in-process AWS for a whole test module: boto3 clients (slow to create) are made
    once per thread and reused; each test starts from a fresh table (``fresh_state_table``)."""
    from shared import aws

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "ap-southeast-2",
            "AWS_REGION": "ap-southeast-2",
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        # In-process moto does not serialise requests, so two threads' conditional writes can
        # both pass their condition. Real DynamoDB applies each write atomically: one request at
        # a time restores that, so the concurrency tests test our code, not moto's race.
        serial = threading.RLock()
        dispatch = BotocoreStubber.__call__

        def atomic(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            with serial:
                return dispatch(self, *args, **kwargs)

        mp.setattr(BotocoreStubber, "__call__", atomic)
        with mock_aws():
            aws.reset_clients()
            try:
                yield
            finally:
                aws.reset_clients()


def fresh_state_table() -> None:
    """The state table as the stack defines it (pk S + sk S, TTL on expires_at), emptied."""
    from shared import aws

    ddb = aws.client("dynamodb")
    if STATE_TABLE in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=STATE_TABLE)
    ddb.create_table(
        TableName=STATE_TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=STATE_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
