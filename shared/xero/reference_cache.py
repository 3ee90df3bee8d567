"""An in-process cache for Xero reference data (tax rates, accounts, tracking categories, ...).

Reference data changes rarely, and every read costs one call of the organisation's 60/minute and
5,000/day. A warm Lambda keeps its ``XeroClient`` (and so this cache) between events, so it reads
tax rates and accounts about once an hour instead of once per invoice. When Xero rejects a tax or
account rule, ``invalidate`` drops the entries so the next read sees what Xero has now.

Entries are keyed by (tenant id, resource, parameters...), so one cache may be shared by clients
of several organisations. Values are deep-copied in and out: a caller that edits a returned model
cannot change what the next caller sees.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast

T = TypeVar("T")

DEFAULT_TTL_SECONDS = 3_600.0

CacheKey = tuple[str, ...]


class ReferenceDataCache:
    def __init__(
        self, ttl_seconds: float = DEFAULT_TTL_SECONDS, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[CacheKey, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: CacheKey, load: Callable[[], T]) -> T:
        """The cached value for ``key`` while it is younger than the TTL, else ``load()`` (stored).

        ``load`` runs outside the lock: two threads missing at once both call Xero once, which is
        cheaper than holding every other key's readers behind a slow HTTP call.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now < entry[0]:
                return cast(T, copy.deepcopy(entry[1]))
        value = load()
        if self.ttl_seconds > 0:
            with self._lock:
                self._entries[key] = (self._clock() + self.ttl_seconds, copy.deepcopy(value))
        return value

    def invalidate(self, tenant_id: str | None = None, resource: str | None = None) -> None:
        """Forget entries: all of them, one tenant's, or one tenant's ``resource`` (any parameters)."""
        prefix: CacheKey = tuple(p for p in (tenant_id, resource) if p is not None)
        if resource is not None and tenant_id is None:
            raise ValueError("invalidate a resource of one tenant: pass tenant_id too")
        with self._lock:
            for key in [k for k in self._entries if k[: len(prefix)] == prefix]:
                del self._entries[key]
