"""The report's words for a bookkeeper: each finding as one plain sentence and the one action that
fixes it, instead of the engine's category names, the sync's failure codes and config keys.

Config keys in the sync's reasons (``contacts.archived_contact``) are rewritten to where they really
live: ``runtime.contacts.archived_contact`` in ``clients/<firm>.json``.
"""

from __future__ import annotations

import re

from shared.reconcile.model import DRAFT_UNCONFIRMED, DRAFT_WAITING, Discrepancy

_REPLAY = "then ask your IT contact to replay it (python -m cli replay dlq)"

# Why the sync gave up on a record (a dead letter's failure category): what happened, what to do.
FAILURES: dict[str, tuple[str, str]] = {
    "ambiguous_match": (
        "Several Xero contacts fit this client and none can be chosen safely.",
        f"Merge or archive the duplicate contacts in Xero, {_REPLAY}.",
    ),
    "archived_contact": (
        "The client's contact is archived in Xero.",
        'Restore the contact in Xero (or set runtime.contacts.archived_contact to "reactivate" in '
        f"clients/{{firm}}.json), {_REPLAY}.",
    ),
    "currency_not_enabled": (
        "The invoice's currency is not turned on in Xero.",
        f"Add the currency in Xero (Settings > Currencies), {_REPLAY}.",
    ),
    "duplicate_number": (
        "Another Xero invoice already has this invoice number.",
        f"Renumber one of the two invoices, {_REPLAY}.",
    ),
    "invalid_amount": (
        "An amount in Ignition cannot be used (not a number, zero, or a second currency).",
        "Correct the amount in Ignition; the corrected invoice syncs by itself.",
    ),
    "invoice_locked": (
        "Xero no longer lets this invoice change (it is paid or locked).",
        f"Credit or void the invoice in Xero by hand, {_REPLAY}.",
    ),
    "invoice_not_approved": (
        "Xero takes payments only on approved invoices, and this one is not approved.",
        f"Approve the invoice in Xero, {_REPLAY}.",
    ),
    "malformed_message": (
        "The sync received a message it could not read.",
        "Nothing to fix in Xero: ask your IT contact to discard it; the next reconciliation finds the "
        "record again.",
    ),
    "draft_refused": (
        "This Xero invoice is marked for Ignition but cannot become an exact Ignition draft.",
        "Correct the invoice in Xero as the detail says and save it: the change brings it back.",
    ),
    "draft_unconfirmed": (
        "A draft may already exist in Ignition for this Xero invoice: its request was sent, the answer lost.",
        "Look in Ignition's drafts for the reference in the detail: finish the draft (it comes back to "
        "this invoice) or delete it; if there is none, ask your IT contact to replay it with --create-anew.",
    ),
    "unmapped_contact": (
        "This Xero invoice is marked for Ignition, but its contact is not linked to an Ignition client.",
        "Add the client in Ignition (it then syncs to this contact), then save the Xero invoice again.",
    ),
    "ignition_schema": (
        "Ignition's draft tool cannot take this invoice as it is (its published fields refuse a value).",
        "Ask your IT contact to compare runtime.ignition.mcp in clients/{firm}.json with the detail; "
        "then save the Xero invoice again.",
    ),
    "ignition_tool_missing": (
        "The Ignition user connected for drafts is not allowed to create invoice drafts.",
        "Ask your IT contact to reconnect with a user whose Ignition role can create invoices "
        "(python -m cli connect ignition-mcp), then save the Xero invoice again.",
    ),
    "ignition_mcp_not_configured": (
        "Xero to Ignition drafts are not set up in this deployment.",
        "Ask your IT contact to turn on runtime.xero_to_ignition in clients/{firm}.json, deploy and run "
        "python -m cli connect ignition-mcp; then save the Xero invoice again.",
    ),
    "mapping_rule": (
        "The firm's settings cannot turn this invoice into a Xero invoice (account, tax or tracking).",
        f"Ask your IT contact to correct runtime.invoices in clients/{{firm}}.json, {_REPLAY}.",
    ),
    "missing_client": (
        "Ignition no longer has this client.",
        "Check the client in Ignition; if it was deleted on purpose, ask your IT contact to discard it.",
    ),
    "missing_invoice": (
        "Ignition no longer has this invoice.",
        "Check the invoice in Ignition; if it was deleted on purpose, ask your IT contact to discard it.",
    ),
    "not_connected": (
        "Xero is not connected.",
        f"Ask your IT contact to reconnect Xero (python -m cli connect xero), {_REPLAY}.",
    ),
    "payment_reversed": (
        "Ignition reversed a payment that is already applied in Xero.",
        "If the money was refunded, remove or refund the payment in Xero by hand.",
    ),
    "period_locked": (
        "The date falls in a period Xero has locked.",
        f"Move Xero's lock date (Settings > Advanced > Lock dates) or re-date it in Ignition, {_REPLAY}.",
    ),
    "total_mismatch": (
        "Xero would total this invoice differently from Ignition, by more than rounding.",
        f"Check the invoice's discounts and tax rates in Ignition, {_REPLAY}.",
    ),
    "xero_validation": (
        "Xero refused the record (its words are below).",
        f"Correct what Xero names below, in Ignition or Xero, {_REPLAY}.",
    ),
}
_UNKNOWN_FAILURE = (
    "The sync tried several times and failed.",
    f"Ask your IT contact to look at the sync's logs for this record, {_REPLAY}.",
)

_WHAT = {"client": "client", "invoice": "invoice", "payment": "payment"}
_XERO_WHAT = {"client": "contact", "invoice": "invoice", "payment": "payment"}

# A config key as the sync's reasons write it: `<section>.<key>` of the runtime configuration.
_CONFIG_KEY = re.compile(
    r"(?<![\w.])((?:contacts|invoices|payments|xero|ignition|reconcile|retries)\.[a-z_]+)\b"
)


def real_config_path(text: str, firm: str) -> str:
    """``contacts.archived_contact`` -> ``runtime.contacts.archived_contact in clients/<firm>.json``."""
    return _CONFIG_KEY.sub(lambda m: f"runtime.{m.group(1)} in clients/{firm}.json", text)


def _finding(item: Discrepancy) -> tuple[str, str]:
    what, xero_what = _WHAT[str(item.record_type)], _XERO_WHAT[str(item.record_type)]
    requeued = item.action in ("requeued", "deferred", "dry_run")
    fix_by_sync = (
        "Nothing to do: the sync has been asked to write it again; it shows in Xero within minutes."
        if item.action == "requeued"
        else "Nothing to do: the next reconciliation asks the sync to write it."
    )
    match item.category:
        case "missing_in_xero":
            return f"This {what} is in Ignition but not in Xero.", (
                fix_by_sync if requeued else f"Ask your IT contact to re-queue the {what}."
            )
        case "not_mapped":
            return f"Xero has this {what}, but the sync has not linked it yet.", (
                fix_by_sync if requeued else f"Ask your IT contact to re-queue the {what}."
            )
        case "not_applied":
            return f"Ignition changed this {what} and the change has not reached Xero.", (
                fix_by_sync if requeued else f"Ask your IT contact to re-queue the {what}."
            )
        case "mapped_missing_in_xero":
            return (
                f"The sync wrote this {what} to Xero, but Xero no longer has it.",
                f"If it was deleted by mistake, ask your IT contact to re-queue the {what} so the sync "
                "writes it again.",
            )
        case "archived_in_xero":
            if what == "client":
                return (
                    "The client is active in Ignition but its contact is archived in Xero.",
                    "Restore the contact in Xero, or archive the client in Ignition if it has left.",
                )
            return (
                f"The {what} is live in Ignition but voided or deleted in Xero.",
                f"If that was on purpose, cancel the {what} in Ignition too; if not, re-enter it in Xero.",
            )
        case "field_drift":
            return (
                f"Xero's {xero_what} differs from Ignition's {what} (shown below).",
                "Ignition is the source: make the change in Ignition, or put Xero back to Ignition's value.",
            )
        case "duplicate_in_xero":
            return (
                "Several active Xero contacts stand for one Ignition client.",
                "Merge the duplicate contacts in Xero (Contacts, select them, Merge).",
            )
        case "orphan_in_xero":
            return (
                f"A Xero {xero_what} points to an Ignition {what} that does not exist.",
                f"If the {xero_what} should not be in Xero, void or archive it there.",
            )
        case "written_by_ignition":
            return (
                "Ignition's own Xero integration wrote this invoice too.",
                "Turn off invoice creation in Ignition's Xero settings, then void the copy you do not keep.",
            )
        case "ignition_draft" if item.detail.startswith(DRAFT_WAITING):
            return (
                "An invoice draft made in Ignition from this Xero invoice is still waiting.",
                "Open the draft in Ignition (the link below) and finish it, or delete it there.",
            )
        case "ignition_draft" if item.detail.startswith(DRAFT_UNCONFIRMED):
            return FAILURES["draft_unconfirmed"]
        case "ignition_draft":
            return (
                "This Xero draft is marked for Ignition, but Ignition has no draft of it.",
                "Fix what the detail names in Xero, then edit the invoice again (any change brings it back).",
            )
        case _:  # dead_letter
            code = item.detail.split(":", 1)[0].strip()
            return FAILURES.get(code, _UNKNOWN_FAILURE)


def plain(item: Discrepancy, firm: str) -> tuple[str, str, str]:
    """(what happened, the one action that fixes it, the technical detail) in a bookkeeper's words."""
    happened, action = _finding(item)
    detail = item.detail
    if item.category == "dead_letter":
        code, _, reason = detail.partition(":")
        detail = reason.strip() if code.strip() in FAILURES or reason else detail
    return happened, action.replace("{firm}", firm), real_config_path(detail, firm)
