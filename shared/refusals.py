"""What a Xero refusal means for a bookkeeper: the reason parked with an event (and shown by the
backfill) when a document is dated in a locked period or is in a currency the organisation has not
enabled. Shared by the invoice and payment syncs and the backfill, so each says it the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from shared.errors import PermanentSyncError
from shared.models.xero import Currency, Organisation
from shared.ports import OrganisationPort
from shared.xero.rules import LockKind, XeroPeriodLocked


def period_locked_reason(
    what: str, dated: object, lock: LockKind, organisation: Organisation
) -> PermanentSyncError:
    """A bookkeeper's reason for a document dated on or before one of the organisation's lock dates."""
    lock_date = organisation.EndOfYearLockDate if lock == "end_of_year" else organisation.PeriodLockDate
    label = "end of year lock date" if lock == "end_of_year" else "period lock date"
    when = f" {lock_date.isoformat()}" if lock_date else ""
    return PermanentSyncError(
        f"{what} is dated {dated}, before the {label}{when} in Xero: Xero refuses documents in a locked "
        "period. Date it after the lock in Ignition, or have the firm move the lock date in Xero "
        "(Settings > Advanced > Lock dates), then replay",
        category="period_locked",
    )


def currency_reason(what: str, currency: str, enabled: Sequence[Currency]) -> PermanentSyncError:
    """A bookkeeper's reason for a document in a currency the organisation has not enabled."""
    shown = ", ".join(c.Code for c in enabled) or "none"
    return PermanentSyncError(
        f"{what} is in {currency}, a currency not enabled in the Xero organisation (enabled: {shown}): "
        f"add {currency} in Xero (Settings > Currencies; needs a plan with multi-currency), then replay",
        category="currency_not_enabled",
    )


def locked_lock_kind(organisation: Organisation, dated: date) -> LockKind | None:
    """Which lock date ``dated`` falls on or before, if any (the end of year lock first)."""
    if organisation.EndOfYearLockDate and dated <= organisation.EndOfYearLockDate:
        return "end_of_year"
    if organisation.PeriodLockDate and dated <= organisation.PeriodLockDate:
        return "period"
    return None


def period_locked_error(
    what: str, dated: object, refused: XeroPeriodLocked, xero: OrganisationPort
) -> PermanentSyncError:
    """The reason for a document Xero refused for a lock date, with the lock date read fresh."""
    xero.invalidate_reference_data("Organisation")
    return period_locked_reason(what, dated, refused.lock, xero.organisation())


def currency_error(what: str, currency: str, xero: OrganisationPort) -> PermanentSyncError:
    """The reason for a document Xero refused for its currency, with the enabled ones read fresh."""
    xero.invalidate_reference_data("Currencies")
    return currency_reason(what, currency, xero.currencies())
