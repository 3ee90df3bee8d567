"""Building Xero ``where`` filters safely: values come from Ignition (people's names, e-mail
addresses) and must never be able to change the filter's meaning."""

from __future__ import annotations

import uuid


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def where_eq(field: str, value: str) -> str:
    if not field.isidentifier():
        raise ValueError(f"not a Xero field name: {field!r}")
    return f"{field}=={quote(value.strip())}"


def where_guid(field: str, value: str) -> str:
    if not field.isidentifier():
        raise ValueError(f"not a Xero field name: {field!r}")
    return f'{field}==Guid("{uuid.UUID(value)}")'


def where_any(*clauses: str) -> str:
    return " OR ".join(f"({clause})" for clause in clauses)
