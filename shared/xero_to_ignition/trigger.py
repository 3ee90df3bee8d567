"""Which Xero invoices a bookkeeper has marked for Ignition (pure; no calls).

Marked: a sales invoice (ACCREC) still in DRAFT whose Reference starts with the configured prefix
(trimmed, any case) and/or one of whose lines carries the configured tracking option. Whose
contact is mapped to an Ignition client, and whether this product or Ignition wrote it, is the
service's question: it needs the stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.config import XeroToIgnitionRules
from shared.models.xero import Invoice

# The marker our drafts' references carry: "<Xero number> [xero <12 hex of the InvoiceID>]". It is
# how the finished Ignition invoice finds the Xero invoice it came from.
_MARKER = re.compile(r"\[xero ([0-9a-f]{12})\]")


@dataclass(frozen=True)
class Verdict:
    marked: bool
    why: str


def _has_prefix(reference: str | None, prefix: str) -> bool:
    return (reference or "").strip().casefold().startswith(prefix.strip().casefold())


def _has_tracking(invoice: Invoice, category: str, option: str) -> bool:
    wanted = (category.strip().casefold(), option.strip().casefold())
    return any(
        (tracking.Name.strip().casefold(), tracking.Option.strip().casefold()) == wanted
        for line in invoice.LineItems or []
        for tracking in line.Tracking or []
    )


def is_marked(invoice: Invoice, rules: XeroToIgnitionRules) -> Verdict:
    """Whether ``invoice`` asks for an Ignition draft, and why (or why not), for the audit."""
    if invoice.Type != "ACCREC":
        return Verdict(False, f"not a sales invoice (Type {invoice.Type})")
    if invoice.Status != "DRAFT":
        return Verdict(False, f"not a draft (Status {invoice.Status})")
    if marker_in(invoice.Reference) is not None:
        return Verdict(False, "its reference carries our own draft marker")
    by_reference = rules.reference_prefix is not None and _has_prefix(
        invoice.Reference, rules.reference_prefix
    )
    by_tracking = (
        rules.tracking_category is not None
        and rules.tracking_option is not None
        and _has_tracking(invoice, rules.tracking_category, rules.tracking_option)
    )
    marks = [
        *([f"Reference starts with {rules.reference_prefix!r}"] if by_reference else []),
        *([f"a line is tracked {rules.tracking_category}: {rules.tracking_option}"] if by_tracking else []),
    ]
    marked = (by_reference and by_tracking) if rules.require_both else (by_reference or by_tracking)
    if not marked:
        return Verdict(False, "not marked for Ignition" + (f" (only: {marks[0]})" if marks else ""))
    return Verdict(True, "; ".join(marks))


def marker_of(invoice_id: str) -> str:
    """The 12 hex digits of a Xero InvoiceID that key its draft (record and reference)."""
    return invoice_id.replace("-", "").lower()[:12]


def draft_reference(invoice: Invoice) -> str:
    """The draft's reference: the Xero invoice number a person recognises, and our marker."""
    assert invoice.InvoiceID is not None
    number = (invoice.InvoiceNumber or "").strip() or "Xero draft"
    return f"{number} [xero {marker_of(invoice.InvoiceID)}]"


def marker_in(reference: str | None) -> str | None:
    """The marker a draft's (or the finished invoice's) reference carries, if any."""
    found = _MARKER.search(reference or "")
    return found.group(1) if found else None
