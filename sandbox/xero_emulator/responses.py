"""Xero's response shapes, in one place so every resource answers the same way.

Two families, as the real service has them:
- the API gateway (auth, tenant, limits) answers RFC 7807-style problem JSON
  ``{"Type":null,"Title":...,"Status":...,"Detail":...,"Instance":...,"Extensions":{}}``;
- the Accounting API answers ``{"ErrorNumber":..,"Type":..,"Message":..,"Elements":[..]}``
  (spec ``components.schemas.Error``) and wraps data in ``{"Id","Status","ProviderName",
  "DateTimeUTC", <Resource>: [...]}``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from flask import Response

from shared.models.xero import format_xero_datetime

PROVIDER_NAME = "Xero API Partner"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
MAINTENANCE_TEXT = "The Xero API is currently offline for maintenance. Please try again later."
SERVER_ERROR_MESSAGE = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current "
    "service status. Contact the API support team at api@xero.com for more assistance."
)
# Not published by Xero: a stable message so clients can be tested against a replay mismatch.
IDEMPOTENCY_MISMATCH_DETAIL = "The Idempotency-Key has already been used with a different request."


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def text_response(text: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, mimetype="text/plain", headers=headers)


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return json_response(body, status, headers)


def xero_date(value: datetime) -> str:
    """The envelope's ``DateTimeUTC``: ``/Date(ms)/`` without an offset, as in the spec examples."""
    return format_xero_datetime(value).replace("+0000", "")


def envelope(resource: str, items: list[dict[str, Any]], now: datetime, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": PROVIDER_NAME,
        "DateTimeUTC": xero_date(now),
    }
    body.update(extra)
    body[resource] = items
    return body


def validation_exception(elements: list[dict[str, Any]]) -> Response:
    return json_response(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        },
        400,
    )


def accounting_error(status: int, number: int, kind: str, message: str) -> Response:
    return json_response({"ErrorNumber": number, "Type": kind, "Message": message}, status)


def query_parse_error(message: str) -> Response:
    return accounting_error(400, 16, "QueryParseException", message)


def post_data_invalid(message: str) -> Response:
    return accounting_error(400, 14, "PostDataInvalidException", message)


def not_found() -> Response:
    return text_response(NOT_FOUND_TEXT, 404)
