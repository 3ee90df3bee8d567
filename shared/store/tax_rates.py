"""The organisation's tax rates, shared by the sync's execution environments through the state table.

Each environment's Xero client caches ``GET /TaxRates`` for an hour (``shared/xero/reference_cache.py``),
so every cold environment read them again on its first invoice: with a few concurrent environments,
or one that Lambda recycled after a quiet spell, that is a call per invoice. Here the first read is
kept in one state-table item (``pk=xero#reference``, ``sk=TaxRates#<tenant>``) until the same hour
from that read is up, and each environment keeps what it read until then too: no copy is older
than the per-environment cache allowed. When Xero refuses a tax type, or a rate is missing,
``invalidate_reference_data("TaxRates")`` drops the item with the client's own copy, so the next
read, in any environment, is Xero's.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel, ValidationError

from shared.models.xero import TaxRate
from shared.store.documents import StoredDocument
from shared.xero.client import ReferenceResource
from shared.xero.reference_cache import DEFAULT_TTL_SECONDS

REFERENCE_PK = "xero#reference"


class TaxRatesReader(Protocol):
    """What this needs of the Xero client (``shared/xero/client.py``, or the gathered one)."""

    def tax_rates(self) -> list[TaxRate]: ...

    def invalidate_reference_data(self, *resources: ReferenceResource) -> None: ...


class _Kept(BaseModel):
    expires_at: float  # epoch seconds
    rates: list[TaxRate]


class SharedTaxRates:
    def __init__(
        self,
        xero: TaxRatesReader,
        table_name: str,
        tenant_id: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._xero = xero
        self._document = StoredDocument(table_name, REFERENCE_PK, f"TaxRates#{tenant_id}")
        self._ttl = ttl_seconds
        self._clock = clock
        self._kept: _Kept | None = None
        # A gathered batch's invoice threads share this environment's copy: one of them reads the
        # table (and Xero, where the table has none) while the others wait for what it read.
        self._lock = threading.Lock()

    def tax_rates(self) -> list[TaxRate]:
        with self._lock:
            now = self._clock()
            if self._kept is None or now >= self._kept.expires_at:
                stored = self._stored()
                self._kept = stored if stored is not None and now < stored.expires_at else self._read(now)
            return copy.deepcopy(self._kept.rates)

    def invalidate_reference_data(self, *resources: ReferenceResource) -> None:
        if not resources or "TaxRates" in resources:
            with self._lock:
                self._kept = None
                self._document.delete()
        self._xero.invalidate_reference_data(*resources)

    def _stored(self) -> _Kept | None:
        body = self._document.read()
        try:
            return _Kept.model_validate_json(body) if body else None
        except ValidationError:  # written by another release: read Xero, and write it again
            return None

    def _read(self, now: float) -> _Kept:
        # The client's own copy may be one another environment has since found wrong.
        self._xero.invalidate_reference_data("TaxRates")
        kept = _Kept(expires_at=now + self._ttl, rates=self._xero.tax_rates())
        self._document.write(kept.model_dump_json())
        return kept
