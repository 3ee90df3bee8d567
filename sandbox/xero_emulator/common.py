"""Helpers the billing resources share: timestamps, bodies, dates, money on the wire, list queries.

Amounts are read with ``parse_float=Decimal`` and computed as ``Decimal``; records keep JSON-ready
floats (2-4 dp survive a float's shortest repr exactly), so snapshots and responses need no
special encoder. The caller (the emulator) holds its lock around everything here.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime, parse_xero_datetime

from . import responses
from .where import WhereParseError, compile_where

logger = logging.getLogger("sandbox.xero_emulator")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Xero's empty GUID: the id it shows on an element it did not save.
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ORDER = re.compile(r"^\s*([A-Za-z_]+)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)
_STRING_LITERAL = re.compile(r'("(?:[^"]|"")*")')


class BodyError(ValueError):
    """The request body is not the JSON shape the endpoint takes: the pipeline (app.py) answers
    400 PostDataInvalidException, as Xero does."""


class Stamper:
    """Strictly increasing millisecond timestamps, so If-Modified-Since never misses a write."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        now = self._now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(milliseconds=1)
        self._last = now
        return now


def read_elements(
    request: Request, key: str, parse_float: Callable[[str], Any] = Decimal
) -> list[dict[str, Any]]:
    """``{"<key>": [...]}`` or one bare element; Decimal for every JSON number with a fraction
    unless ``parse_float`` says otherwise."""
    try:
        body = json.loads(request.get_data(as_text=True) or "null", parse_float=parse_float)
    except ValueError as error:
        raise BodyError("JSON for post data was invalid") from error
    if isinstance(body, dict) and isinstance(body.get(key), list):
        elements: list[Any] = body[key]
    elif isinstance(body, dict) and key not in body:
        elements = [body]
    else:
        raise BodyError("JSON for post data was invalid")
    if not all(isinstance(element, dict) for element in elements):
        raise BodyError("JSON for post data was invalid")
    return elements


def summarize_errors(request: Request) -> bool:
    return request.args.get("summarizeErrors", "true").strip().lower() != "false"


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def to_int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def decimal_of(value: Any) -> Decimal:
    """A JSON number (or numeric string) as Decimal; floats go through their shortest repr."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a number")
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not a number") from error
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return result


def wire(value: Any) -> Any:
    """Decimals -> JSON numbers, recursively (for echoing a submitted element back)."""
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def money(value: Decimal) -> float:
    return float(value)


def parse_date(value: Any) -> date:
    """``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM:SS`` or ``/Date(ms+zzzz)/`` -> a date."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a date")
    text = value.strip()
    if text.startswith("/Date("):
        parsed = parse_xero_datetime(text)
        if parsed is None:
            raise ValueError(f"{value!r} is not a date")
        return parsed.date()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def render_date(value: date) -> str:
    """Xero's x-is-msdate form: midnight UTC as ``/Date(ms+0000)/``."""
    return format_xero_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))


def record_date(record: Mapping[str, Any], field: str) -> date | None:
    value = record.get(field)
    return parse_date(value) if isinstance(value, str) and value else None


def updated(record: Mapping[str, Any]) -> datetime:
    return parse_xero_datetime(record.get("UpdatedDateUTC")) or datetime.min.replace(tzinfo=UTC)


def parse_if_modified_since(value: str | None) -> datetime | None:
    """RFC 1123 (``Wed, 21 Oct 2015 07:28:00 GMT``) or ISO-8601; anything else is ignored."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            logger.info("ignoring unparseable If-Modified-Since", extra={"if_modified_since": value})
            return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def query(
    records: list[dict[str, Any]],
    request: Request,
    *,
    fields: Iterable[str],
    id_field: str,
    view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    nested: Mapping[str, Iterable[str]] | None = None,
    ids: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What every list endpoint reads the same way: ``IDs`` (or ``ids``, the value given),
    ``If-Modified-Since``, ``where``, ``order`` and the page. Returns the page and the envelope's
    extra fields; raises WhereParseError for what Xero answers with a QueryParseException."""
    args = request.args
    wanted = id_list(args.get("IDs") if ids is None else ids)
    if wanted:
        records = [r for r in records if str(r[id_field]).lower() in wanted]
    since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
    if since is not None:
        records = [r for r in records if updated(r) > since]
    field_list = list(fields)
    records = filter_where(records, args.get("where"), field_list, view, nested)
    records = order_records(records, args.get("order"), field_list, id_field)
    return paginate(records, args)


def flatten_where(expression: str, nested: Mapping[str, Iterable[str]]) -> str:
    """``Contact.ContactID`` -> ``Contact_ContactID`` outside string literals: the shared parser reads
    ``a.b(`` as a method call, so nested properties are flattened into pseudo fields instead."""
    parts = _STRING_LITERAL.split(expression)
    for index in range(0, len(parts), 2):  # odd indexes are the literals
        for parent, children in nested.items():
            for child in children:
                parts[index] = re.sub(
                    rf"\b{parent}\.{child}\b", f"{parent}_{child}", parts[index], flags=re.IGNORECASE
                )
    return "".join(parts)


def filter_where(
    records: list[dict[str, Any]],
    expression: str | None,
    fields: Iterable[str],
    view: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    nested: Mapping[str, Iterable[str]] | None = None,
) -> list[dict[str, Any]]:
    """Raises WhereParseError for what Xero would answer with a QueryParseException."""
    if not expression:
        return records
    field_list = list(fields)
    if nested:
        expression = flatten_where(expression, nested)
        field_list += [f"{parent}_{child}" for parent, children in nested.items() for child in children]
    predicate = compile_where(expression, field_list)
    return [r for r in records if predicate(view(r) if view else r)]


def order_records(
    records: list[dict[str, Any]], order: str | None, fields: Iterable[str], id_field: str
) -> list[dict[str, Any]]:
    """``order=Field [ASC|DESC], ...``; default ``UpdatedDateUTC ASC`` then the ID, as Xero pages."""
    known = {name.lower(): name for name in fields}
    ordered = sorted(records, key=lambda r: str(r.get(id_field, "")).lower())
    clauses = [("UpdatedDateUTC", False)]
    if order:
        clauses = []
        for part in order.split(","):
            match = _ORDER.match(part)
            if match is None or match.group(1).lower() not in known:
                raise WhereParseError(f"Order by '{part.strip()}' is not supported")
            clauses.append((known[match.group(1).lower()], (match.group(2) or "ASC").upper() == "DESC"))
    for field, descending in reversed(clauses):
        ordered.sort(key=functools.partial(_sort_key, field=field), reverse=descending)
    return ordered


def _sort_key(record: dict[str, Any], field: str) -> tuple[int, Any]:
    value = record.get(field)
    if value is None:
        return (0, "")
    if isinstance(value, str) and value.startswith("/Date("):
        return (1, parse_xero_datetime(value))
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)


def paginate(
    records: list[dict[str, Any]], args: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``page`` (100 a page) and ``pageSize`` (max 1000); the pagination object only when paging."""
    if "page" not in args and "pageSize" not in args:
        return records, {}
    page = max(1, to_int(args.get("page"), 1))
    size = min(MAX_PAGE_SIZE, max(1, to_int(args.get("pageSize"), DEFAULT_PAGE_SIZE)))
    total = len(records)
    pagination = {"page": page, "pageSize": size, "pageCount": (total + size - 1) // size, "itemCount": total}
    return records[(page - 1) * size : page * size], {"pagination": pagination}


def id_list(value: str | None) -> set[str]:
    """``IDs=a,b`` (quotes tolerated) -> lower-cased set."""
    if not value:
        return set()
    return {part.strip().strip('"').lower() for part in value.split(",") if part.strip()}


def error_element(element: dict[str, Any], errors: list[str], flag_field: str) -> dict[str, Any]:
    """Xero echoes the submitted element with its ValidationErrors."""
    shown: dict[str, Any] = wire(copy.deepcopy(element))
    shown[flag_field] = True
    shown["ValidationErrors"] = [{"Message": message} for message in dict.fromkeys(errors)]
    return shown


def answer_writes(
    resource: str,
    elements: list[dict[str, Any]],
    write: Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]],
    *,
    request: Request,
    flag_field: str,
    id_field: str,
    now: datetime,
    echo_id: bool = True,
) -> Response:
    """Xero's answer to a PUT/POST of ``elements``: each saved one as ``write`` rendered it, each
    refused one echoed with its ValidationErrors and its id (the empty GUID if it has none or
    ``echo_id`` is false: a record that can only be created never has one). With
    summarizeErrors=false every element also says OK or ERROR and the answer is 200; otherwise
    one refusal makes it a ValidationException, though the good elements stay saved
    (integration-facts.md)."""
    summarize = summarize_errors(request)
    answered: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for element in elements:
        rendered, errors = write(element)
        if errors:
            rendered = error_element(element, errors, flag_field)
            rendered[id_field] = str((echo_id and element.get(id_field)) or ZERO_UUID)
            failed.append(rendered)
        if not summarize:
            rendered["StatusAttributeString"] = "ERROR" if errors else "OK"
        answered.append(rendered)
    logger.info("%s written", resource.lower(), extra={"elements": len(elements), "failed": len(failed)})
    if failed and summarize:
        return responses.validation_exception(failed)
    return responses.json_response(responses.envelope(resource, answered, now))
