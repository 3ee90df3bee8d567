"""``/api.xro/2.0/Contacts``: query, create (PUT), create-or-update (POST), validation.

Rules follow the spec (components.schemas.Contact: max lengths, enums) and Xero's documented
behaviour (integration-facts.md). Where Xero publishes no exact wording, messages are marked.
The caller (the emulator) holds its lock around every method here.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime, parse_xero_datetime

from . import responses
from .routing import Route
from .store import ResourceStore
from .where import WhereParseError, compile_where

logger = logging.getLogger("sandbox.xero_emulator.contacts")

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_CONTACT_PERSONS = 5
# Names from components.schemas.Contact: the fields a where/order may refer to.
CONTACT_FIELDS = (
    "ContactID",
    "MergedToContactID",
    "ContactNumber",
    "AccountNumber",
    "ContactStatus",
    "Name",
    "FirstName",
    "LastName",
    "CompanyNumber",
    "EmailAddress",
    "BankAccountDetails",
    "TaxNumber",
    "TaxNumberType",
    "AccountsReceivableTaxType",
    "AccountsPayableTaxType",
    "IsSupplier",
    "IsCustomer",
    "DefaultCurrency",
    "XeroNetworkKey",
    "SalesDefaultAccountCode",
    "PurchasesDefaultAccountCode",
    "UpdatedDateUTC",
    "Website",
    "Discount",
    "HasAttachments",
)
MAX_LENGTHS = {
    "ContactNumber": 50,
    "AccountNumber": 50,
    "Name": 255,
    "FirstName": 255,
    "LastName": 255,
    "CompanyNumber": 50,
    "EmailAddress": 255,
    "TaxNumber": 50,
}
ADDRESS_MAX_LENGTHS = {
    "AddressLine1": 500,
    "AddressLine2": 500,
    "AddressLine3": 500,
    "AddressLine4": 500,
    "City": 255,
    "Region": 255,
    "PostalCode": 50,
    "Country": 50,
    "AttentionTo": 255,
}
PHONE_MAX_LENGTHS = {"PhoneNumber": 50, "PhoneAreaCode": 10, "PhoneCountryCode": 20}
CONTACT_STATUSES = ("ACTIVE", "ARCHIVED", "GDPRREQUEST")
ADDRESS_TYPES = ("POBOX", "STREET")
PHONE_TYPES = ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE")
# Set by Xero, never by a PUT/POST (spec: IsSupplier/IsCustomer "Cannot be set via PUT or POST").
READ_ONLY = frozenset(
    {
        "ContactID",
        "UpdatedDateUTC",
        "IsSupplier",
        "IsCustomer",
        "HasAttachments",
        "HasValidationErrors",
        "ValidationErrors",
        "StatusAttributeString",
        "Balances",
        "Website",
        "Discount",
        "Attachments",
        "MergedToContactID",
    }
)
# summaryOnly drops the heavier nested parts (Xero: "excluding computation-heavy fields").
SUMMARY_EXCLUDED = frozenset(
    {
        "Addresses",
        "Phones",
        "ContactPersons",
        "ContactGroups",
        "Balances",
        "PaymentTerms",
        "BatchPayments",
        "SalesTrackingCategories",
        "PurchasesTrackingCategories",
        "Attachments",
        "BrandingTheme",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ORDER = re.compile(r"^\s*([A-Za-z]+)(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE)

WRITE_SCOPES = frozenset({"accounting.contacts"})
READ_SCOPES = frozenset({"accounting.contacts", "accounting.contacts.read"})


def _name_key(name: Any) -> str:
    return str(name or "").strip().casefold()


def _blank_addresses() -> list[dict[str, Any]]:
    # Xero always answers both address types and four phone types, blank when unset.
    return [
        {"AddressType": kind, "City": "", "Region": "", "PostalCode": "", "Country": ""}
        for kind in ("STREET", "POBOX")
    ]


def _blank_phones() -> list[dict[str, Any]]:
    return [
        {"PhoneType": kind, "PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}
        for kind in ("DEFAULT", "DDI", "FAX", "MOBILE")
    ]


def _merge_typed(
    existing: list[dict[str, Any]], incoming: list[Any], type_field: str
) -> list[dict[str, Any]]:
    """Addresses and phones are replaced per type; types not sent are kept."""
    merged = {str(item.get(type_field)): item for item in existing}
    for item in incoming:
        if isinstance(item, dict):
            merged[str(item.get(type_field))] = copy.deepcopy(item)
    return list(merged.values())


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


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


class ContactsResource:
    def __init__(
        self,
        store: ResourceStore,
        now: Callable[[], datetime],
        customer_ids: Callable[[], set[str]] = set,
    ) -> None:
        self.store = store
        self._now = now
        # Lower-cased ContactIDs with a sales invoice: IsCustomer is derived, never stored or posted.
        self._customer_ids = customer_ids
        self._last_stamp: datetime | None = None

    def routes(self) -> list[Route]:
        return [
            Route("GET", r"Contacts", self.list_contacts, "GET /Contacts", READ_SCOPES),
            Route("PUT", r"Contacts", self.put_contacts, "PUT /Contacts", WRITE_SCOPES),
            Route("POST", r"Contacts", self.post_contacts, "POST /Contacts", WRITE_SCOPES),
            Route("GET", r"Contacts/(?P<key>[^/]+)", self.get_contact, "GET /Contacts/{id}", READ_SCOPES),
            Route("POST", r"Contacts/(?P<key>[^/]+)", self.post_contact, "POST /Contacts/{id}", WRITE_SCOPES),
        ]

    # -- reads ---------------------------------------------------------------------------
    def list_contacts(self, request: Request, _params: dict[str, str]) -> Response:
        args = request.args
        customers = self._customer_ids()
        records = [_with_flags(r, customers) for r in self.store]
        if not _flag(args.get("includeArchived")):
            records = [r for r in records if r.get("ContactStatus") != "ARCHIVED"]
        ids = args.get("IDs") or args.get("ids")
        if ids:
            wanted = {part.strip().strip('"').lower() for part in ids.split(",") if part.strip()}
            records = [r for r in records if str(r["ContactID"]).lower() in wanted]
        since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
        if since is not None:
            records = [r for r in records if self._updated(r) > since]
        where = args.get("where")
        if where:
            try:
                predicate = compile_where(where, CONTACT_FIELDS)
            except WhereParseError as error:
                return responses.query_parse_error(str(error))
            records = [r for r in records if predicate(r)]
        term = (args.get("searchTerm") or "").strip().casefold()
        if term:
            # Spec (GET /Contacts searchTerm): "a case-insensitive text search across the Name,
            # FirstName, LastName, ContactNumber and EmailAddress fields". Plain text, not a where.
            searched = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            records = [r for r in records if any(term in str(r.get(f) or "").casefold() for f in searched)]
        try:
            records = self._order(records, args.get("order"))
        except WhereParseError as error:
            return responses.query_parse_error(str(error))
        extra: dict[str, Any] = {}
        if "page" in args or "pageSize" in args:
            page = max(1, _int(args.get("page"), 1))
            size = min(MAX_PAGE_SIZE, max(1, _int(args.get("pageSize"), DEFAULT_PAGE_SIZE)))
            total = len(records)
            extra["pagination"] = {
                "page": page,
                "pageSize": size,
                "pageCount": (total + size - 1) // size,
                "itemCount": total,
            }
            records = records[(page - 1) * size : page * size]
        summary = _flag(args.get("summaryOnly"))
        items = [self._render(r, summary=summary) for r in records]
        return responses.json_response(responses.envelope("Contacts", items, self._now(), **extra))

    def get_contact(self, _request: Request, params: dict[str, str]) -> Response:
        record = self._lookup(params["key"])
        if record is None:
            return responses.not_found()
        rendered = self._render(_with_flags(record, self._customer_ids()))
        return responses.json_response(responses.envelope("Contacts", [rendered], self._now()))

    # -- writes --------------------------------------------------------------------------
    def put_contacts(self, request: Request, _params: dict[str, str]) -> Response:
        return self._write(request, create_only=True, path_id=None)

    def post_contacts(self, request: Request, _params: dict[str, str]) -> Response:
        return self._write(request, create_only=False, path_id=None)

    def post_contact(self, request: Request, params: dict[str, str]) -> Response:
        record = self._lookup(params["key"])
        if record is None:
            return responses.not_found()
        return self._write(request, create_only=False, path_id=str(record["ContactID"]))

    def _write(self, request: Request, *, create_only: bool, path_id: str | None) -> Response:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            return responses.post_data_invalid("JSON for post data was invalid")
        if isinstance(body, dict) and isinstance(body.get("Contacts"), list):
            elements: list[Any] = body["Contacts"]
        elif isinstance(body, dict) and "Contacts" not in body:
            elements = [body]  # a single bare contact is accepted too
        else:
            return responses.post_data_invalid("JSON for post data was invalid")
        if path_id is not None:
            elements = elements[:1]
        summarize = request.args.get("summarizeErrors", "true").strip().lower() != "false"
        saved: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for element in elements:
            if not isinstance(element, dict):
                return responses.post_data_invalid("JSON for post data was invalid")
            if path_id is not None:
                element = {**element, "ContactID": path_id}
            result, errors = self._apply(element, create_only=create_only)
            if errors:
                shown = {**copy.deepcopy(element), "ContactID": element.get("ContactID") or ZERO_UUID}
                shown["HasValidationErrors"] = True
                shown["ValidationErrors"] = [{"Message": message} for message in errors]
                if not summarize:
                    shown["StatusAttributeString"] = "ERROR"
                failed.append(shown)
                saved.append(shown)
            else:
                rendered = self._render(_with_flags(result, self._customer_ids()))
                if not summarize:
                    rendered["StatusAttributeString"] = "OK"
                saved.append(rendered)
        logger.info(
            "contacts written",
            extra={"elements": len(elements), "failed": len(failed), "create_only": create_only},
        )
        if failed and summarize:
            # Xero still saves the good elements of the batch (integration-facts.md).
            return responses.validation_exception(failed)
        return responses.json_response(responses.envelope("Contacts", saved, self._now()))

    def _apply(self, element: dict[str, Any], *, create_only: bool) -> tuple[dict[str, Any], list[str]]:
        errors = self._field_errors(element)
        target: dict[str, Any] | None = None
        contact_id = element.get("ContactID")
        number = element.get("ContactNumber")
        if contact_id:
            target = self.store.get(str(contact_id)) if _UUID.match(str(contact_id)) else None
            if target is None:
                # Wording not published by Xero.
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
            elif create_only:
                errors.append(f"The contact with ContactID {contact_id} already exists.")
        elif number and not create_only:
            # Like Xero, a POST carrying an existing ContactNumber updates that contact.
            target = self._by_number(str(number))
        merged = copy.deepcopy(target) if target is not None else self._new_record()
        for key, value in element.items():
            if key in READ_ONLY:
                continue
            if key == "Addresses" and isinstance(value, list):
                merged[key] = _merge_typed(merged.get(key, []), value, "AddressType")
            elif key == "Phones" and isinstance(value, list):
                merged[key] = _merge_typed(merged.get(key, []), value, "PhoneType")
            else:
                merged[key] = copy.deepcopy(value)
        if not str(merged.get("Name") or "").strip():
            errors.append("The contact name must be specified.")  # wording not published by Xero
        own_id = str(merged["ContactID"]).lower()
        if merged.get("ContactStatus") == "ACTIVE" and merged.get("Name"):
            name = _name_key(merged["Name"])
            for other in self.store:
                if (
                    str(other["ContactID"]).lower() != own_id
                    and other.get("ContactStatus") == "ACTIVE"
                    and _name_key(other.get("Name")) == name
                ):
                    errors.append(
                        f"The contact name {merged['Name']} is already assigned to another contact. "
                        "The contact name must be unique across all active contacts."
                    )
                    break
        if merged.get("ContactNumber"):
            holder = self._by_number(str(merged["ContactNumber"]))
            if holder is not None and str(holder["ContactID"]).lower() != own_id:
                # Wording not published by Xero.
                errors.append(
                    f"The contact number {merged['ContactNumber']} is already assigned to another contact."
                )
        if errors:
            return merged, list(dict.fromkeys(errors))
        merged["UpdatedDateUTC"] = format_xero_datetime(self._stamp())
        self.store.put(merged)
        return merged, []

    @staticmethod
    def _field_errors(element: dict[str, Any]) -> list[str]:
        errors: list[str] = []
        for field, limit in MAX_LENGTHS.items():
            value = element.get(field)
            if value is None:
                continue
            if not isinstance(value, str):
                errors.append(f"{field} must be a string.")
            elif len(value) > limit:
                errors.append(f"{field} must not be more than {limit} characters long.")
        status = element.get("ContactStatus")
        if status is not None and status not in CONTACT_STATUSES:
            errors.append(f"ContactStatus '{status}' is not valid.")
        email = element.get("EmailAddress")
        if isinstance(email, str) and email and not _EMAIL.match(email):
            errors.append("Email address must be valid.")
        errors += _nested_errors(element.get("Addresses"), "AddressType", ADDRESS_TYPES, ADDRESS_MAX_LENGTHS)
        errors += _nested_errors(element.get("Phones"), "PhoneType", PHONE_TYPES, PHONE_MAX_LENGTHS)
        persons = element.get("ContactPersons")
        if persons is not None:
            if not isinstance(persons, list):
                errors.append("ContactPersons must be a list.")
            elif len(persons) > MAX_CONTACT_PERSONS:
                errors.append(f"A contact can have a maximum of {MAX_CONTACT_PERSONS} contact persons.")
            else:
                for person in persons:
                    person_email = person.get("EmailAddress") if isinstance(person, dict) else None
                    if isinstance(person_email, str) and person_email and not _EMAIL.match(person_email):
                        errors.append("Email address must be valid.")
        return errors

    # -- admin seeding -------------------------------------------------------------------
    def seed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store contacts as they are (no validation, no uniqueness): tests set up any state."""
        seeded = []
        for item in items:
            record = self._new_record()
            record.update(copy.deepcopy(item))
            record["ContactID"] = str(record.get("ContactID") or uuid.uuid4())
            stamp = parse_xero_datetime(item["UpdatedDateUTC"]) if item.get("UpdatedDateUTC") else None
            record["UpdatedDateUTC"] = format_xero_datetime(stamp or self._stamp())
            self.store.put(record)
            seeded.append(self._render(record))
        return seeded

    # -- helpers -------------------------------------------------------------------------
    def _new_record(self) -> dict[str, Any]:
        return {
            "ContactID": str(uuid.uuid4()),
            "ContactStatus": "ACTIVE",
            "Name": None,
            "Addresses": _blank_addresses(),
            "Phones": _blank_phones(),
            "ContactGroups": [],
            "IsSupplier": False,
            "IsCustomer": False,
            "ContactPersons": [],
            "HasAttachments": False,
        }

    def _stamp(self) -> datetime:
        # Strictly increasing, so If-Modified-Since with the last seen value never misses a write.
        now = self._now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def _lookup(self, key: str) -> dict[str, Any] | None:
        if _UUID.match(key):
            return self.store.get(key)
        return self._by_number(key)

    def _by_number(self, number: str) -> dict[str, Any] | None:
        wanted = number.strip().casefold()
        for record in self.store:
            if str(record.get("ContactNumber") or "").strip().casefold() == wanted:
                return record
        return None

    @staticmethod
    def _updated(record: dict[str, Any]) -> datetime:
        return parse_xero_datetime(record.get("UpdatedDateUTC")) or datetime.min.replace(tzinfo=UTC)

    def _order(self, records: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
        fields = {name.lower(): name for name in CONTACT_FIELDS}
        ordered = sorted(records, key=lambda r: str(r["ContactID"]).lower())
        clauses = [("UpdatedDateUTC", False)]
        if order:
            clauses = []
            for part in order.split(","):
                match = _ORDER.match(part)
                if match is None or match.group(1).lower() not in fields:
                    raise WhereParseError(f"Order by '{part.strip()}' is not supported")
                clauses.append((fields[match.group(1).lower()], (match.group(2) or "ASC").upper() == "DESC"))
        for field, descending in reversed(clauses):
            ordered.sort(key=functools.partial(_sort_key, field=field), reverse=descending)
        return ordered

    @staticmethod
    def _render(record: dict[str, Any], *, summary: bool = False) -> dict[str, Any]:
        rendered = {k: copy.deepcopy(v) for k, v in record.items() if v is not None}
        if summary:
            rendered = {k: v for k, v in rendered.items() if k not in SUMMARY_EXCLUDED}
        rendered["HasValidationErrors"] = False
        return rendered


def _with_flags(record: dict[str, Any], customers: set[str]) -> dict[str, Any]:
    """The record as Xero shows it: IsCustomer is true once a sales invoice names the contact."""
    if str(record.get("ContactID", "")).lower() in customers:
        return {**record, "IsCustomer": True}
    return record


def _sort_key(record: dict[str, Any], field: str) -> tuple[int, Any]:
    value = record.get(field)
    if value is None:
        return (0, "")
    if field == "UpdatedDateUTC":
        return (1, parse_xero_datetime(value))
    if isinstance(value, str):
        return (1, value.casefold())
    return (1, value)


def _nested_errors(
    items: Any, type_field: str, allowed: tuple[str, ...], max_lengths: dict[str, int]
) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"{type_field.removesuffix('Type')} entries must be a list."]
    errors: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            errors.append(f"{type_field} entries must be objects.")
            continue
        if item.get(type_field) not in allowed:
            errors.append(f"{type_field} '{item.get(type_field)}' is not valid.")
        for field, limit in max_lengths.items():
            value = item.get(field)
            if isinstance(value, str) and len(value) > limit:
                errors.append(f"{field} must not be more than {limit} characters long.")
    return errors


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
