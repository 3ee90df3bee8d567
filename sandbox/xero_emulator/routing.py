"""The Accounting API route table: each resource contributes ``Route``s; the emulator's request
pipeline (faults, auth, tenant, limits, idempotency) runs in front of every one of them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import Request, Response

Handler = Callable[[Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # regex on the path after /api.xro/2.0/, named groups become params
    handler: Handler
    label: str  # how the call is counted in /_emulator/state, e.g. "GET /Contacts"
    scopes: frozenset[str]  # any one of these grants access
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Xero's paths are case-insensitive (/contacts works as well as /Contacts).
        object.__setattr__(self, "_compiled", re.compile(self.pattern, re.IGNORECASE))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self._compiled.fullmatch(path.strip("/"))
        return None if found is None else found.groupdict()


def scopes(*areas: str) -> tuple[frozenset[str], frozenset[str]]:
    """The scopes that open a resource, as (read, write): a write takes ``accounting.<area>`` for
    any of ``areas`` (a broad one such as transactions, or the granular one such as invoices); a
    read takes any of those or its ``.read`` form."""
    write = frozenset(f"accounting.{area}" for area in areas)
    return write | {f"{scope}.read" for scope in write}, write


# Each resource's scopes, once: several resources' routes share them (contact groups are contacts).
CONTACTS_READ, CONTACTS_WRITE = scopes("contacts")
SETTINGS_READ, _ = scopes("settings")
INVOICES_READ, INVOICES_WRITE = scopes("transactions", "invoices")
PAYMENTS_READ, PAYMENTS_WRITE = scopes("transactions", "payments")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def route(method: str, path: str, handler: Handler, scopes: frozenset[str]) -> Route:
    """A route as Xero's docs write its path (``Contacts/{id}``), counted as ``"<METHOD> /<path>"``.
    The first ``{...}`` (the record's id or number) reaches the handler as ``key``, a later one
    under its own name."""
    names = iter(("key",))

    def segment(placeholder: re.Match[str]) -> str:
        return f"(?P<{next(names, placeholder.group(1))}>[^/]+)"

    return Route(method, _PLACEHOLDER.sub(segment, path), handler, f"{method} /{path}", scopes)


def find_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None
