"""``/{Contacts|Invoices|Payments}/{id}/History``: notes added through the API and the system
records Xero writes itself (Created, Approved, Paid, ...), newest first as Xero lists them.

Details is limited to 250 characters (integration-facts.md, "History / notes",
developer.xero.com/documentation/api/history-and-notes); the messages for an empty or too long
note are not published by Xero (guessed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime

from . import responses
from .common import error_element, read_elements
from .routing import Route, route

MAX_DETAILS = 250
SYSTEM_USER = "System Generated"
Lookup = Callable[[str], dict[str, Any] | None]


class HistoryLog:
    def __init__(self, stamp: Callable[[], datetime], now: Callable[[], datetime], app_name: str) -> None:
        self._stamp = stamp
        self._now = now
        self.app_name = app_name
        self._records: dict[str, list[dict[str, Any]]] = {}

    def add(self, record_id: str, changes: str, details: str, user: str = SYSTEM_USER) -> dict[str, Any]:
        entry = {
            "Changes": changes,
            "DateUTC": format_xero_datetime(self._stamp()),
            "User": user,
            "Details": details,
        }
        self._records.setdefault(record_id.lower(), []).append(entry)
        return entry

    def records(self, record_id: str) -> list[dict[str, Any]]:
        return [dict(entry) for entry in reversed(self._records.get(record_id.lower(), []))]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {key: [dict(entry) for entry in entries] for key, entries in self._records.items()}

    def clear(self) -> None:
        self._records.clear()

    def routes(
        self, resource: str, id_field: str, lookup: Lookup, scopes: tuple[frozenset[str], ...]
    ) -> list[Route]:
        read_scopes, write_scopes = scopes

        def get(_request: Request, params: dict[str, str]) -> Response:
            record = lookup(params["key"])
            if record is None:
                return responses.not_found()
            items = self.records(str(record[id_field]))
            return responses.json_response(responses.envelope("HistoryRecords", items, self._now()))

        def put(request: Request, params: dict[str, str]) -> Response:
            record = lookup(params["key"])
            if record is None:
                return responses.not_found()
            elements = read_elements(request, "HistoryRecords")
            failed = []
            for element in elements:
                details = element.get("Details")
                if not isinstance(details, str) or not details.strip():
                    failed.append(error_element(element, ["The Details field is required."], "HasErrors"))
                elif len(details) > MAX_DETAILS:
                    message = f"Details must not be more than {MAX_DETAILS} characters long."
                    failed.append(error_element(element, [message], "HasErrors"))
            if failed:
                # A note batch is all or nothing (unlike resource batches): nothing is written.
                for element in failed:
                    element.pop("HasErrors", None)
                return responses.validation_exception(failed)
            created = []
            for element in elements:
                entry = self.add(str(record[id_field]), "Note", str(element["Details"]), self.app_name)
                created.append({"DateUTC": entry["DateUTC"], "Details": entry["Details"]})
            return responses.json_response(responses.envelope("HistoryRecords", created, self._now()))

        return [
            route("GET", f"{resource}/{{id}}/History", get, read_scopes),
            route("PUT", f"{resource}/{{id}}/History", put, write_scopes),
        ]
