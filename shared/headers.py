"""HTTP header lookup for the webhook receivers (Ignition's and Xero's)."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``name``'s value in any case: API Gateway REST (v1) keeps the sender's case (Xero sends lower
    case, proxies may not), HTTP API (v2) lowercases."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
