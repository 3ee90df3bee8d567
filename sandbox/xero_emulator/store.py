"""State shared by every resource: a generic record store, the idempotency cache, injected faults.

A later resource (Invoices, Payments, TaxRates, ...) adds one ``ResourceStore`` and its routes;
a fuller fault profile implements ``Fault`` and is pushed on the same queue.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response

from . import responses

IDEMPOTENCY_TTL_SECONDS = 6 * 60
IDEMPOTENCY_KEY_MAX = 128


class ResourceStore:
    """Records of one resource type keyed by their Xero ID, kept in insertion order."""

    def __init__(self, name: str, id_field: str) -> None:
        self.name = name
        self.id_field = id_field
        self._records: dict[str, dict[str, Any]] = {}

    def get(self, record_id: str) -> dict[str, Any] | None:
        return self._records.get(record_id.lower())

    def put(self, record: dict[str, Any]) -> None:
        self._records[str(record[self.id_field]).lower()] = record

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def snapshot(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self._records.values()))

    def clear(self) -> None:
        self._records.clear()


@dataclass
class CachedResponse:
    fingerprint: str
    expires_at: float
    status: int
    body: bytes
    mimetype: str


@dataclass
class IdempotencyCache:
    entries: dict[str, CachedResponse] = field(default_factory=dict)

    def lookup(self, key: str, now: float) -> CachedResponse | None:
        self.entries = {k: v for k, v in self.entries.items() if v.expires_at > now}
        return self.entries.get(key)

    def remember(self, key: str, fingerprint: str, now: float, response: Response) -> None:
        self.entries[key] = CachedResponse(
            fingerprint,
            now + IDEMPOTENCY_TTL_SECONDS,
            response.status_code,
            response.get_data(),
            response.mimetype or "application/json",
        )


class Fault(Protocol):
    """Something that may answer an API call instead of the emulator (consumed in order)."""

    def take(self) -> Response | None: ...

    @property
    def exhausted(self) -> bool: ...


@dataclass
class FailNext:
    """``POST /_emulator/fail-next``: the next ``count`` API calls fail with ``status``."""

    status: int
    count: int = 1
    retry_after: int | None = None
    body: str | None = None
    problem: str = "minute"

    @property
    def exhausted(self) -> bool:
        return self.count <= 0

    def take(self) -> Response | None:
        if self.count <= 0:
            return None
        self.count -= 1
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 429:
            headers.setdefault("Retry-After", "60")
            headers["X-Rate-Limit-Problem"] = self.problem
        if self.body is not None:
            return responses.text_response(self.body, self.status, headers)
        if self.status == 503:
            # Maintenance answers plain text, not JSON: clients must check the status first.
            return responses.text_response(responses.MAINTENANCE_TEXT, 503, headers)
        if self.status == 429:
            return responses.problem(
                429, "Too Many Requests", f"Rate limit exceeded: {self.problem}", headers
            )
        if self.status == 500:
            return responses.json_response(
                {
                    "ErrorNumber": 500,
                    "Type": "UnknownErrorException",
                    "Message": responses.SERVER_ERROR_MESSAGE,
                },
                500,
                headers,
            )
        if self.status == 404:
            return responses.text_response(responses.NOT_FOUND_TEXT, 404, headers)
        return responses.problem(self.status, "Error", f"Injected fault {self.status}", headers)
