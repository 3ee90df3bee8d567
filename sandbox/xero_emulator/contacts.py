"""``/api.xro/2.0/Contacts``: query, create (PUT), create-or-update (POST), validation.

Rules follow the spec (components.schemas.Contact: max lengths, enums) and Xero's documented
behaviour (integration-facts.md). Where Xero publishes no exact wording, messages are marked.
The caller (the emulator) holds its lock around every method here.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime, parse_xero_datetime

from . import responses
from .collection import Collection
from .common import (
    UUID_RE,
    Stamper,
    flag,
    query,
)
from .routing import CONTACTS_READ, CONTACTS_WRITE
from .store import ResourceStore
from .where import WhereParseError

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


def _merged(base: dict[str, Any], element: dict[str, Any]) -> dict[str, Any]:
    """A copy of the stored contact (or a new one) with the request's writable fields; addresses
    and phones merge by their type."""
    merged = copy.deepcopy(base)
    for key, value in element.items():
        if key in READ_ONLY:
            continue
        if key == "Addresses" and isinstance(value, list):
            merged[key] = _merge_typed(merged.get(key, []), value, "AddressType")
        elif key == "Phones" and isinstance(value, list):
            merged[key] = _merge_typed(merged.get(key, []), value, "PhoneType")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_typed(
    existing: list[dict[str, Any]], incoming: list[Any], type_field: str
) -> list[dict[str, Any]]:
    """Addresses and phones are replaced per type; types not sent are kept."""
    merged = {str(item.get(type_field)): item for item in existing}
    for item in incoming:
        if isinstance(item, dict):
            merged[str(item.get(type_field))] = copy.deepcopy(item)
    return list(merged.values())


class ContactsResource(Collection):
    resource = "Contacts"
    id_field = "ContactID"
    error_flag = "HasValidationErrors"
    read_scopes = CONTACTS_READ
    write_scopes = CONTACTS_WRITE
    # Contacts carry no money: plain floats, as Xero answers them.
    parse_float = float

    def __init__(
        self,
        store: ResourceStore,
        now: Callable[[], datetime],
        customer_ids: Callable[[], set[str]] = set,
    ) -> None:
        super().__init__(store, now)
        # Lower-cased ContactIDs with a sales invoice: IsCustomer is derived, never stored or posted.
        self._customer_ids = customer_ids
        self._stamp = Stamper(now)

    # -- reads ---------------------------------------------------------------------------
    def list_records(self, request: Request, _params: dict[str, str]) -> Response:
        args = request.args
        customers = self._customer_ids()
        records = [_with_flags(r, customers) for r in self.store]
        if not flag(args.get("includeArchived")):
            records = [r for r in records if r.get("ContactStatus") != "ARCHIVED"]
        term = (args.get("searchTerm") or "").strip().casefold()
        if term:
            # Spec (GET /Contacts searchTerm): "a case-insensitive text search across the Name,
            # FirstName, LastName, ContactNumber and EmailAddress fields". Plain text, not a where.
            searched = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            records = [r for r in records if any(term in str(r.get(f) or "").casefold() for f in searched)]
        try:
            records, extra = query(
                records,
                request,
                fields=CONTACT_FIELDS,
                id_field="ContactID",
                ids=args.get("IDs") or args.get("ids"),
            )
        except WhereParseError as error:
            return responses.query_parse_error(str(error))
        summary = flag(args.get("summaryOnly"))
        items = [self._render(r, summary=summary) for r in records]
        return responses.json_response(responses.envelope("Contacts", items, self._now(), **extra))

    def show(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        return self._render(_with_flags(record, self._customer_ids()))

    # -- writes --------------------------------------------------------------------------
    def save(
        self, element: dict[str, Any], *, create_only: bool, request: Request
    ) -> tuple[dict[str, Any], list[str]]:
        result, errors = self._apply(element, create_only=create_only)
        return ({} if errors else self.show(result, request)), errors

    def _apply(self, element: dict[str, Any], *, create_only: bool) -> tuple[dict[str, Any], list[str]]:
        errors = self._field_errors(element)
        target = self._target(element, create_only, errors)
        merged = _merged(target if target is not None else self._new_record(), element)
        if not str(merged.get("Name") or "").strip():
            errors.append("The contact name must be specified.")  # wording not published by Xero
        errors += self._uniqueness_errors(merged)
        if errors:
            return merged, list(dict.fromkeys(errors))
        merged["UpdatedDateUTC"] = format_xero_datetime(self._stamp())
        self.store.put(merged)
        return merged, []

    def _target(self, element: dict[str, Any], create_only: bool, errors: list[str]) -> dict[str, Any] | None:
        contact_id = element.get("ContactID")
        number = element.get("ContactNumber")
        if contact_id:
            target = self.store.get(str(contact_id)) if UUID_RE.match(str(contact_id)) else None
            if target is None:
                # Wording not published by Xero.
                errors.append(f"The contact with ContactID {contact_id} could not be found.")
            elif create_only:
                errors.append(f"The contact with ContactID {contact_id} already exists.")
            return target
        if number and not create_only:
            # Like Xero, a POST carrying an existing ContactNumber updates that contact.
            return self._by_number(str(number))
        return None

    def _uniqueness_errors(self, merged: dict[str, Any]) -> list[str]:
        """An active contact's name, and any contact's number, belong to no other contact."""
        errors: list[str] = []
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
        return errors

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

    def lookup(self, key: str) -> dict[str, Any] | None:
        if UUID_RE.match(key):
            return self.store.get(key)
        return self._by_number(key)

    def _by_number(self, number: str) -> dict[str, Any] | None:
        wanted = number.strip().casefold()
        for record in self.store:
            if str(record.get("ContactNumber") or "").strip().casefold() == wanted:
                return record
        return None

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
