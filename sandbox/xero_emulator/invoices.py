"""``/api.xro/2.0/Invoices``: query, create (PUT), create-or-update (POST), totals, status rules.

Totals follow Xero's per-line rounding with the shared rules (shared.money: ``line_amount``,
``line_tax``, ``XERO_ROUNDING``), the one stated assumption both the sync and the emulator use.
``UnitAmount`` keeps 2 dp unless the request says ``unitdp=4``; a submitted ``Total``/``SubTotal``/
``LineAmount`` (with Quantity and UnitAmount) is ignored, as Xero recomputes them.

Messages: "confirmed" ones were seen in Xero responses quoted in public issues; the rest are
marked as guesses where they are raised. The caller (the emulator) holds its lock.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Request, Response

from shared.models.xero import format_xero_datetime, parse_xero_datetime
from shared.money import CENT, UNIT_4DP, XERO_ROUNDING, line_amount, line_tax

from . import responses
from .collection import DocumentCollection
from .common import (
    UUID_RE,
    Stamper,
    decimal_of,
    flag,
    id_list,
    money,
    parse_date,
    query,
    record_date,
    render_date,
)
from .history import HistoryLog
from .routing import INVOICES_READ, INVOICES_WRITE
from .settings import SettingsResource
from .store import ResourceStore
from .where import WhereParseError

MAX_TRACKING = 2
AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
INVOICE_TYPES = ("ACCREC", "ACCPAY")
INVOICE_FIELDS = (
    "InvoiceID",
    "InvoiceNumber",
    "Type",
    "Status",
    "Reference",
    "Date",
    "DueDate",
    "CurrencyCode",
    "CurrencyRate",
    "LineAmountTypes",
    "SubTotal",
    "TotalTax",
    "Total",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "FullyPaidOnDate",
    "UpdatedDateUTC",
    "SentToContact",
    "HasAttachments",
    "BrandingThemeID",
)
NESTED_WHERE = {"Contact": ("ContactID", "Name", "ContactNumber")}
# Editing these on an invoice with payments is refused (confirmed message below).
LOCKED_BY_PAYMENTS = ("LineItems", "LineAmountTypes", "CurrencyCode", "CurrencyRate")
PASSTHROUGH = ("Reference", "Url", "SentToContact", "ExpectedPaymentDate", "PlannedPaymentDate")
SUMMARY_EXCLUDED = frozenset({"LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments"})
_NEXT_NUMBER = re.compile(r"^INV-(\d+)$", re.IGNORECASE)

# Wording seen in Xero answers quoted publicly: number (XeroAPI/Xero-Net#236), payment lock
# (Xero-NetStandard#84, xeroizer#211), status/date messages (integrators' error lists, 2nd-hand),
# DueDate (xeroizer#290, 2nd-hand).
MSG_NUMBER_TAKEN = "Invoice # must be unique."
MSG_PAYMENT_LOCK = "This document cannot be edited as it has a payment or credit note allocated to it."
MSG_NOT_MODIFIABLE = "Invoice not of valid status for modification"
MSG_NOT_CREATABLE = "Invoice not of valid status for creation"
MSG_DUE_DATE = "The document DueDate field must be specified."
MSG_DATE_LOCK = "Date cannot be changed on an invoice that has payment or credit notes allocated to it."
MSG_ARCHIVED_CONTACT = (
    "The contact with the specified contact details has been archived. The contact must be "
    "un-archived before creating new invoices or credit notes"
)


def _round_unit(value: Decimal, four_dp: bool) -> Decimal:
    return value.quantize(UNIT_4DP if four_dp else CENT, rounding=XERO_ROUNDING)


class InvoicesResource(DocumentCollection):
    resource = "Invoices"
    id_field = "InvoiceID"
    error_flag = "HasErrors"
    read_scopes = INVOICES_READ
    write_scopes = INVOICES_WRITE

    def __init__(
        self,
        store: ResourceStore,
        contacts: ResourceStore,
        settings: SettingsResource,
        history: HistoryLog,
        stamp: Stamper,
        now: Callable[[], datetime],
        seed_contact: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        super().__init__(store, settings, history, stamp, now)
        self._contacts = contacts
        self._seed_contact = seed_contact

    # -- reads ---------------------------------------------------------------------------
    def lookup(self, key: str) -> dict[str, Any] | None:
        if UUID_RE.match(key):
            return self.store.get(key)
        wanted = key.strip().casefold()
        return next((r for r in self.store if str(r.get("InvoiceNumber") or "").casefold() == wanted), None)

    def list_records(self, request: Request, _params: dict[str, str]) -> Response:
        args = request.args
        records = list(self.store)
        for param, field in (("InvoiceNumbers", "InvoiceNumber"), ("Statuses", "Status")):
            wanted = id_list(args.get(param))
            if wanted:
                records = [r for r in records if str(r.get(field) or "").lower() in wanted]
        contact_ids = id_list(args.get("ContactIDs"))
        if contact_ids:
            records = [r for r in records if str(r["Contact"]["ContactID"]).lower() in contact_ids]
        term = (args.get("searchTerm") or "").strip().casefold()
        if term:
            records = [
                r
                for r in records
                if term in str(r.get("InvoiceNumber") or "").casefold()
                or term in str(r.get("Reference") or "").casefold()
            ]
        try:
            records, extra = query(
                records,
                request,
                fields=INVOICE_FIELDS,
                id_field="InvoiceID",
                view=self._where_view,
                nested=NESTED_WHERE,
            )
        except WhereParseError as error:
            return responses.query_parse_error(str(error))
        summary = flag(args.get("summaryOnly"))
        four_dp = args.get("unitdp") == "4"
        # Xero returns line items in a list only when paging (developer docs, from memory).
        items = [self.render(r, four_dp=four_dp, summary=summary, lines=bool(extra)) for r in records]
        return responses.json_response(responses.envelope("Invoices", items, self._now(), **extra))

    def show(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.render(record, four_dp=request.args.get("unitdp") == "4")

    def _where_view(self, record: dict[str, Any]) -> dict[str, Any]:
        ref = record.get("Contact") or {}
        contact = self._contacts.get(str(ref.get("ContactID", ""))) or ref
        return {**record, **{f"Contact_{k}": contact.get(k) for k in NESTED_WHERE["Contact"]}}

    # -- writes --------------------------------------------------------------------------
    def save(
        self, element: dict[str, Any], *, create_only: bool, request: Request
    ) -> tuple[dict[str, Any], list[str]]:
        four_dp = request.args.get("unitdp") == "4"
        record, errors = self._apply(element, create_only=create_only, four_dp=four_dp)
        return ({} if errors else self.render(record, four_dp=four_dp)), errors

    def _apply(
        self, element: dict[str, Any], *, create_only: bool, four_dp: bool
    ) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        target = self._target(element, create_only, errors)
        if errors:
            return {}, errors
        record = copy.deepcopy(target) if target is not None else self._new_record()
        old_status = target["Status"] if target is not None else None
        has_payments = target is not None and Decimal(str(target.get("AmountPaid", 0))) > 0

        if old_status in ("VOIDED", "DELETED", "PAID"):
            # A PAID invoice takes no edit at all, not even its Reference (2nd-hand wording,
            # integration-facts.md "Editing a PAID invoice"; the stricter reading).
            return record, [MSG_NOT_MODIFIABLE]
        if has_payments:
            self._payment_lock_errors(element, record, errors)
        self._apply_type(element, record, target, errors)
        if "Contact" in element or target is None:
            self._apply_contact(element.get("Contact"), record, errors)
        self._apply_dates(element, record, errors)
        self._lock_errors(target, record, errors)
        for field in PASSTHROUGH:
            if field in element:
                record[field] = element[field]
        self._apply_currency(element, record, errors)
        self._apply_amount_types(element, record, errors)
        self._apply_theme(element, record, errors)
        self._apply_number(element, record, errors)

        status = element.get("Status", old_status or "DRAFT")
        errors += self._status_errors(old_status, status, has_payments)
        if MSG_PAYMENT_LOCK not in errors:
            self._apply_lines(element, record, target, four_dp, errors)
        if status in ("SUBMITTED", "AUTHORISED") and status != old_status:
            errors += self._approval_errors(record, status)
        if errors:
            return record, list(dict.fromkeys(errors))

        self._total(record)
        record["Status"] = status
        self.settle(record)
        record["UpdatedDateUTC"] = format_xero_datetime(self._stamp())
        self.store.put(record)
        self._log_history(record, old_status)
        return record, []

    def _payment_lock_errors(
        self, element: dict[str, Any], record: dict[str, Any], errors: list[str]
    ) -> None:
        """An invoice with payments keeps its amounts, contact and date."""
        if any(field in element for field in LOCKED_BY_PAYMENTS) or self._contact_changes(element, record):
            errors.append(MSG_PAYMENT_LOCK)
        if "Date" in element and _same_date(element["Date"], record.get("Date")) is False:
            errors.append(MSG_DATE_LOCK)

    def _apply_type(
        self,
        element: dict[str, Any],
        record: dict[str, Any],
        target: dict[str, Any] | None,
        errors: list[str],
    ) -> None:
        kind = element.get("Type", record.get("Type"))
        if kind not in INVOICE_TYPES:
            errors.append("Invoice Type must be ACCREC or ACCPAY.")  # guessed wording
        elif target is not None and kind != target["Type"]:
            errors.append("The invoice Type cannot be changed.")  # guessed wording
        else:
            record["Type"] = kind

    def _apply_dates(self, element: dict[str, Any], record: dict[str, Any], errors: list[str]) -> None:
        for field in ("Date", "DueDate"):
            if field in element:
                try:
                    record[field] = render_date(parse_date(element[field]))
                except ValueError:
                    errors.append(f"{field} '{element[field]}' is not a valid date.")  # guessed wording
        if not record.get("Date"):
            record["Date"] = render_date(self._now().date())  # Xero defaults Date to today

    def _apply_amount_types(self, element: dict[str, Any], record: dict[str, Any], errors: list[str]) -> None:
        amount_types = element.get("LineAmountTypes", record.get("LineAmountTypes"))
        if amount_types not in AMOUNT_TYPES:
            errors.append(f"LineAmountTypes '{amount_types}' is not valid.")  # guessed wording
        else:
            record["LineAmountTypes"] = amount_types

    def _apply_theme(self, element: dict[str, Any], record: dict[str, Any], errors: list[str]) -> None:
        if "BrandingThemeID" not in element:
            return
        theme_id = str(element["BrandingThemeID"] or "")
        if not UUID_RE.match(theme_id) or self._settings.themes.get(theme_id) is None:
            errors.append(f"The BrandingThemeID '{theme_id}' is not valid.")  # guessed wording
        else:
            record["BrandingThemeID"] = theme_id

    def _apply_lines(
        self,
        element: dict[str, Any],
        record: dict[str, Any],
        target: dict[str, Any] | None,
        four_dp: bool,
        errors: list[str],
    ) -> None:
        if "LineItems" in element or target is None:
            lines = element.get("LineItems") or []
            if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
                errors.append("LineItems must be a list of line items.")  # guessed wording
            else:
                record["LineItems"] = self._compute_lines(lines, record, target, four_dp, errors)
        elif record.get("LineAmountTypes") != target.get("LineAmountTypes"):
            # Same lines, new tax treatment: recompute from the stored (up to 4 dp) unit amounts.
            record["LineItems"] = self._compute_lines(target["LineItems"], record, target, True, errors)

    def _target(self, element: dict[str, Any], create_only: bool, errors: list[str]) -> dict[str, Any] | None:
        invoice_id = element.get("InvoiceID")
        if invoice_id:
            target = self.store.get(str(invoice_id)) if UUID_RE.match(str(invoice_id)) else None
            if target is None:
                errors.append(f"Invoice with ID {invoice_id} could not be found.")  # guessed wording
            elif create_only:
                errors.append(f"Invoice with ID {invoice_id} already exists.")  # guessed wording
            return target
        number = element.get("InvoiceNumber")
        if number and not create_only and element.get("Type", "ACCREC") == "ACCREC":
            # Like Xero, a POST carrying an existing (ACCREC) InvoiceNumber updates that invoice.
            return self._by_number(str(number))
        return None

    def _by_number(self, number: str, exclude: str | None = None) -> dict[str, Any] | None:
        wanted = number.strip().casefold()
        for record in self.store:
            if (
                record.get("Type") == "ACCREC"
                and record.get("Status") != "DELETED"
                and str(record.get("InvoiceNumber") or "").casefold() == wanted
                and str(record["InvoiceID"]) != exclude
            ):
                return record
        return None

    def _contact_changes(self, element: dict[str, Any], record: dict[str, Any]) -> bool:
        contact = element.get("Contact")
        if not isinstance(contact, dict) or not contact.get("ContactID"):
            return isinstance(contact, dict) and bool(contact.get("Name"))
        return (
            str(contact["ContactID"]).lower() != str(record.get("Contact", {}).get("ContactID", "")).lower()
        )

    def _apply_contact(self, ref: Any, record: dict[str, Any], errors: list[str]) -> None:
        if not isinstance(ref, dict) or not (
            ref.get("ContactID") or ref.get("Name") or ref.get("ContactNumber")
        ):
            errors.append("A Contact must be specified for this type of transaction")  # guessed wording
            return
        contact = None
        if ref.get("ContactID"):
            contact_id = str(ref["ContactID"])
            contact = self._contacts.get(contact_id) if UUID_RE.match(contact_id) else None
            if contact is None:
                errors.append(f"The contact with ContactID {contact_id} could not be found.")  # guessed
                return
        else:
            # Xero matches a contact by ContactNumber or Name, and creates it when none matches.
            for field in ("ContactNumber", "Name"):
                wanted = str(ref.get(field) or "").strip().casefold()
                if wanted and contact is None:
                    contact = next(
                        (c for c in self._contacts if str(c.get(field) or "").strip().casefold() == wanted),
                        None,
                    )
            if contact is None:
                if not ref.get("Name"):
                    errors.append("The contact name must be specified.")  # guessed wording
                    return
                contact = self._seed_contact(
                    {k: ref[k] for k in ("Name", "ContactNumber", "EmailAddress") if ref.get(k)}
                )
        if contact.get("ContactStatus") == "ARCHIVED":
            errors.append(MSG_ARCHIVED_CONTACT)  # 2nd-hand wording (an integrator's error list)
            return
        record["Contact"] = {"ContactID": str(contact["ContactID"])}

    def _lock_errors(self, target: dict[str, Any] | None, record: dict[str, Any], errors: list[str]) -> None:
        """A document dated on or before a lock date can be neither written nor moved into or out
        of the locked period (integration-facts.md "Lock dates", waynerobinson/xeroizer#92)."""
        organisation = self._settings.organisation
        for dated in (record, target):
            if dated is None or not dated.get("Date"):
                continue
            try:
                when = record_date(dated, "Date")
            except ValueError:
                continue
            locked = organisation.lock_error(when) if when is not None else None
            if locked:
                errors.append(locked)
                return

    def _apply_currency(self, element: dict[str, Any], record: dict[str, Any], errors: list[str]) -> None:
        code = element.get("CurrencyCode", record.get("CurrencyCode"))
        if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3}", code):
            errors.append(f"The currency code '{code}' is not valid.")  # guessed wording
            return
        if "CurrencyCode" in element and (disabled := self._settings.organisation.currency_error(code)):
            # A document's currency must be enabled in the organisation (integration-facts.md,
            # "CurrencyCode must be enabled"; GET /Currencies lists them).
            errors.append(disabled)
            return
        record["CurrencyCode"] = code.upper()
        if "CurrencyRate" in element:
            try:
                rate = decimal_of(element["CurrencyRate"])
                if rate <= 0:
                    raise ValueError("not positive")
                record["CurrencyRate"] = float(rate)
            except ValueError:
                errors.append("The currency rate must be a positive number.")  # guessed wording
        elif (
            record["CurrencyCode"] == self._settings.organisation.base_currency
            or "CurrencyRate" not in record
        ):
            record["CurrencyRate"] = 1.0  # Xero would use its daily rate for a foreign currency

    def _apply_number(self, element: dict[str, Any], record: dict[str, Any], errors: list[str]) -> None:
        number = element.get("InvoiceNumber", record.get("InvoiceNumber"))
        if number is not None and (not isinstance(number, str) or len(number) > 255):
            errors.append("InvoiceNumber must not be more than 255 characters long.")  # guessed wording
            return
        if record.get("Type") != "ACCREC":
            if number:
                record["InvoiceNumber"] = number
            return
        if not number:
            number = self._next_number()
        holder = self._by_number(number, exclude=str(record["InvoiceID"]))
        if holder is not None:
            errors.append(MSG_NUMBER_TAKEN)
            return
        record["InvoiceNumber"] = number

    def _next_number(self) -> str:
        highest = 0
        for record in self.store:
            match = _NEXT_NUMBER.match(str(record.get("InvoiceNumber") or ""))
            if match:
                highest = max(highest, int(match.group(1)))
        return f"INV-{highest + 1:04d}"

    @staticmethod
    def _status_errors(old: str | None, new: Any, has_payments: bool) -> list[str]:
        if old is None:
            return [] if new in ("DRAFT", "SUBMITTED", "AUTHORISED") else [MSG_NOT_CREATABLE]
        if new == old:
            return []
        allowed = {
            "DRAFT": ("SUBMITTED", "AUTHORISED", "DELETED"),
            "SUBMITTED": ("DRAFT", "AUTHORISED", "DELETED"),
            "AUTHORISED": ("VOIDED",),
        }
        if new not in allowed.get(old, ()):
            return [MSG_NOT_MODIFIABLE]
        if new == "VOIDED" and has_payments:
            return [MSG_PAYMENT_LOCK]
        return []

    @staticmethod
    def _approval_errors(record: dict[str, Any], status: str) -> list[str]:
        errors = []
        lines = record.get("LineItems") or []
        if not lines:
            errors.append("At least one line item must be specified.")  # guessed wording
        if status == "AUTHORISED" and not record.get("DueDate"):
            errors.append(MSG_DUE_DATE)  # 2nd-hand: quoted in xeroizer#290, AUTHORISED only
        if any(not line.get("AccountCode") for line in lines):
            errors.append("Account code must be specified")  # 2nd-hand (Apex-for-Xero#9)
        return errors

    # -- totals --------------------------------------------------------------------------
    def _compute_lines(
        self,
        lines: list[dict[str, Any]],
        record: dict[str, Any],
        target: dict[str, Any] | None,
        four_dp: bool,
        errors: list[str],
    ) -> list[dict[str, Any]]:
        existing_ids = {str(line["LineItemID"]).lower() for line in (target or {}).get("LineItems", [])}
        amount_types = record.get("LineAmountTypes", "Exclusive")
        computed = []
        for line in lines:
            result = self.compute_line(
                line, amount_types, four_dp, errors, revenue=record.get("Type") == "ACCREC"
            )
            line_id = str(line.get("LineItemID") or "").lower()
            result["LineItemID"] = line_id if line_id in existing_ids else str(uuid.uuid4())
            computed.append(result)
        return computed

    def compute_line(
        self,
        line: dict[str, Any],
        amount_types: str,
        four_dp: bool,
        errors: list[str],
        *,
        strict: bool = True,
        revenue: bool = False,
    ) -> dict[str, Any]:
        """One line's LineAmount and TaxAmount with Xero's per-line rounding."""
        out: dict[str, Any] = {}
        if line.get("Description") is not None:
            out["Description"] = str(line["Description"])
        try:
            quantity = decimal_of(line.get("Quantity", 1)).quantize(UNIT_4DP, rounding=XERO_ROUNDING)
            if line.get("UnitAmount") is not None:
                unit = _round_unit(decimal_of(line["UnitAmount"]), four_dp)
            elif line.get("LineAmount") is not None and quantity:
                unit = _round_unit(decimal_of(line["LineAmount"]) / quantity, four_dp)
            else:
                unit = Decimal(0)
            discount = decimal_of(line["DiscountRate"]) if line.get("DiscountRate") is not None else None
        except ValueError:
            errors.append("Quantity, UnitAmount and DiscountRate must be numbers.")  # guessed wording
            return out
        if discount is not None and not Decimal(0) <= discount <= Decimal(100):
            errors.append("Discount rate must be between 0 and 100.")  # guessed wording
        amount = line_amount(quantity, unit, discount)
        account = self._line_account(line, errors, strict)
        tax_type = line.get("TaxType") or (account or {}).get("TaxType")
        if amount_types == "NoTax" and not line.get("TaxType"):
            tax_type = self._settings.organisation.no_tax_type  # the country's no-tax rate; guessed default
        rate_percent = self._line_tax_rate(tax_type, account, errors, strict=strict, revenue=revenue)
        tax = (
            Decimal(0)
            if amount_types == "NoTax"
            else line_tax(amount, rate_percent, inclusive=amount_types == "Inclusive")
        )
        out.update({"Quantity": float(quantity), "UnitAmount": float(unit)})
        if account is not None:
            out.update({"AccountCode": account["Code"], "AccountID": account["AccountID"]})
        elif line.get("AccountCode"):
            out["AccountCode"] = str(line["AccountCode"])
        if tax_type:
            out["TaxType"] = str(tax_type).upper()
        out.update({"TaxAmount": money(tax), "LineAmount": money(amount)})
        if discount is not None:
            out["DiscountRate"] = float(discount)
        out["Tracking"] = self._line_tracking(line.get("Tracking"), errors, strict)
        return out

    def _line_tax_rate(
        self,
        tax_type: Any,
        account: dict[str, Any] | None,
        errors: list[str],
        *,
        strict: bool,
        revenue: bool,
    ) -> Decimal:
        """The line's tax rate in percent (0 without a TaxType); an unknown rate, or one the
        line's account or a sales document cannot take, is an error when ``strict``."""
        if not tax_type:
            return Decimal(0)
        rate = self._settings.tax_rate(str(tax_type))
        if rate is None:
            if strict:  # confirmed wording (XeroAPI/Xero-Java#336)
                errors.append(
                    f"The TaxType code {tax_type} does not exist or cannot be used "
                    "for this type of transaction."
                )
            return Decimal(0)
        if strict and account is not None and not self._settings.tax_applies(rate, account):
            # Confirmed wording (XeroAPI/Xero-Java#336).
            errors.append(
                f"The TaxType code '{tax_type}' cannot be used with account code '{account['Code']}'."
            )
        elif strict and revenue and not rate.get("CanApplyToRevenue"):
            # A sales document takes only rates valid for revenue (spec TaxRate.
            # CanApplyToRevenue; confirmed wording, XeroAPI/Xero-Java#336).
            errors.append(
                f"The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."
            )
        return decimal_of(rate["EffectiveRate"])

    def _line_account(self, line: dict[str, Any], errors: list[str], strict: bool) -> dict[str, Any] | None:
        code = line.get("AccountCode")
        if not code and not line.get("AccountID"):
            return None
        account = self._settings.account({"Code": code, "AccountID": line.get("AccountID")})
        shown = code or line.get("AccountID")
        if (
            account is None
            or account.get("Type") == "BANK"
            or account.get("SystemAccount") in ("DEBTORS", "CREDITORS")
        ):
            if strict:
                # Confirmed wording (XeroAPI/Xero-NetStandard#364); bank/AR/AP accounts refused: a guess.
                errors.append(f"Account code '{shown}' is not a valid code for this document.")
            return None
        if account.get("Status") != "ACTIVE":
            if strict:  # 2nd-hand wording (an integrator's error list)
                errors.append(
                    f"Account code '{shown}' has been archived, or has been deleted. "
                    "Each line item must reference a valid account."
                )
            return None
        return account

    def _line_tracking(self, tracking: Any, errors: list[str], strict: bool) -> list[dict[str, Any]]:
        if not tracking:
            return []
        if not isinstance(tracking, list):
            errors.append("Tracking must be a list.")  # guessed wording
            return []
        if len(tracking) > MAX_TRACKING and strict:
            errors.append(f"A line item can have at most {MAX_TRACKING} tracking categories.")  # guessed
        resolved = []
        for item in tracking[:MAX_TRACKING]:
            found, problems = self._settings.tracking_option(item if isinstance(item, dict) else {})
            if found is not None:
                resolved.append(found)
            elif strict:
                errors += problems
        return resolved

    @staticmethod
    def _total(record: dict[str, Any]) -> None:
        lines = record.get("LineItems") or []
        amounts = sum((Decimal(str(line.get("LineAmount", 0))) for line in lines), Decimal(0))
        tax = sum((Decimal(str(line.get("TaxAmount", 0))) for line in lines), Decimal(0))
        if record.get("LineAmountTypes") == "Inclusive":
            total, subtotal = amounts, amounts - tax
        else:
            subtotal, total = amounts, amounts + tax
        record.update({"SubTotal": money(subtotal), "TotalTax": money(tax), "Total": money(total)})
        record["IsDiscounted"] = any(line.get("DiscountRate") for line in lines)

    def settle(self, record: dict[str, Any], paid_on: date | None = None) -> None:
        """AmountDue/AmountPaid from the live payments; AUTHORISED <-> PAID follows them."""
        paid = sum((Decimal(str(p["Amount"])) for p in record.get("Payments", [])), Decimal(0))
        total = Decimal(str(record.get("Total", 0)))
        record["AmountPaid"] = money(paid)
        due = Decimal(0) if record["Status"] in ("VOIDED", "DELETED") else total - paid
        record["AmountDue"] = money(due)
        if record["Status"] == "AUTHORISED" and paid > 0 and due <= 0:
            record["Status"] = "PAID"
            record["FullyPaidOnDate"] = render_date(paid_on or self._now().date())
        elif record["Status"] == "PAID" and due > 0:
            record["Status"] = "AUTHORISED"
            record.pop("FullyPaidOnDate", None)

    def _log_history(self, record: dict[str, Any], old_status: str | None) -> None:
        invoice_id = str(record["InvoiceID"])
        status = record["Status"]
        if old_status is None:
            contact = self._contact_name(record)
            details = f"{record.get('InvoiceNumber') or 'Invoice'} to {contact} for {record['Total']:.2f}."
            self._history.add(invoice_id, "Created", details)
        elif status == old_status:
            self._history.add(invoice_id, "Updated", f"{record.get('InvoiceNumber') or 'Invoice'} updated.")
        changes = {
            "AUTHORISED": "Approved",
            "VOIDED": "Voided",
            "DELETED": "Deleted",
            "SUBMITTED": "Submitted",
        }
        if status != old_status and status in changes:
            self._history.add(
                invoice_id,
                changes[status],
                f"{record.get('InvoiceNumber') or 'Invoice'} {changes[status].lower()}.",
            )

    # -- rendering and seeding -------------------------------------------------------------
    def _contact_name(self, record: dict[str, Any]) -> str:
        contact = self._contacts.get(str(record.get("Contact", {}).get("ContactID", "")))
        return str((contact or record.get("Contact") or {}).get("Name") or "")

    def render(
        self, record: dict[str, Any], *, four_dp: bool = False, summary: bool = False, lines: bool = True
    ) -> dict[str, Any]:
        rendered = copy.deepcopy(record)
        contact = self._contacts.get(str(record.get("Contact", {}).get("ContactID", "")))
        if contact is not None:
            # Xero answers the contact's current details inside the invoice.
            rendered["Contact"] = {
                k: contact[k]
                for k in ("ContactID", "ContactNumber", "Name", "ContactStatus", "EmailAddress", "IsCustomer")
                if contact.get(k) is not None
            }
        if not four_dp:
            for line in rendered.get("LineItems", []):
                if "UnitAmount" in line:
                    line["UnitAmount"] = float(_round_unit(Decimal(str(line["UnitAmount"])), False))
        if summary:
            rendered = {k: v for k, v in rendered.items() if k not in SUMMARY_EXCLUDED}
        if not lines:
            rendered.pop("LineItems", None)
        rendered["HasErrors"] = False
        return rendered

    def _new_record(self) -> dict[str, Any]:
        return {
            "InvoiceID": str(uuid.uuid4()),
            "Status": "DRAFT",
            "LineAmountTypes": "Exclusive",
            "CurrencyCode": self._settings.organisation.base_currency,
            "CurrencyRate": 1.0,
            "LineItems": [],
            "Payments": [],
            "CreditNotes": [],
            "Prepayments": [],
            "Overpayments": [],
            "AmountCredited": 0.0,
            "SentToContact": False,
            "HasAttachments": False,
            "IsDiscounted": False,
        }

    def seed(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store invoices without validation (any status, any contact), with computed totals."""
        seeded = []
        for item in items:
            record = self._new_record()
            for key, value in item.items():
                if key not in ("LineItems", "SubTotal", "TotalTax", "Total", "AmountDue", "AmountPaid"):
                    record[key] = copy.deepcopy(value)
            record["InvoiceID"] = str(record["InvoiceID"]).lower()
            for field in ("Date", "DueDate"):
                if item.get(field):
                    record[field] = render_date(parse_date(item[field]))
            record.setdefault("Date", render_date(self._now().date()))
            record.setdefault("Type", "ACCREC")
            if record["Type"] == "ACCREC" and not record.get("InvoiceNumber"):
                record["InvoiceNumber"] = self._next_number()
            unused: list[str] = []
            lines = [
                self.compute_line(line, record["LineAmountTypes"], True, unused, strict=False)
                for line in item.get("LineItems") or []
            ]
            record["LineItems"] = [{**line, "LineItemID": str(uuid.uuid4())} for line in lines]
            self._total(record)
            if item.get("AmountPaid") is not None or record["Status"] == "PAID":
                paid = decimal_of(item.get("AmountPaid", record["Total"]))
                record["Payments"] = [
                    {"PaymentID": str(uuid.uuid4()), "Amount": money(paid), "Date": record["Date"]}
                ]
            self.settle(record)
            stamp = parse_xero_datetime(item["UpdatedDateUTC"]) if item.get("UpdatedDateUTC") else None
            record["UpdatedDateUTC"] = format_xero_datetime(stamp or self._stamp())
            self.store.put(record)
            seeded.append(self.render(record, four_dp=True))
        return seeded


def _same_date(submitted: Any, stored: Any) -> bool | None:
    try:
        return parse_date(submitted) == (record_date({"d": stored}, "d") if stored else None)
    except ValueError:
        return None
