"""JSON that never sends an Ignition amount through a binary float.

Ignition's amounts may arrive as JSON numbers ("33.335") as well as strings. ``json.loads`` would
read such a number as a float, off by a fraction of a cent before anything can check it. ``loads``
reads every non-integer number as a ``Decimal`` (integers stay ``int``) and refuses ``NaN`` and
``Infinity``, which are not JSON and not money. ``dumps`` writes a ``Decimal`` back as the same
JSON number token it was read from, so an emulator or a fixture can round-trip a body exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(document: str | bytes) -> Any:
    """Parse JSON with non-integer numbers as ``Decimal``. Raises ``ValueError`` (a
    ``json.JSONDecodeError`` for syntax errors) when the document is not strict JSON."""
    return json.loads(document, parse_float=Decimal, parse_constant=_refuse_constant)


def _encode(value: Any, item_sep: str, key_sep: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as a JSON number")
        # str() of a finite Decimal is always a valid JSON number ("33.335", "1E+2", "-0.00").
        return str(value)
    if isinstance(value, dict):
        members = (
            json.dumps(key if isinstance(key, str) else str(key)) + key_sep + _encode(item, item_sep, key_sep)
            for key, item in value.items()
        )
        return "{" + item_sep.join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + item_sep.join(_encode(item, item_sep, key_sep) for item in value) + "]"
    # Strings, ints, bools, None: the standard encoder, refusing NaN and infinities as above.
    return json.dumps(value, allow_nan=False)


def dumps(value: Any, *, compact: bool = False) -> str:
    """JSON text with every ``Decimal`` written as its exact number token, never via float."""
    return _encode(value, "," if compact else ", ", ":" if compact else ": ")
