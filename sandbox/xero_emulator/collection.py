"""What the Contacts, Invoices and Payments resources share: Xero's five calls on a collection (list, create
with PUT, create or update with POST, read one, update one with POST to its id) and the write path
behind the three writes. A resource says how it finds, shows and saves one record. Invoices and
payments, Xero's accounting documents, also share a history and the organisation's settings
(:class:`DocumentCollection`).

The caller (the emulator) holds its lock around every method here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from flask import Request, Response

from . import responses
from .common import Stamper, answer_writes, read_elements
from .history import HistoryLog
from .routing import Route, route
from .settings import SettingsResource
from .store import ResourceStore


class Collection(ABC):
    resource: ClassVar[str]  # "Contacts": the path, and the key of the records in bodies
    id_field: ClassVar[str]  # "ContactID"
    error_flag: ClassVar[str]  # what Xero sets on a refused element: "HasValidationErrors"
    read_scopes: ClassVar[frozenset[str]]
    write_scopes: ClassVar[frozenset[str]]
    # How JSON numbers with a fraction are read: Decimal where they are money.
    parse_float: ClassVar[type[Decimal] | type[float]] = Decimal
    # Whether a refused element shows the id it was sent with (not where records are only created).
    echo_id: ClassVar[bool] = True

    def __init__(self, store: ResourceStore, now: Callable[[], datetime]) -> None:
        self.store = store
        self._now = now

    @abstractmethod
    def lookup(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` (its id, or the number Xero also takes in the path)."""

    @abstractmethod
    def list_records(self, request: Request, params: dict[str, str]) -> Response: ...

    @abstractmethod
    def show(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        """The record as a read of it answers."""

    @abstractmethod
    def save(
        self, element: dict[str, Any], *, create_only: bool, request: Request
    ) -> tuple[dict[str, Any], list[str]]:
        """Apply one submitted element: the saved record as the answer shows it, or Xero's messages."""

    def routes(self) -> list[Route]:
        path, read, write = self.resource, self.read_scopes, self.write_scopes
        return [
            route("GET", path, self.list_records, read),
            route("PUT", path, self.put_records, write),
            route("POST", path, self.post_records, write),
            route("GET", f"{path}/{{id}}", self.get_record, read),
            route("POST", f"{path}/{{id}}", self.post_record, write),
        ]

    def get_record(self, request: Request, params: dict[str, str]) -> Response:
        record = self.lookup(params["key"])
        if record is None:
            return responses.not_found()
        return responses.json_response(
            responses.envelope(self.resource, [self.show(record, request)], self._now())
        )

    def put_records(self, request: Request, _params: dict[str, str]) -> Response:
        return self._write(request, create_only=True, path_id=None)

    def post_records(self, request: Request, _params: dict[str, str]) -> Response:
        return self._write(request, create_only=False, path_id=None)

    def post_record(self, request: Request, params: dict[str, str]) -> Response:
        record = self.lookup(params["key"])
        if record is None:
            return responses.not_found()
        return self._write(request, create_only=False, path_id=str(record[self.id_field]))

    def _write(self, request: Request, *, create_only: bool, path_id: str | None) -> Response:
        elements = read_elements(request, self.resource, parse_float=self.parse_float)
        if path_id is not None:
            # POST to a record's id updates that record: the first element, whatever id it names.
            elements = [{**element, self.id_field: path_id} for element in elements[:1]]

        def write(element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
            return self.save(element, create_only=create_only, request=request)

        return answer_writes(
            self.resource,
            elements,
            write,
            request=request,
            flag_field=self.error_flag,
            id_field=self.id_field,
            now=self._now(),
            echo_id=self.echo_id,
        )


class DocumentCollection(Collection):
    """An accounting document (invoices, payments): checked against the organisation's settings,
    stamped by the emulator's one clock, with a history and notes behind ``{id}/History``."""

    def __init__(
        self,
        store: ResourceStore,
        settings: SettingsResource,
        history: HistoryLog,
        stamp: Stamper,
        now: Callable[[], datetime],
    ) -> None:
        super().__init__(store, now)
        self._settings = settings
        self._history = history
        self._stamp = stamp

    def routes(self) -> list[Route]:
        scopes = (self.read_scopes, self.write_scopes)
        return [*super().routes(), *self._history.routes(self.resource, self.id_field, self.lookup, scopes)]
