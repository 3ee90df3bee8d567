"""Organisation settings the billing resources validate against: TaxRates, Accounts,
TrackingCategories, BrandingThemes (read-only over the API, seeded as a realistic AU organisation,
extended through ``/_emulator/*``), and ContactGroups (read/write).

Which tax rate fits which account follows Xero's own model: each TaxRate says which account
classes it can apply to (``CanApplyToRevenue``/``Expenses``/``Assets``/``Liabilities``/``Equity``,
spec components.schemas.TaxRate), and an account's ``Class`` follows from its ``Type``.
IDs of seeded records are uuid5 of their code or name, so they are stable across resets.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime

from . import responses
from .common import (
    UUID_RE,
    Stamper,
    decimal_of,
    error_element,
    filter_where,
    flag,
    id_list,
    order_records,
    read_elements,
)
from .organisation import Organisation
from .routing import CONTACTS_READ, CONTACTS_WRITE, SETTINGS_READ, Route, route
from .store import ResourceStore
from .where import WhereParseError

_NS = uuid.UUID("0b3c6d4e-0000-4000-8000-58e40e1a7e00")

ACCOUNT_CLASSES = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "PAYG": "LIABILITY",
    "EQUITY": "EQUITY",
    "DEPRECIATN": "EXPENSE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
    "OTHERINCOME": "REVENUE",
}
_CLASS_FLAG = {
    "REVENUE": "CanApplyToRevenue",
    "EXPENSE": "CanApplyToExpenses",
    "ASSET": "CanApplyToAssets",
    "LIABILITY": "CanApplyToLiabilities",
    "EQUITY": "CanApplyToEquity",
}
_ALL = ("REVENUE", "EXPENSE", "ASSET", "LIABILITY", "EQUITY")
DEFAULT_TRACKING = {"Region": ("Sydney", "Melbourne"), "Owner": ("Alex", "Sam")}
DEFAULT_THEME = "Standard"
TAX_RATE_FIELDS = ("Name", "TaxType", "Status", "ReportTaxType", "EffectiveRate", "DisplayTaxRate")
ACCOUNT_FIELDS = (
    "AccountID",
    "Code",
    "Name",
    "Type",
    "Status",
    "TaxType",
    "Class",
    "EnablePaymentsToAccount",
    "SystemAccount",
    "BankAccountNumber",
    "CurrencyCode",
    "UpdatedDateUTC",
)
GROUP_FIELDS = ("ContactGroupID", "Name", "Status")


def stable_id(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NS, f"{kind}/{key.lower()}"))


class SettingsResource:
    def __init__(
        self,
        stores: dict[str, ResourceStore],
        contacts: ResourceStore,
        stamp: Stamper,
        now: Callable[[], datetime],
        organisation: Organisation,
    ) -> None:
        self.organisation = organisation
        self.tax_rates = stores["TaxRates"]
        self.accounts = stores["Accounts"]
        self.tracking = stores["TrackingCategories"]
        self.themes = stores["BrandingThemes"]
        self.groups = stores["ContactGroups"]
        self._contacts = contacts
        self._stamp = stamp
        self._now = now
        self.seed_defaults()

    # -- seeding -------------------------------------------------------------------------
    def seed_defaults(self) -> None:
        """The organisation's country profile: its tax rates and chart of accounts."""
        self.tax_rates.clear()
        self.accounts.clear()
        profile = self.organisation.profile
        for tax_type, name, rate, report, classes in profile.tax_rates:
            self.add_tax_rate(
                {
                    "TaxType": tax_type,
                    "Name": name,
                    "EffectiveRate": Decimal(rate),
                    "ReportTaxType": report,
                    **{_CLASS_FLAG[c]: c in classes for c in _ALL},
                }
            )
        for code, name, kind, tax_type, extra in profile.accounts:
            self.add_account({"Code": code, "Name": name, "Type": kind, "TaxType": tax_type, **extra})
        for category, options in DEFAULT_TRACKING.items():
            self.add_tracking_category({"Name": category, "Options": [{"Name": o} for o in options]})
        self.themes.put(
            {
                "BrandingThemeID": stable_id("theme", DEFAULT_THEME),
                "Name": DEFAULT_THEME,
                "Type": "INVOICE",
                "SortOrder": 0,
                "CreatedDateUTC": format_xero_datetime(datetime(2020, 1, 1, tzinfo=self._now().tzinfo)),
            }
        )

    def add_tax_rate(self, item: dict[str, Any]) -> dict[str, Any]:
        tax_type = str(item["TaxType"]).upper()
        rate = decimal_of(item.get("EffectiveRate", item.get("DisplayTaxRate", 0)))
        record: dict[str, Any] = {
            "Name": str(item.get("Name") or tax_type),
            "TaxType": tax_type,
            "ReportTaxType": str(item.get("ReportTaxType") or tax_type),
            "Status": str(item.get("Status") or "ACTIVE"),
            "TaxComponents": [
                {"Name": "GST", "Rate": float(rate), "IsCompound": False, "IsNonRecoverable": False}
            ],
            "DisplayTaxRate": float(rate),
            "EffectiveRate": float(rate),
        }
        for flag_name in _CLASS_FLAG.values():
            record[flag_name] = bool(item.get(flag_name, True))
        self.tax_rates.put(record)
        return copy.deepcopy(record)

    def add_account(self, item: dict[str, Any]) -> dict[str, Any]:
        # Bank accounts often have no Code (spec Account.Code: "not all accounts have a code
        # value"): such an account is known by its AccountID only.
        code = str(item["Code"]) if item.get("Code") not in (None, "") else None
        kind = str(item.get("Type") or "EXPENSE").upper()
        if code is None and kind != "BANK":
            raise ValueError("only a BANK account may have no Code")
        name = str(item.get("Name") or code)
        record: dict[str, Any] = {
            "AccountID": str(item.get("AccountID") or stable_id("account", code or f"bank/{name}")),
            "Code": code,
            "Name": name,
            "Status": str(item.get("Status") or "ACTIVE"),
            "Type": kind,
            "TaxType": str(item.get("TaxType") or "BASEXCLUDED"),
            "Class": ACCOUNT_CLASSES.get(kind, "EXPENSE"),
            "EnablePaymentsToAccount": bool(item.get("EnablePaymentsToAccount", False)),
            "ShowInExpenseClaims": bool(item.get("ShowInExpenseClaims", False)),
            "ReportingCode": str(item.get("ReportingCode") or ACCOUNT_CLASSES.get(kind, "EXP")[:3]),
            "HasAttachments": False,
            "UpdatedDateUTC": format_xero_datetime(self._stamp()),
            "AddToWatchlist": False,
        }
        if kind == "BANK":
            record["BankAccountType"] = "BANK"
            record["BankAccountNumber"] = str(item.get("BankAccountNumber") or "")
            record["CurrencyCode"] = str(item.get("CurrencyCode") or self.organisation.base_currency)
        if code is None:
            del record["Code"]
        if item.get("SystemAccount"):
            record["SystemAccount"] = str(item["SystemAccount"])
        self.accounts.put(record)
        return copy.deepcopy(record)

    def add_tracking_category(self, item: dict[str, Any]) -> dict[str, Any]:
        name = str(item["Name"])
        category_id = str(item.get("TrackingCategoryID") or stable_id("tracking", name))
        options = [
            {
                "TrackingOptionID": str(
                    o.get("TrackingOptionID") or stable_id("option", f"{name}/{o['Name']}")
                ),
                "Name": str(o["Name"]),
                "Status": str(o.get("Status") or "ACTIVE"),
                "TrackingCategoryID": category_id,
            }
            for o in item.get("Options") or []
            if isinstance(o, dict) and o.get("Name")
        ]
        record = {
            "TrackingCategoryID": category_id,
            "Name": name,
            "Status": str(item.get("Status") or "ACTIVE"),
            "Options": options,
        }
        self.tracking.put(record)
        return copy.deepcopy(record)

    # -- lookups used by invoices and payments -------------------------------------------
    def tax_rate(self, tax_type: str) -> dict[str, Any] | None:
        record = self.tax_rates.get(tax_type.upper())
        return record if record is not None and record.get("Status") == "ACTIVE" else None

    def account_by_code(self, code: str) -> dict[str, Any] | None:
        wanted = code.strip().casefold()
        return next(
            (a for a in self.accounts if a.get("Code") is not None and str(a["Code"]).casefold() == wanted),
            None,
        )

    def account(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        if ref.get("AccountID"):
            return self.accounts.get(str(ref["AccountID"]))
        if ref.get("Code"):
            return self.account_by_code(str(ref["Code"]))
        return None

    @staticmethod
    def tax_applies(rate: dict[str, Any], account: dict[str, Any]) -> bool:
        return bool(rate.get(_CLASS_FLAG.get(str(account.get("Class")), "CanApplyToExpenses")))

    def tracking_option(self, tracking: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
        """A line's Tracking element -> the stored reference, or Xero-like messages (guessed)."""
        category = None
        if tracking.get("TrackingCategoryID"):
            category = self.tracking.get(str(tracking["TrackingCategoryID"]))
        elif tracking.get("Name"):
            name = str(tracking["Name"]).casefold()
            category = next((c for c in self.tracking if str(c["Name"]).casefold() == name), None)
        label = tracking.get("Name") or tracking.get("TrackingCategoryID")
        if category is None or category["Status"] != "ACTIVE":
            return None, [f"The TrackingCategory '{label}' is not valid."]
        option = None
        for candidate in category["Options"]:
            if tracking.get("TrackingOptionID"):
                if str(candidate["TrackingOptionID"]).lower() == str(tracking["TrackingOptionID"]).lower():
                    option = candidate
            elif str(candidate["Name"]).casefold() == str(tracking.get("Option") or "").casefold():
                option = candidate
        if option is None or option["Status"] != "ACTIVE":
            shown = tracking.get("Option") or tracking.get("TrackingOptionID")
            return None, [
                f"The TrackingOption '{shown}' is not valid for TrackingCategory '{category['Name']}'."
            ]
        return {
            "TrackingCategoryID": category["TrackingCategoryID"],
            "TrackingOptionID": option["TrackingOptionID"],
            "Name": category["Name"],
            "Option": option["Name"],
        }, []

    # -- routes --------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            route("GET", "TaxRates", self.list_tax_rates, SETTINGS_READ),
            route("GET", "TaxRates/{TaxType}", self.get_tax_rate, SETTINGS_READ),
            route("GET", "Accounts", self.list_accounts, SETTINGS_READ),
            route("GET", "Accounts/{id}", self.get_account, SETTINGS_READ),
            route("GET", "TrackingCategories", self.list_tracking, SETTINGS_READ),
            route("GET", "TrackingCategories/{id}", self.get_tracking, SETTINGS_READ),
            route("GET", "BrandingThemes", self.list_themes, SETTINGS_READ),
            route("GET", "BrandingThemes/{id}", self.get_theme, SETTINGS_READ),
            route("GET", "ContactGroups", self.list_groups, CONTACTS_READ),
            route("PUT", "ContactGroups", self.put_groups, CONTACTS_WRITE),
            route("GET", "ContactGroups/{id}", self.get_group, CONTACTS_READ),
            route("POST", "ContactGroups/{id}", self.post_group, CONTACTS_WRITE),
            route("PUT", "ContactGroups/{id}/Contacts", self.put_group_contacts, CONTACTS_WRITE),
            route(
                "DELETE", "ContactGroups/{id}/Contacts/{ContactID}", self.delete_group_contact, CONTACTS_WRITE
            ),
        ]

    def _list(
        self, request: Request, store: ResourceStore, resource: str, fields: tuple[str, ...], id_field: str
    ) -> Response:
        records = list(store)
        if resource in {"TrackingCategories", "ContactGroups"} and not flag(
            request.args.get("includeArchived")
        ):
            records = [r for r in records if r.get("Status") == "ACTIVE"]
        wanted = id_list(request.args.get("IDs"))
        if wanted:
            records = [r for r in records if str(r[id_field]).lower() in wanted]
        try:
            records = filter_where(records, request.args.get("where"), fields)
            if request.args.get("order"):
                records = order_records(records, request.args.get("order"), fields, id_field)
        except WhereParseError as error:
            return responses.query_parse_error(str(error))
        return responses.json_response(responses.envelope(resource, copy.deepcopy(records), self._now()))

    def _one(self, resource: str, record: dict[str, Any] | None) -> Response:
        if record is None:
            return responses.not_found()
        return responses.json_response(responses.envelope(resource, [copy.deepcopy(record)], self._now()))

    def list_tax_rates(self, request: Request, _params: dict[str, str]) -> Response:
        return self._list(request, self.tax_rates, "TaxRates", TAX_RATE_FIELDS, "TaxType")

    def get_tax_rate(self, _request: Request, params: dict[str, str]) -> Response:
        return self._one("TaxRates", self.tax_rates.get(params["key"].upper()))

    def list_accounts(self, request: Request, _params: dict[str, str]) -> Response:
        return self._list(request, self.accounts, "Accounts", ACCOUNT_FIELDS, "AccountID")

    def get_account(self, _request: Request, params: dict[str, str]) -> Response:
        key = params["key"]
        return self._one("Accounts", self.accounts.get(key) if UUID_RE.match(key) else None)

    def list_tracking(self, request: Request, _params: dict[str, str]) -> Response:
        return self._list(
            request, self.tracking, "TrackingCategories", ("Name", "Status"), "TrackingCategoryID"
        )

    def get_tracking(self, _request: Request, params: dict[str, str]) -> Response:
        return self._one("TrackingCategories", self.tracking.get(params["key"]))

    def list_themes(self, request: Request, _params: dict[str, str]) -> Response:
        return self._list(request, self.themes, "BrandingThemes", ("Name",), "BrandingThemeID")

    def get_theme(self, _request: Request, params: dict[str, str]) -> Response:
        return self._one("BrandingThemes", self.themes.get(params["key"]))

    # -- contact groups ------------------------------------------------------------------
    def list_groups(self, request: Request, _params: dict[str, str]) -> Response:
        # The list leaves out each group's contacts; GET /ContactGroups/{id} carries them.
        response = self._list(request, self.groups, "ContactGroups", GROUP_FIELDS, "ContactGroupID")
        return response if response.status_code != 200 else self._strip_contacts(response)

    def _strip_contacts(self, response: Response) -> Response:
        body = response.get_json()
        for group in body["ContactGroups"]:
            group.pop("Contacts", None)
        return responses.json_response(body)

    def get_group(self, _request: Request, params: dict[str, str]) -> Response:
        group = self.groups.get(params["key"]) if UUID_RE.match(params["key"]) else None
        if group is None:
            return responses.not_found()
        rendered = copy.deepcopy(group)
        rendered["Contacts"] = self._group_members(group)
        return responses.json_response(responses.envelope("ContactGroups", [rendered], self._now()))

    def _group_members(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        members = []
        for contact_id in group.get("Contacts", []):
            contact = self._contacts.get(contact_id)
            if contact is not None:
                members.append({"ContactID": contact["ContactID"], "Name": contact.get("Name")})
        return members

    def put_groups(self, request: Request, _params: dict[str, str]) -> Response:
        return self._write_groups(request, None)

    def post_group(self, request: Request, params: dict[str, str]) -> Response:
        group = self.groups.get(params["key"]) if UUID_RE.match(params["key"]) else None
        if group is None:
            return responses.not_found()
        return self._write_groups(request, group)

    def _write_groups(self, request: Request, target: dict[str, Any] | None) -> Response:
        elements = read_elements(request, "ContactGroups")
        if target is not None:
            elements = elements[:1]
        saved, failed = [], []
        for element in elements:
            record = (
                copy.deepcopy(target) if target else {"ContactGroupID": str(uuid.uuid4()), "Contacts": []}
            )
            name = element.get("Name", record.get("Name"))
            status = element.get("Status", record.get("Status", "ACTIVE"))
            errors = []
            if not isinstance(name, str) or not name.strip():
                errors.append("The contact group name must be specified.")  # guessed wording
            elif status == "ACTIVE" and any(
                g["ContactGroupID"] != record["ContactGroupID"]
                and g.get("Status") == "ACTIVE"
                and str(g["Name"]).casefold() == name.strip().casefold()
                for g in self.groups
            ):
                errors.append(f"A contact group with the name {name} already exists.")  # guessed wording
            if status not in ("ACTIVE", "DELETED"):
                errors.append(f"Status '{status}' is not valid.")
            if errors:
                failed.append(error_element(element, errors, "HasValidationErrors"))
                continue
            record.update({"Name": str(name).strip(), "Status": status})
            self.groups.put(record)
            self._sync_contact_groups(record)
            shown = {k: v for k, v in record.items() if k != "Contacts"}
            saved.append(shown)
        if failed:
            return responses.validation_exception(failed)
        return responses.json_response(responses.envelope("ContactGroups", saved, self._now()))

    def put_group_contacts(self, request: Request, params: dict[str, str]) -> Response:
        group = self.groups.get(params["key"]) if UUID_RE.match(params["key"]) else None
        if group is None:
            return responses.not_found()
        elements = read_elements(request, "Contacts")
        failed, added = [], []
        for element in elements:
            contact_id = str(element.get("ContactID") or "")
            contact = self._contacts.get(contact_id) if UUID_RE.match(contact_id) else None
            if contact is None:
                failed.append(
                    error_element(element, ["The contact could not be found."], "HasValidationErrors")
                )
            elif contact.get("ContactStatus") == "ARCHIVED":
                # 2nd-hand wording (calcinai/xero-php#525).
                failed.append(
                    error_element(element, ["Unable to assign an Archived contact."], "HasValidationErrors")
                )
            else:
                added.append(contact)
        if failed:
            return responses.validation_exception(failed)
        for contact in added:
            if str(contact["ContactID"]).lower() not in group["Contacts"]:
                group["Contacts"].append(str(contact["ContactID"]).lower())
        self._sync_contact_groups(group)
        items = [{"ContactID": c["ContactID"], "Name": c.get("Name")} for c in added]
        return responses.json_response(responses.envelope("Contacts", items, self._now()))

    def delete_group_contact(self, _request: Request, params: dict[str, str]) -> Response:
        group = self.groups.get(params["key"]) if UUID_RE.match(params["key"]) else None
        contact_id = params["ContactID"].lower()
        if group is None or contact_id not in group["Contacts"]:
            return responses.not_found()
        group["Contacts"].remove(contact_id)
        contact = self._contacts.get(contact_id)
        if contact is not None:
            contact["ContactGroups"] = [
                g for g in contact.get("ContactGroups", []) if g["ContactGroupID"] != group["ContactGroupID"]
            ]
        return Response(status=204)

    def _sync_contact_groups(self, group: dict[str, Any]) -> None:
        """Each member contact lists its groups (Contact.ContactGroups), as Xero answers them."""
        summary = {
            "ContactGroupID": group["ContactGroupID"],
            "Name": group["Name"],
            "Status": group["Status"],
        }
        for contact_id in group.get("Contacts", []):
            contact = self._contacts.get(contact_id)
            if contact is None:
                continue
            others = [
                g for g in contact.get("ContactGroups", []) if g["ContactGroupID"] != group["ContactGroupID"]
            ]
            contact["ContactGroups"] = [*others, summary] if group["Status"] == "ACTIVE" else others

    def admin_add(self, kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        adders = {
            "Accounts": self.add_account,
            "TaxRates": self.add_tax_rate,
            "TrackingCategories": self.add_tracking_category,
        }
        return [adders[kind](item) for item in items]
