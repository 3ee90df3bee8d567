"""Names shared by the functions (which emit metrics with Powertools EMF) and the CDK stack (which
draws the dashboard and sets alarms on them). One list, so the two can never drift apart.

Namespace: ``IgnitionXeroSync/<client name>``; every metric carries the one dimension
``service`` = the function's POWERTOOLS_SERVICE_NAME (``ingest``, ``sync``, ``reconcile``).
"""

from __future__ import annotations

from enum import StrEnum

NAMESPACE_PREFIX = "IgnitionXeroSync"


def metrics_namespace(client_name: str) -> str:
    return f"{NAMESPACE_PREFIX}/{client_name}"


class Service(StrEnum):
    INGEST = "ingest"
    SYNC = "sync"
    RECONCILE = "reconcile"
    XERO_WEBHOOK = "xero-webhook"
    POLL = "poll"


class Metric(StrEnum):
    # ingest
    WEBHOOKS_RECEIVED = "WebhooksReceived"
    WEBHOOKS_ACCEPTED = "WebhooksAccepted"
    WEBHOOKS_REJECTED_SIGNATURE = "WebhooksRejectedSignature"
    WEBHOOKS_REJECTED_MALFORMED = "WebhooksRejectedMalformed"
    WEBHOOKS_REJECTED_TOO_LARGE = "WebhooksRejectedTooLarge"
    # sync
    EVENTS_SYNCED = "EventsSynced"
    EVENTS_SKIPPED_STALE = "EventsSkippedStale"
    EVENTS_FAILED_TRANSIENT = "EventsFailedTransient"
    EVENTS_FAILED_PERMANENT = "EventsFailedPermanent"
    # Back on the queue waiting for a limit (rate limit, call budget, lock): not a failure.
    EVENTS_DEFERRED = "EventsDeferred"
    CONTACTS_CREATED = "ContactsCreated"
    CONTACTS_UPDATED = "ContactsUpdated"
    INVOICES_CREATED = "InvoicesCreated"
    INVOICES_UPDATED = "InvoicesUpdated"
    INVOICES_VOIDED = "InvoicesVoided"
    # Ignition invoice drafts made from marked Xero invoices (Xero -> Ignition), not Xero invoices.
    IGNITION_DRAFTS_CREATED = "IgnitionDraftsCreated"
    PAYMENTS_APPLIED = "PaymentsApplied"
    # Xero's total differs from Ignition's after a write, or part of a payment could not be applied.
    AMOUNT_MISMATCHES = "AmountMismatches"
    XERO_CALLS = "XeroCalls"
    XERO_RATE_LIMITED = "XeroRateLimited"
    XERO_DAY_LIMIT_REMAINING = "XeroDayLimitRemaining"
    XERO_MIN_LIMIT_REMAINING = "XeroMinLimitRemaining"
    TOKEN_REFRESHES = "TokenRefreshes"
    TOKEN_REFRESH_FAILURES = "TokenRefreshFailures"
    XERO_AUTHORISATION_LOST = "XeroAuthorisationLost"
    # The Ignition MCP user's connection is gone (Xero -> Ignition drafts; docs/runbook.md).
    IGNITION_MCP_AUTHORISATION_LOST = "IgnitionMcpAuthorisationLost"
    # reconcile (ReconcileDiscrepancies also carries the dimension ``category``)
    RECONCILE_RUNS = "ReconcileRuns"
    # Dead letters without a reason (they ran out of deliveries) put back on the sync queue.
    DEAD_LETTERS_REQUEUED = "DeadLettersRequeued"
    RECONCILE_FAILURES = "ReconcileFailures"
    RECONCILE_DISCREPANCIES = "ReconcileDiscrepancies"
    RECONCILE_HEALED = "ReconcileHealed"
    RECONCILE_DURATION_SECONDS = "ReconcileDurationSeconds"
    # poll (the Reporting API poller)
    POLL_RUNS = "PollRuns"
    POLL_FAILURES = "PollFailures"
    POLL_EVENTS_QUEUED = "PollEventsQueued"
    POLL_IGNITION_REQUESTS = "PollIgnitionRequests"
    # Runs that gave way to the rest: the shared Ignition request budget was down to the reserve.
    POLL_SKIPPED_FOR_BUDGET = "PollSkippedForBudget"
    # xero-webhook
    XERO_WEBHOOKS_RECEIVED = "XeroWebhooksReceived"
    # Not signed with our key (401): a forgery, or the key in the secret is not the webhook's.
    XERO_WEBHOOKS_REJECTED = "XeroWebhooksRejected"
    # Authentic but not understood: kept under quarantine/xero/ and answered 200.
    XERO_WEBHOOKS_QUARANTINED = "XeroWebhooksQuarantined"
    XERO_EVENTS_RECORDED = "XeroEventsRecorded"
    # Another organisation's event, or a category reconciliation does not use.
    XERO_EVENTS_IGNORED = "XeroEventsIgnored"
    # Older than what the state table already holds for the record (out-of-order delivery).
    XERO_EVENTS_STALE = "XeroEventsStale"
