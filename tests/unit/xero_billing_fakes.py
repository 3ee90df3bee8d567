"""The fake Xero of ``xero_fakes`` with just enough billing behaviour for the client's tests:
invoices (totals computed per line in Decimal, UnitAmount rounded to 2 dp unless ``unitdp=4``),
payments (only on AUTHORISED invoices, never over AmountDue, delete restores AmountDue), history
notes (2,500 characters at most) and reference data (tax rates, accounts, tracking categories,
contact groups, branding themes).

Bodies are read with ``parse_float=Decimal`` and written by ``dumps`` with Decimals as exact JSON
numbers (``0.30`` stays ``0.30`` on the wire), as Xero writes them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import httpx

from shared.money import UNIT_4DP, line_tax, round_money
from tests.unit.xero_fakes import FakeClock, FakeXero

_API = "/api.xro/2.0"
_GUID = r"[0-9a-fA-F-]{36}"


def dumps(value: Any) -> str:
    """JSON text with Decimals written digit for digit (json.dumps would need floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def _validation_400(elements: list[dict[str, Any]], message: str = "A validation exception occurred") -> Any:
    return {"ErrorNumber": 10, "Type": "ValidationException", "Message": message, "Elements": elements}


def _dec(value: Any, default: str = "0") -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(default)


class FakeXeroBilling(FakeXero):
    def __init__(self, clock: FakeClock, **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.history_records: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.tax_rates: list[dict[str, Any]] = [
            {
                "Name": "GST on Income",
                "TaxType": "OUTPUT",
                "Status": "ACTIVE",
                "EffectiveRate": Decimal("10.0000"),
            },
            {
                "Name": "GST Free Income",
                "TaxType": "EXEMPTOUTPUT",
                "Status": "ACTIVE",
                "EffectiveRate": Decimal("0"),
            },
            {
                "Name": "BAS Excluded",
                "TaxType": "BASEXCLUDED",
                "Status": "ACTIVE",
                "EffectiveRate": Decimal("0"),
            },
        ]
        self.accounts: list[dict[str, Any]] = [
            {
                "AccountID": str(uuid.uuid4()),
                "Code": "200",
                "Name": "Sales",
                "Type": "REVENUE",
                "Status": "ACTIVE",
            },
            {
                "AccountID": str(uuid.uuid4()),
                "Code": "090",
                "Name": "Business Bank",
                "Type": "BANK",
                "Status": "ACTIVE",
            },
            {
                "AccountID": str(uuid.uuid4()),
                "Code": "880",
                "Name": "Ignition Clearing Account",
                "Type": "CURRLIAB",
                "Status": "ACTIVE",
                "EnablePaymentsToAccount": True,
            },
        ]
        self.tracking_categories: list[dict[str, Any]] = [
            {
                "TrackingCategoryID": str(uuid.uuid4()),
                "Name": "Region",
                "Status": "ACTIVE",
                "Options": [{"TrackingOptionID": str(uuid.uuid4()), "Name": "North", "Status": "ACTIVE"}],
            }
        ]
        self.contact_groups: dict[str, dict[str, Any]] = {}
        self.branding_themes: list[dict[str, Any]] = [
            {"BrandingThemeID": str(uuid.uuid4()), "Name": "Standard", "SortOrder": 0}
        ]

    # --- plumbing ------------------------------------------------------------------------------

    def _json(self, status: int, body: Any) -> httpx.Response:
        return httpx.Response(
            status,
            content=dumps(body).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", **self._limit_headers()},
        )

    def _now_ms(self) -> str:
        return f"/Date({int(self.clock.time() * 1000)}+0000)/"

    def _route(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode().split("?")[0].removeprefix(_API)
        method = request.method
        if raw == "/Invoices":
            if method == "GET":
                return self._list_invoices(request)
            return self._write_invoices(request)
        if match := re.fullmatch(rf"/Invoices/({_GUID})", raw):
            invoice = self.invoices.get(match.group(1))
            if invoice is None:
                return self._json(404, {"Title": "NotFound"})
            return self._json(200, {"Invoices": [self._render(invoice, request, with_lines=True)]})
        if raw == "/Payments":
            return self._list_payments(request) if method == "GET" else self._write_payments(request)
        if match := re.fullmatch(rf"/Payments/({_GUID})", raw):
            return self._one_payment(request, match.group(1))
        if match := re.fullmatch(rf"/(Contacts|Invoices|Payments)/({_GUID})/History", raw):
            return self._history(request, match.group(1), match.group(2))
        if raw == "/ContactGroups" and method == "PUT":
            return self._create_groups(request)
        if match := re.fullmatch(rf"/ContactGroups/({_GUID})/Contacts", raw):
            group = self.contact_groups.get(match.group(1))
            if group is None:
                return self._json(404, {"Title": "NotFound"})
            added = json.loads(request.content)["Contacts"]
            group["Contacts"].extend(c for c in added if c not in group["Contacts"])
            return self._json(200, {"Contacts": added})
        lists: dict[str, tuple[str, list[dict[str, Any]]]] = {
            "/TaxRates": ("TaxRates", self.tax_rates),
            "/Accounts": ("Accounts", self.accounts),
            "/TrackingCategories": ("TrackingCategories", self.tracking_categories),
            "/ContactGroups": ("ContactGroups", list(self.contact_groups.values())),
            "/BrandingThemes": ("BrandingThemes", self.branding_themes),
        }
        if raw in lists and method == "GET":
            key, items = lists[raw]
            return self._json(200, {key: _where_eq(items, request.url.params.get("where"))})
        return super()._route(request)

    # --- invoices --------------------------------------------------------------------------------

    def _render(self, invoice: dict[str, Any], request: httpx.Request, *, with_lines: bool) -> dict[str, Any]:
        out = dict(invoice)
        if not with_lines:
            out.pop("LineItems", None)
        elif request.url.params.get("unitdp") != "4":
            out["LineItems"] = [
                {**line, "UnitAmount": round_money(line["UnitAmount"])} for line in invoice["LineItems"]
            ]
        return out

    def _list_invoices(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        items = list(self.invoices.values())
        for name, field in (
            ("IDs", "InvoiceID"),
            ("InvoiceNumbers", "InvoiceNumber"),
            ("Statuses", "Status"),
        ):
            if name in params:
                wanted = set(params[name].split(","))
                items = [i for i in items if i.get(field) in wanted]
        if "ContactIDs" in params:
            wanted = set(params["ContactIDs"].split(","))
            items = [i for i in items if i["Contact"]["ContactID"] in wanted]
        # Xero returns line items on paged reads only, and never with summaryOnly.
        with_lines = "page" in params and params.get("summaryOnly") != "true"
        if "page" in params:
            size, page = int(params.get("pageSize", "100")), int(params["page"])
            items = items[(page - 1) * size : page * size]
        return self._json(200, {"Invoices": [self._render(i, request, with_lines=with_lines) for i in items]})

    def _write_invoices(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content, parse_float=Decimal)
        places = UNIT_4DP if request.url.params.get("unitdp") == "4" else Decimal("0.01")
        results = [self._write_invoice(e, request.method, places) for e in body["Invoices"]]
        if request.url.params.get("summarizeErrors", "true") != "false" and any(
            r.get("HasErrors") for r in results
        ):
            return self._json(400, _validation_400(results))
        return self._json(200, {"Invoices": [self._render(r, request, with_lines=True) for r in results]})

    def _write_invoice(self, element: dict[str, Any], method: str, places: Decimal) -> dict[str, Any]:
        errors: list[str] = []
        existing = self.invoices.get(element.get("InvoiceID", ""))
        if method == "PUT" and element.get("InvoiceID"):
            errors.append("Invoice already exists; use POST to update it.")
        merged = {**(existing or {}), **element}
        if merged.get("Type") not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice Type must be specified.")
        contact_id = (merged.get("Contact") or {}).get("ContactID")
        if contact_id not in self.contacts:
            errors.append("A Contact must be specified for this type of transaction")
        number = merged.get("InvoiceNumber")
        if number and any(
            i["InvoiceNumber"] == number
            and i["InvoiceID"] != merged.get("InvoiceID")
            and i["Type"] == "ACCREC"
            for i in self.invoices.values()
        ):
            errors.append("Invoice # must be unique.")
        rates = {t["TaxType"]: t["EffectiveRate"] for t in self.tax_rates}
        codes = {a["Code"] for a in self.accounts}
        lines: list[dict[str, Any]] = []
        for line in merged.get("LineItems") or []:
            tax_type = line.get("TaxType", "OUTPUT")
            if line.get("AccountCode") not in codes:
                errors.append(
                    f"Account code '{line.get('AccountCode')}' is not a valid code for this document."
                )
            if tax_type not in rates:
                errors.append(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used "
                    "for this type of transaction."
                )
            unit = _dec(line.get("UnitAmount")).quantize(places)
            amount = round_money(_dec(line.get("Quantity"), "1") * unit)
            kind = merged.get("LineAmountTypes", "Exclusive")
            tax = (
                Decimal("0.00")
                if kind == "NoTax"
                else line_tax(amount, rates.get(tax_type, Decimal(0)), inclusive=kind == "Inclusive")
            )
            lines.append(
                {
                    **line,
                    "LineItemID": line.get("LineItemID") or str(uuid.uuid4()),
                    "UnitAmount": unit,
                    "TaxType": tax_type,
                    "LineAmount": amount,
                    "TaxAmount": tax,
                }
            )
        if errors:
            return {
                **element,
                "HasErrors": True,
                "StatusAttributeString": "ERROR",
                "ValidationErrors": [{"Message": m} for m in errors],
            }
        inclusive = merged.get("LineAmountTypes") == "Inclusive"
        line_total = sum((line["LineAmount"] for line in lines), Decimal("0.00"))
        tax_total = sum((line["TaxAmount"] for line in lines), Decimal("0.00"))
        total = line_total if inclusive else line_total + tax_total
        paid = _dec(merged.get("AmountPaid"), "0.00")
        invoice = {
            **merged,
            "InvoiceID": merged.get("InvoiceID") or str(uuid.uuid4()),
            "Contact": {"ContactID": contact_id, "Name": self.contacts[str(contact_id)].get("Name")},
            "Date": _ms_date(merged.get("Date")),
            "DueDate": _ms_date(merged.get("DueDate")),
            "Status": merged.get("Status", "DRAFT"),
            "LineItems": lines,
            "SubTotal": line_total - tax_total if inclusive else line_total,
            "TotalTax": tax_total,
            "Total": total,
            "AmountPaid": paid,
            "AmountDue": total - paid,
            "AmountCredited": Decimal("0.00"),
            "Payments": merged.get("Payments", []),
            "UpdatedDateUTC": self._now_ms(),
            "HasErrors": False,
        }
        self.invoices[invoice["InvoiceID"]] = invoice
        return invoice

    # --- payments --------------------------------------------------------------------------------

    def _write_payments(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content, parse_float=Decimal)
        results = [self._write_payment(element) for element in body["Payments"]]
        if request.url.params.get("summarizeErrors", "true") != "false" and any(
            r.get("HasValidationErrors") for r in results
        ):
            return self._json(400, _validation_400(results))
        return self._json(200, {"Payments": results})

    def _write_payment(self, element: dict[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        invoice = self.invoices.get((element.get("Invoice") or {}).get("InvoiceID", ""))
        account = next(
            (a for a in self.accounts if a["Code"] == (element.get("Account") or {}).get("Code")), None
        )
        amount = _dec(element.get("Amount"))
        if invoice is None:
            errors.append("Invoice could not be found")
        elif invoice["Status"] != "AUTHORISED":
            errors.append("Payment can only be made against an authorised invoice")
        elif amount > invoice["AmountDue"]:
            errors.append("Payment amount exceeds the amount outstanding on this document")
        if account is None or not (account["Type"] == "BANK" or account.get("EnablePaymentsToAccount")):
            errors.append("Account must be a bank account or enabled for payments")
        if errors:
            return {
                **element,
                "HasValidationErrors": True,
                "StatusAttributeString": "ERROR",
                "ValidationErrors": [{"Message": m} for m in errors],
            }
        assert invoice is not None and account is not None
        payment = {
            **element,
            "PaymentID": str(uuid.uuid4()),
            "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber")},
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "Date": _ms_date(element.get("Date")),
            "Amount": amount,
            "Status": "AUTHORISED",
            "PaymentType": "ACCRECPAYMENT",
            "UpdatedDateUTC": self._now_ms(),
            "HasValidationErrors": False,
        }
        self.payments[payment["PaymentID"]] = payment
        self._apply(invoice, amount)
        invoice["Payments"] = [*invoice["Payments"], {"PaymentID": payment["PaymentID"], "Amount": amount}]
        return payment

    def _apply(self, invoice: dict[str, Any], amount: Decimal) -> None:
        invoice["AmountPaid"] += amount
        invoice["AmountDue"] -= amount
        invoice["Status"] = "PAID" if invoice["AmountDue"] == 0 else "AUTHORISED"

    def _list_payments(self, request: httpx.Request) -> httpx.Response:
        items = list(self.payments.values())
        where = request.url.params.get("where")
        if where:
            wanted = set(re.findall(r'PaymentID==Guid\("([^"]+)"\)', where))
            items = [p for p in items if p["PaymentID"] in wanted]
        if "page" in request.url.params:
            size, page = int(request.url.params.get("pageSize", "100")), int(request.url.params["page"])
            items = items[(page - 1) * size : page * size]
        return self._json(200, {"Payments": items})

    def _one_payment(self, request: httpx.Request, payment_id: str) -> httpx.Response:
        payment = self.payments.get(payment_id)
        if payment is None:
            return self._json(404, {"Title": "NotFound"})
        if request.method == "GET":
            return self._json(200, {"Payments": [payment]})
        if json.loads(request.content) != {"Status": "DELETED"}:
            return self._json(400, _validation_400([], "Only Status DELETED can be posted to a payment"))
        if payment["Status"] == "DELETED":
            return self._json(400, _validation_400([], "Payment has already been deleted"))
        payment["Status"] = "DELETED"
        self._apply(self.invoices[payment["Invoice"]["InvoiceID"]], -payment["Amount"])
        return self._json(200, {"Payments": [payment]})

    # --- history and contact groups --------------------------------------------------------------

    def _history(self, request: httpx.Request, resource: str, record_id: str) -> httpx.Response:
        store = {"Contacts": self.contacts, "Invoices": self.invoices, "Payments": self.payments}[resource]
        if record_id not in store:
            return self._json(404, {"Title": "NotFound"})
        records = self.history_records.setdefault((resource, record_id), [])
        if request.method == "GET":
            return self._json(200, {"HistoryRecords": records})
        added = json.loads(request.content)["HistoryRecords"]
        if any(len(r.get("Details", "")) > 2_500 for r in added):
            return self._json(400, _validation_400(added, "Details must be 2500 characters or fewer"))
        new = [
            {"Details": r["Details"], "Changes": "Note", "User": "API", "DateUTC": self._now_ms()}
            for r in added
        ]
        records.extend(new)
        return self._json(200, {"HistoryRecords": new})

    def _create_groups(self, request: httpx.Request) -> httpx.Response:
        created = []
        for element in json.loads(request.content)["ContactGroups"]:
            if any(g["Name"].lower() == element["Name"].lower() for g in self.contact_groups.values()):
                return self._json(
                    400,
                    _validation_400(
                        [
                            {
                                **element,
                                "ValidationErrors": [{"Message": "You have already used this group name."}],
                            }
                        ]
                    ),
                )
            group = {
                "ContactGroupID": str(uuid.uuid4()),
                "Name": element["Name"],
                "Status": "ACTIVE",
                "Contacts": [],
            }
            self.contact_groups[group["ContactGroupID"]] = group
            created.append(group)
        return self._json(200, {"ContactGroups": created})


def _where_eq(items: list[dict[str, Any]], where: str | None) -> list[dict[str, Any]]:
    if not where:
        return items
    clauses = re.findall(r'(\w+)=="((?:[^"]|"")*)"', unquote(where))
    return [i for i in items if all(str(i.get(f, "")) == v.replace('""', '"') for f, v in clauses)]


def _ms_date(value: Any) -> Any:
    """Xero answers dates as ``/Date(ms+0000)/``, whatever form they were sent in."""
    if not isinstance(value, str) or value.startswith("/Date("):
        return value
    moment = datetime.combine(date.fromisoformat(value[:10]), datetime.min.time(), tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"
