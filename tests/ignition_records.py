"""Ignition records as the Ignition emulator takes them (``PUT /_emulator/<resource>/<slug>``), for
the tests that drive a sandbox (integration, chaos, poll): one spelling of each record's shape,
with what a test varies as arguments and anything else as extra fields."""

from __future__ import annotations

from typing import Any

# The day the sandbox tests' invoices are raised and paid, unless a test says otherwise.
INVOICED_AT = "2026-11-02T09:00:00Z"
PAID_AT = "2026-11-03T09:00:00Z"


def line(
    price: str,
    quantity: str = "1",
    tax_rate: str | None = "10",
    *,
    description: str = "Monthly bookkeeping",
    currency: str = "AUD",
    **extra: Any,
) -> dict[str, Any]:
    """An invoice line item; ``tax_rate=None`` leaves the rate out (Ignition's own default)."""
    item: dict[str, Any] = {
        "description": description,
        "quantity": quantity,
        "unit_price": {"amount": price, "currency": currency},
    }
    if tax_rate is not None:
        item["tax_rate"] = tax_rate
    item.update(extra)
    return item


def invoice(slug: str, client: str, items: list[dict[str, Any]], total: str, **fields: Any) -> dict[str, Any]:
    """An invoice awaiting payment, numbered ``IGN-<slug>``, in AUD unless ``currency`` says."""
    record: dict[str, Any] = {
        "slug": slug,
        "reference_number": f"IGN-{slug}",
        "state": "awaiting_payment",
        "client": {"slug": client},
        "amount": {"total": total, "currency": fields.pop("currency", "AUD")},
        "date": "2026-11-02",
        "items": items,
        "created_at": INVOICED_AT,
    }
    record.update(fields)
    return record


def payment(
    slug: str,
    client: str,
    amount: str,
    *invoices: str,
    currency: str = "AUD",
    created_at: str = PAID_AT,
    **fields: Any,
) -> dict[str, Any]:
    """A succeeded payment of ``amount`` on ``invoices`` (slugs)."""
    return {
        "slug": slug,
        "state": "succeeded",
        "client": {"slug": client},
        "amount": {"amount": amount, "currency": currency},
        "invoices": [{"slug": paid} for paid in invoices],
        "created_at": created_at,
        **fields,
    }
