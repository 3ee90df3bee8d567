"""``/api.xro/2.0/Payments``: apply a payment to an AUTHORISED invoice, list, delete.

A payment keeps the invoice's AmountPaid/AmountDue/Payments[] current and moves it to PAID when
nothing is left due (back to AUTHORISED when a payment is deleted). Confirmed wording: "Payments
can only be made against Authorised documents." and "Payment amount exceeds the amount
outstanding on this document." (both quoted in integrators' Xero error lists; Xero answers both
for a fully paid invoice), "Account could not be found." (same source). Others are guesses.
The caller (the emulator) holds its lock.
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
from shared.money import round_money

from . import responses
from .collection import DocumentCollection
from .common import (
    UUID_RE,
    Stamper,
    decimal_of,
    error_element,
    money,
    parse_date,
    query,
    read_elements,
    render_date,
)
from .history import HistoryLog
from .invoices import InvoicesResource
from .routing import PAYMENTS_READ, PAYMENTS_WRITE
from .settings import SettingsResource
from .store import ResourceStore
from .where import WhereParseError

PAYMENT_FIELDS = (
    "PaymentID",
    "Date",
    "Amount",
    "BankAmount",
    "CurrencyRate",
    "Reference",
    "Status",
    "PaymentType",
    "IsReconciled",
    "UpdatedDateUTC",
)
NESTED_WHERE = {"Invoice": ("InvoiceID", "InvoiceNumber"), "Account": ("AccountID", "Code")}
MSG_NOT_AUTHORISED = "Payments can only be made against Authorised documents."
MSG_OVER_DUE = "Payment amount exceeds the amount outstanding on this document."
MSG_NO_ACCOUNT = "Account could not be found."


class PaymentsResource(DocumentCollection):
    """Payments are only created (PUT and POST alike) and deleted (POST of Status DELETED to one)."""

    resource = "Payments"
    id_field = "PaymentID"
    error_flag = "HasValidationErrors"
    read_scopes = PAYMENTS_READ
    write_scopes = PAYMENTS_WRITE
    echo_id = False

    def __init__(
        self,
        store: ResourceStore,
        invoices: InvoicesResource,
        settings: SettingsResource,
        history: HistoryLog,
        stamp: Stamper,
        now: Callable[[], datetime],
    ) -> None:
        super().__init__(store, settings, history, stamp, now)
        self._invoices = invoices

    def lookup(self, key: str) -> dict[str, Any] | None:
        return self.store.get(key) if UUID_RE.match(key) else None

    # -- reads ---------------------------------------------------------------------------
    def list_records(self, request: Request, _params: dict[str, str]) -> Response:
        try:
            records, extra = query(
                list(self.store),
                request,
                fields=PAYMENT_FIELDS,
                id_field="PaymentID",
                view=_where_view,
                nested=NESTED_WHERE,
            )
        except WhereParseError as error:
            return responses.query_parse_error(str(error))
        items = [self.render(r) for r in records]
        return responses.json_response(responses.envelope("Payments", items, self._now(), **extra))

    def show(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        return self.render(record)

    # -- writes --------------------------------------------------------------------------
    def save(
        self, element: dict[str, Any], *, create_only: bool, request: Request
    ) -> tuple[dict[str, Any], list[str]]:
        record, errors = self._create(element)
        return ({} if errors else self.render(record)), errors

    def _create(self, element: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        invoice = self._invoice(element, errors)
        account = self._account(element, errors)
        try:
            amount = round_money(decimal_of(element.get("Amount")))
        except ValueError:
            errors.append("The payment amount must be specified.")  # guessed wording
            amount = Decimal(0)
        if amount <= 0 and "Amount" in element:
            errors.append("The payment amount must be greater than zero.")  # guessed wording
        try:
            paid_on = parse_date(element.get("Date"))
        except ValueError:
            errors.append("The payment date must be specified.")  # guessed wording
            paid_on = None
        if paid_on is not None and (locked := self._settings.organisation.lock_error(paid_on)):
            # A payment dated on or before a lock date is refused (waynerobinson/xeroizer#92).
            errors.append(locked)
        if invoice is not None:
            status = invoice["Status"]
            due = Decimal(str(invoice.get("AmountDue", 0)))
            if status == "PAID":
                errors += [MSG_NOT_AUTHORISED, MSG_OVER_DUE]
            elif status != "AUTHORISED":
                errors.append(MSG_NOT_AUTHORISED)
            elif amount > due:
                errors.append(MSG_OVER_DUE)
        rate = Decimal(1)
        if element.get("CurrencyRate") is not None:
            try:
                rate = decimal_of(element["CurrencyRate"])
            except ValueError:
                errors.append("The currency rate must be a positive number.")  # guessed wording
        elif invoice is not None:
            rate = decimal_of(invoice.get("CurrencyRate", 1))
        if rate <= 0:
            errors.append("The currency rate must be a positive number.")  # guessed wording
        if errors or invoice is None or account is None or paid_on is None:
            return {}, list(dict.fromkeys(errors))

        payment_id = str(uuid.uuid4())
        record = {
            "PaymentID": payment_id,
            "Date": render_date(paid_on),
            "Amount": money(amount),
            # The bank account is in the base currency: Xero's rate is foreign units per 1 AUD.
            "BankAmount": money(round_money(amount / rate)),
            "CurrencyRate": float(rate),
            "Reference": str(element.get("Reference") or ""),
            "IsReconciled": False,
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
            "HasAccount": True,
            "HasValidationErrors": False,
            "Account": {k: account[k] for k in ("AccountID", "Code") if account.get(k) is not None},
            "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber")},
        }
        self._stamp_record(record)
        self.store.put(record)
        invoice.setdefault("Payments", []).append(_summary(record))
        self._invoices.settle(invoice, paid_on)
        invoice["UpdatedDateUTC"] = format_xero_datetime(self._stamp())
        name = self._invoices.render(invoice, lines=False).get("Contact", {}).get("Name", "")
        changes = "Paid" if invoice["Status"] == "PAID" else "Payment Received"
        self._history.add(
            str(invoice["InvoiceID"]),
            changes,
            f"Payment received from {name} on {paid_on:%d %B %Y} for {amount:.2f}.",
        )
        self._history.add(payment_id, "Created", f"Payment of {amount:.2f} applied.")
        return record, []

    def _invoice(self, element: dict[str, Any], errors: list[str]) -> dict[str, Any] | None:
        ref = element.get("Invoice") if isinstance(element.get("Invoice"), dict) else {}
        assert isinstance(ref, dict)
        key = ref.get("InvoiceID") or ref.get("InvoiceNumber") or element.get("InvoiceNumber")
        invoice = self._invoices.lookup(str(key)) if key else None
        if invoice is None:
            errors.append("Invoice could not be found.")  # guessed wording
        return invoice

    def _account(self, element: dict[str, Any], errors: list[str]) -> dict[str, Any] | None:
        ref = element.get("Account") if isinstance(element.get("Account"), dict) else {}
        assert isinstance(ref, dict)
        if not ref and element.get("Code"):
            ref = {"Code": element["Code"]}
        account = self._settings.account(ref)
        if account is None or account.get("Status") != "ACTIVE":
            errors.append(MSG_NO_ACCOUNT)
            return None
        if account.get("Type") != "BANK" and not account.get("EnablePaymentsToAccount"):
            # Guessed wording: Xero takes payments into bank accounts or accounts with
            # "Enable payments to this account" set.
            errors.append(f"Payments cannot be made to account code '{account['Code']}'.")
            return None
        return account

    def post_record(self, request: Request, params: dict[str, str]) -> Response:
        """Only the Status of a payment can change, to DELETED."""
        record = self.lookup(params["key"])
        if record is None:
            return responses.not_found()
        elements = read_elements(request, "Payments")
        element = elements[0] if elements else {}
        errors = []
        if element.get("Status") != "DELETED":
            errors.append("Only the Status of a payment can be updated, to DELETED.")  # guessed wording
        elif record["Status"] == "DELETED":
            errors.append("This payment has already been deleted.")  # guessed wording
        elif locked := self._settings.organisation.lock_error(parse_date(record["Date"])):
            # Deleting changes the locked period too: refused like a new document (xeroizer#92).
            errors.append(locked)
        if errors:
            shown = error_element(element, errors, "HasValidationErrors")
            shown["PaymentID"] = record["PaymentID"]
            return responses.validation_exception([shown])
        record["Status"] = "DELETED"
        self._stamp_record(record)
        invoice = self._invoices.store.get(str(record["Invoice"]["InvoiceID"]))
        if invoice is not None:
            invoice["Payments"] = [
                p for p in invoice.get("Payments", []) if p["PaymentID"] != record["PaymentID"]
            ]
            self._invoices.settle(invoice)
            invoice["UpdatedDateUTC"] = format_xero_datetime(self._stamp())
            self._history.add(
                str(invoice["InvoiceID"]), "Payment Deleted", f"Payment of {record['Amount']:.2f} deleted."
            )
        self._history.add(str(record["PaymentID"]), "Deleted", "Payment deleted.")
        return responses.json_response(responses.envelope("Payments", [self.render(record)], self._now()))

    def _stamp_record(self, record: dict[str, Any]) -> None:
        record["UpdatedDateUTC"] = format_xero_datetime(self._stamp())

    def render(self, record: dict[str, Any]) -> dict[str, Any]:
        rendered = copy.deepcopy(record)
        invoice = self._invoices.store.get(str(record["Invoice"]["InvoiceID"]))
        if invoice is not None:
            shown = self._invoices.render(invoice, summary=True, lines=False)
            rendered["Invoice"] = {
                k: shown[k]
                for k in ("InvoiceID", "InvoiceNumber", "Type", "Contact", "CurrencyCode", "Status", "Total")
                if k in shown
            }
        account = self._settings.accounts.get(str(record["Account"]["AccountID"]))
        if account is not None:
            # A bank account may have no Code: then Xero shows it by AccountID and Name only.
            rendered["Account"] = {
                k: account[k] for k in ("AccountID", "Code", "Name") if account.get(k) is not None
            }
        return rendered


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    """The payment as an invoice lists it (Invoice.Payments[])."""
    return {
        k: record[k]
        for k in (
            "PaymentID",
            "Date",
            "Amount",
            "Reference",
            "CurrencyRate",
            "HasAccount",
            "HasValidationErrors",
        )
    }


def _where_view(record: dict[str, Any]) -> dict[str, Any]:
    invoice, account = record.get("Invoice") or {}, record.get("Account") or {}
    return {
        **record,
        "Invoice_InvoiceID": invoice.get("InvoiceID"),
        "Invoice_InvoiceNumber": invoice.get("InvoiceNumber"),
        "Account_AccountID": account.get("AccountID"),
        "Account_Code": account.get("Code"),
    }
