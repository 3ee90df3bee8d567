"""Argument types that refuse what a command cannot honour, naming the values it accepts, so that
``--limit -5`` or ``--category nonsense`` stops at the command line instead of silently doing
nothing (or everything)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from shared.store.checkpoints import PHASES, Phase

# The words the CLI and docs use for the backfill's phases: Ignition's record names. ``contacts``
# (the checkpoint's own name for the first phase, what earlier versions accepted) still works.
PHASE_NAMES: dict[str, Phase] = {"clients": "contacts", "invoices": "invoices", "payments": "payments"}
PHASE_ALIASES: dict[str, Phase] = {"contacts": "contacts"}
DEFAULT_PHASES = ",".join(PHASE_NAMES)
RECORD_TYPES = ("client", "invoice", "payment")

# Every failure category the sync writes onto a dead letter (functions/sync and the shared rules it
# applies); tests/unit/test_cli_options.py checks the source holds no other.
DEAD_LETTER_CATEGORIES = (
    "ambiguous_match",
    "archived_contact",
    "currency_not_enabled",
    "draft_refused",
    "draft_unconfirmed",
    "duplicate_number",
    "ignition_mcp_not_configured",
    "ignition_schema",
    "ignition_tool_missing",
    "invalid_amount",
    "invoice_locked",
    "invoice_not_approved",
    "malformed_message",
    "mapping_rule",
    "missing_client",
    "missing_invoice",
    "not_connected",
    "payment_reversed",
    "period_locked",
    "receives_exhausted",
    "total_mismatch",
    "unexpected_error",
    "unmapped_contact",
    "xero_validation",
)


def phase_name(phase: Phase) -> str:
    """The name people see for a checkpoint phase."""
    return next(name for name, value in PHASE_NAMES.items() if value == phase)


def phases(text: str) -> tuple[Phase, ...]:
    """``clients,invoices`` -> the phases in the order they run."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    known = {**PHASE_NAMES, **PHASE_ALIASES}
    unknown = [w for w in words if w not in known]
    if unknown or not words:
        raise argparse.ArgumentTypeError(
            f"unknown phase(s): {', '.join(unknown) or '(none given)'}; choose from {', '.join(PHASE_NAMES)}"
        )
    chosen = {known[w] for w in words}
    return tuple(p for p in PHASES if p in chosen)


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number in [minimum, maximum]."""
    allowed = f"a whole number from {minimum}" + (f" to {maximum}" if maximum is not None else " up")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {allowed}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{value} is out of range: {allowed}")
        return value

    parse.__name__ = "whole number"
    return parse


def seconds(minimum: float, maximum: float) -> Callable[[str], float]:
    """A number of seconds in [minimum, maximum]."""
    allowed = f"seconds from {minimum:g} to {maximum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {allowed}") from None
        if not minimum <= value <= maximum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is out of range: {allowed}")
        return value

    parse.__name__ = "seconds"
    return parse


def category(text: str) -> str:
    if text not in DEAD_LETTER_CATEGORIES:
        raise argparse.ArgumentTypeError(
            f"unknown failure category {text!r}: choose from {', '.join(DEAD_LETTER_CATEGORIES)}"
        )
    return text
