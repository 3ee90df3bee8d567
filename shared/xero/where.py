"""Xero's ``where`` query language: building clauses safely.

Xero has no escape for a ``"`` or ``\\`` inside a string literal, so text that holds one is never
put in a clause (``where_safe``); callers then ask with ``searchTerm`` or a safe part of the text and
compare exactly on their side (``shared/xero/finders.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import UUID

_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")


def where_safe(value: str) -> bool:
    """Whether a text can be a ``where`` string literal at all. Xero has no escape that works: a
    ``"`` inside a literal is a QueryParseException (XeroAPI/Xero-Java#347) and ``\\`` is unsafe
    too; control characters are refused as well. Such text is looked up with ``searchTerm``."""
    return not any(ch in '"\\' or ord(ch) < 32 or ord(ch) == 127 for ch in value)


def where_eq(field: str, value: str | bool | int | UUID) -> str:
    """``Field=="value"`` for Xero's ``where`` parameter. ``==`` on text is case-sensitive under the
    strict reading (calcinai/xero-php#416): for values whose case may differ, use
    ``where_eq_ignore_case``. Raises ValueError for text that cannot be a literal (``where_safe``)."""
    if not _FIELD.match(field):
        raise ValueError(f"not a Xero field name: {field!r}")
    if isinstance(value, bool):
        return f"{field}=={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{field}=={value}"
    if isinstance(value, UUID):
        return f'{field}==Guid("{value}")'
    if not where_safe(value):
        raise ValueError(f"{field} value cannot be put in a where clause (quote, backslash or control)")
    return f'{field}=="{value}"'


def where_ends_with(field: str, value: str) -> str:
    """``Field.EndsWith("value")`` (case-sensitive under the strict reading, like ``==``)."""
    literal = where_eq(field, value)  # validates the field and the text
    return f"{field}.EndsWith({literal[len(field) + 2 :]})"


def where_eq_ignore_case(field: str, value: str) -> str:
    """``Field`` equals ``value`` ignoring case: ``Field.ToLower()=="value"`` (Xero support's advice,
    calcinai/xero-php#416), guarded against an empty field. Matches a superset at worst (.NET and
    Python lower-case a few letters differently): callers choose exactly on their side."""
    literal = where_eq(field, value.lower())  # validates the field and the text
    return f"{field}!=null AND {field}.ToLower(){literal[len(field) :]}"


def where_any(*clauses: str) -> str:
    """OR-join clauses (each parenthesised); empty clauses are dropped."""
    return _join(" OR ", clauses)


def where_all(*clauses: str) -> str:
    """AND-join clauses (each parenthesised); empty clauses are dropped."""
    return _join(" AND ", clauses)


def _join(operator: str, clauses: Sequence[str]) -> str:
    kept = [c for c in clauses if c]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return operator.join(f"({c})" for c in kept)
