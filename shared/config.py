"""Runtime configuration shared by every function.

Two sources, both validated once at cold start:

* ``IngestSettings``, ``SyncSettings``, ``XeroWebhookSettings``, ``PollSettings``,
  ``ReconcileSettings``: each function's resource names and secret ids, one environment variable
  each (set by the CDK stack; the sandbox passes them to the handler factories directly).
* ``IntegrationConfig``: the non-secret behaviour of one client's integration (Xero and Ignition
  endpoints, webhook verification scheme, field-mapping rules). It is the ``runtime`` section of
  ``clients/<name>.json`` and reaches the functions as JSON in ``INTEGRATION_CONFIG`` (or a file
  named by ``INTEGRATION_CONFIG_FILE``).

Every Ignition-specific name that is not publicly documented lives in ``IgnitionConfig`` so it can
be corrected per client without touching code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.money import MoneyError, rate_key


class ConfigError(ValueError):
    """Configuration is missing or invalid; the message names the field and the problem."""


class StrictModel(BaseModel):
    """Base for configuration: unknown keys are an error, so a typo is never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordType(StrEnum):
    CLIENT = "client"
    INVOICE = "invoice"
    PAYMENT = "payment"


class WebhookVerification(StrictModel):
    """How an Ignition webhook proves who sent it.

    ``hmac-sha256``: ``header`` carries HMAC-SHA256(raw body, secret), in ``encoding``, optionally
    behind ``prefix`` (e.g. ``sha256=``). ``shared-token``: ``header`` carries the secret itself,
    for bridges that cannot sign (e.g. Zapier).
    """

    scheme: Literal["hmac-sha256", "shared-token"] = "hmac-sha256"
    header: str = "X-Ignition-Signature"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str | None = Field(
        default=None, description="If set, the signed timestamp header used for replay protection."
    )
    max_age_seconds: int = Field(default=300, ge=30, le=86_400)
    max_body_bytes: int = Field(default=262_144, ge=1_024, le=6_000_000)
    # While the secret is rotated, how long the previous one is still accepted (from its
    # rotated_at): long enough to store the new one, let every cached copy expire and change it in
    # Ignition, so no delivery is refused in between.
    previous_secret_overlap_seconds: int = Field(default=86_400, ge=0, le=30 * 86_400)


IgnitionSource = Literal["webhook", "poll"]


class PollRules(StrictModel):
    """The Reporting API poller (``functions/poll``), which puts a change on the sync queue without
    any webhook. Its schedule is the deployment's (``polling.schedule`` in clients/NAME.json)."""

    # updated_from = the newest change already seen - overlap: a record saved with an earlier
    # timestamp than one already read (a slow transaction on Ignition's side) is still read.
    overlap_seconds: int = Field(default=300, ge=0, le=86_400)
    # Terminal states (archived clients, void invoices, cancelled payments) are hidden unless
    # state= names them, one request each: read every Nth run, so an idle run costs one request
    # per resource and a void still arrives within N runs.
    terminal_every_runs: int = Field(default=5, ge=1, le=1_000)
    # The first run (no cursor yet) reads changes from this far back; history is the backfill's.
    first_run_lookback_minutes: int = Field(default=60, ge=0, le=366 * 24 * 60)
    # A run stops (its cursor saved, the next run goes on) after this many records.
    max_records_per_run: int = Field(default=2_000, ge=1, le=100_000)


class IgnitionMcpTools(StrictModel):
    """Tool names on Ignition's MCP server (integration-facts, "MCP server")."""

    create_invoice_draft: str = "create_invoice_draft"
    list_invoices: str = "list_invoices"
    list_tax_rates: str = "list_tax_rates"
    list_services: str = "list_services"


def _same_names(*names: str) -> dict[str, str]:
    """Fields that keep their name on the other side (the default until a client's differs)."""
    return {name: name for name in names}


class IgnitionMcpConfig(StrictModel):
    """Ignition's MCP server, its only write path (shared/ignition/mcp.py). The tools' input
    schemas are not public: they are read from tools/list at run time, and every field name our
    models map to lives here so it can be corrected per client without touching code."""

    url: str = "https://mcp.ignitionapp.com/mcp"
    # Browser OAuth per user (`python -m cli connect ignition-mcp`); the endpoints are not public.
    authorize_url: str = "https://mcp.ignitionapp.com/oauth/authorize"
    token_url: str = "https://mcp.ignitionapp.com/oauth/token"
    scopes: list[str] = Field(default_factory=list)
    tools: IgnitionMcpTools = IgnitionMcpTools()
    # InvoiceDraftRequest field -> create_invoice_draft argument; a field mapped to "" is not sent.
    draft_fields: dict[str, str] = Field(
        default_factory=lambda: {
            "client_slug": "client_id",
            "lines": "line_items",
            **_same_names("currency", "reference", "issue_date", "due_date"),
        }
    )
    # DraftLine field -> the line item's property.
    line_fields: dict[str, str] = Field(
        default_factory=lambda: _same_names(
            "description", "quantity", "unit_price", "tax_rate_id", "service_id"
        )
    )
    # Our name -> the property in a tool's result (a created draft, an invoice, a rate, a service).
    result_fields: dict[str, str] = Field(
        default_factory=lambda: {
            "draft_id": "id",
            "client_slug": "client_id",
            **_same_names("id", "app_path", "total", "reference", "state", "name", "rate", "code"),
        }
    )
    # Where a listing's records and its next page are in a tool's result.
    list_keys: dict[str, str] = Field(
        default_factory=lambda: {"invoices": "invoices", "tax_rates": "tax_rates", "services": "services"}
    )
    next_cursor_field: str = "next_cursor"
    cursor_argument: str = "cursor"
    # list_invoices' text filter, sent with the reference when the tool's schema has it (results
    # are still matched exactly here: a search may be fuzzy).
    search_argument: str = "search"
    max_pages: int = Field(default=20, ge=1, le=1_000)
    # Ignition's limits (integration-facts): 60/min and 600/h per user, 1,000/h per OAuth client;
    # one user and one client per deployment, so the tighter hourly one.
    requests_per_minute: int = Field(default=60, ge=1, le=10_000)
    requests_per_hour: int = Field(default=600, ge=1, le=100_000)
    budget_max_inline_wait_seconds: float = Field(default=10.0, ge=0, le=300)
    # One tool call, and one whole batch (a session: initialize, tools/list, the calls).
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    batch_timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    # Tax rates and services are cached per process for this long.
    catalogue_cache_seconds: int = Field(default=900, ge=0, le=86_400)


class IgnitionConfig(StrictModel):
    """Everything Ignition-specific: endpoints, webhook format, event names, money unit."""

    # Where changes come from: Ignition's webhook (or a Zapier bridge) through the API, the
    # Reporting API poller, or both (a change seen by both is applied once; see shared/poll.py).
    sources: list[IgnitionSource] = Field(
        default_factory=lambda: list[IgnitionSource](["webhook", "poll"]), min_length=1
    )
    poll: PollRules = PollRules()

    api_url: str = "https://developers.ignitionapp.com/external/api/v1"
    token_url: str = "https://developers.ignitionapp.com/oauth2/token"
    webhook: WebhookVerification = WebhookVerification()
    # Event type prefix -> record type. "client.created" matches "client".
    event_prefixes: dict[str, RecordType] = {
        "client": RecordType.CLIENT,
        "invoice": RecordType.INVOICE,
        "payment": RecordType.PAYMENT,
    }
    # Whether money amounts arrive in major units ("1234.50") or integer cents (123450).
    amount_unit: Literal["major", "cents"] = "major"
    # Client slugs start with this; a Xero ContactNumber with this prefix belongs to an Ignition client.
    client_slug_prefix: str = "cli_"
    # Reporting API listings. Left to Ignition, each of these hides data ("Defaults that hide
    # data" in integration-facts), so the client always states them.
    # Page size: 250 is known to work; larger values may be refused.
    page_limit: int = Field(default=250, ge=1, le=250)
    # The incremental filter's name: "updated_from" in one integrator's code, "updated_since" in
    # another's.
    updated_param: str = Field(default="updated_from", min_length=1)
    # Listings filtered on a record date (invoices default to the current month, collections to
    # the current week): every read sends date_from=window_start, date_to=today + window_ahead_days.
    dated_resources: list[str] = Field(default_factory=lambda: ["invoices", "collections"])
    window_start: dt.date = dt.date(2013, 1, 1)
    window_ahead_days: int = Field(default=366, ge=1, le=3_660)
    # States left out unless state= names them, per resource: each is read in its own pass.
    # Archived clients and cancelled payments are observed; voided invoices are a guess that
    # costs one request per listing.
    terminal_states: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "clients": ["archived"],
            "invoices": ["void", "voided", "cancelled"],
            "payments": ["cancelled"],
        }
    )
    # A record's created/updated time later than its receipt plus this is capped there, so a
    # wrong clock cannot date a record in the future and block its later updates.
    max_clock_skew_seconds: int = Field(default=300, ge=0, le=3_600)
    # One request budget per practice, shared by the poller, the sync's newest-state reads, the
    # reconciliation and the backfill (shared/ignition/budget.py): Ignition allows about 1,000
    # requests an hour per practice, so stay a little under it.
    requests_per_hour: int = Field(default=900, ge=1, le=10_000_000)
    # The poller only spends while more than this share of the hour is left; the rest is kept for
    # the sync and the reconciliation, which cannot catch up later as cheaply.
    poll_reserve_share: float = Field(default=0.25, ge=0, lt=1)
    # Longest the budget waits in-process for its hour to end; longer waits go back to the caller.
    budget_max_inline_wait_seconds: float = Field(default=20.0, ge=0, le=300)
    # `python -m cli status` warns when neither a webhook nor a poll run has been seen for this long
    # (a bridge switched off, a poller failing). A quiet practice with webhooks only may need more.
    silence_warning_minutes: int = Field(default=24 * 60, ge=5, le=30 * 24 * 60)
    # Ignition's MCP server (the Xero -> Ignition direction, runtime.xero_to_ignition).
    mcp: IgnitionMcpConfig = IgnitionMcpConfig()

    @model_validator(mode="after")
    def _budget_only_raised_for_emulators(self) -> IgnitionConfig:
        # Ignition allows about 1,000 an hour; more only makes sense against the sandbox.
        if self.api_url.startswith("https://developers.ignitionapp.com") and self.requests_per_hour > 1_000:
            raise ValueError("requests_per_hour must be <= 1000 against developers.ignitionapp.com")
        return self


# Xero's per-organisation calls a day by app tier: 5,000, or 1,000 on the Starter tier of
# 2 March 2026 (developer.xero.com/faq/pricing-and-policy-updates); X-DayLimit-Remaining counts
# down from it.
XERO_DAY_LIMIT = 5_000
XERO_STARTER_DAY_LIMIT = 1_000
# Our day budget when calls_per_day is left out: this share of day_limit (4,800 of 5,000; 960 of
# 1,000), a margin for the operator CLI and anything else on the same connection.
DAY_BUDGET_SHARE = 0.96


HistoryNotes = bool | Literal["decisions"]


class XeroConfig(StrictModel):
    auth_mode: Literal["oauth", "client_credentials"] = "oauth"
    api_url: str = "https://api.xero.com"
    identity_url: str = "https://identity.xero.com"
    login_url: str = "https://login.xero.com"
    # Stay a little under Xero's per-organisation limits (60/min, day_limit a day, 5 concurrent).
    calls_per_minute: int = Field(default=55, ge=1, le=100_000)
    calls_per_day: int = Field(default=4_800, ge=1, le=10_000_000)
    # Xero's own day limit for this app's tier: 1,000 on Starter (2026), else 5,000.
    day_limit: int = Field(default=XERO_DAY_LIMIT, ge=1, le=10_000_000)
    max_concurrent: int = Field(default=5, ge=1, le=5)
    timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    max_attempts: int = Field(default=5, ge=1, le=10)
    # Longest wait the client will sit out in-process (Retry-After, budget); longer waits go back
    # to the queue so the Lambda is not billed for sleeping.
    max_inline_wait_seconds: float = Field(default=20.0, ge=0, le=300)
    # Notes in a written invoice's or payment's Xero history, one call each: "decisions" only
    # where the sync decided something the record itself does not show (a rounding line, terms
    # applied, a payment capped or adopted); true on every write; false never.
    history_notes: HistoryNotes = "decisions"

    @model_validator(mode="before")
    @classmethod
    def _day_budget_follows_the_tier(cls, data: object) -> object:
        """A Starter-tier firm sets ``day_limit: 1000`` alone and gets a budget under it."""
        if isinstance(data, Mapping) and "calls_per_day" not in data:
            day_limit = data.get("day_limit")
            if isinstance(day_limit, int) and not isinstance(day_limit, bool):
                return {**data, "calls_per_day": max(int(day_limit * DAY_BUDGET_SHARE), 1)}
        return data

    @model_validator(mode="after")
    def _limits_only_raised_for_emulators(self) -> XeroConfig:
        # Xero enforces 60/min and its tier's day limit; higher budgets only make sense against
        # the sandbox.
        if not self.api_url.startswith("https://api.xero.com"):
            return self
        if self.calls_per_minute > 60:
            raise ValueError("calls_per_minute must be <= 60 against api.xero.com")
        if not XERO_STARTER_DAY_LIMIT <= self.day_limit <= XERO_DAY_LIMIT:
            raise ValueError(
                f"day_limit {self.day_limit} is outside Xero's daily limits: from {XERO_STARTER_DAY_LIMIT:,} "
                f"calls (the Starter tier, 2026) to {XERO_DAY_LIMIT:,}"
            )
        if self.calls_per_day > self.day_limit:
            tier = " (Xero's Starter tier)" if self.day_limit == XERO_STARTER_DAY_LIMIT else ""
            raise ValueError(
                f"calls_per_day {self.calls_per_day} is above day_limit {self.day_limit}{tier}: "
                "Xero refuses the rest of the day; set calls_per_day a little below day_limit, or "
                f"leave it out ({DAY_BUDGET_SHARE:.0%} of day_limit)"
            )
        return self


XeroContactTextField = Literal[
    "AccountNumber", "TaxNumber", "CompanyNumber", "Website", "BankAccountDetails", "DefaultCurrency"
]


class ContactRules(StrictModel):
    """How an Ignition client becomes a Xero contact."""

    # Ignition names people "Last, First"; split into FirstName/LastName for people.
    split_person_names: bool = True
    match_by_email: bool = True
    match_by_name: bool = True
    # When a different Ignition client already owns the exact name in Xero (names must be unique
    # among active contacts), create ours as "<name> (<suffix>)" instead of merging the two.
    duplicate_name_suffix: Literal["slug", "external_client_id"] = "slug"
    # A mapped contact that somebody archived in Xero: reactivate it, or stop and ask a person.
    archived_contact: Literal["reactivate", "fail"] = "reactivate"
    # Xero contact field <- dotted path in the Ignition client record, e.g. "external_client_id".
    field_map: dict[XeroContactTextField, str] = Field(default_factory=dict)
    # Ignition client states that are not pushed to Xero (e.g. ["lead"] to keep prospects out).
    skip_client_states: list[Literal["lead", "active", "inactive", "archived"]] = Field(default_factory=list)

    @field_validator("field_map")
    @classmethod
    def _paths_are_dotted_names(cls, value: dict[str, str]) -> dict[str, str]:
        for target, path in value.items():
            if not path or any(not part.isidentifier() for part in path.split(".")):
                raise ValueError(f"field_map[{target}]: {path!r} is not a dotted field path")
        return value


class TrackingRule(StrictModel):
    """A fixed Xero tracking option put on every line (e.g. Region: Sydney)."""

    category: str = Field(min_length=1, max_length=100)
    option: str = Field(min_length=1, max_length=100)


class OwnerRule(StrictModel):
    """The client's owner in Ignition (manager or partner, matched by e-mail) -> a Xero tracking
    option on invoice lines."""

    source: Literal["manager", "partner"] = "manager"
    # lower-cased e-mail -> the option name in Xero
    by_email: dict[str, str] = Field(default_factory=dict)
    tracking_category: str | None = Field(default=None, description="Tracking category for the option")

    @field_validator("by_email")
    @classmethod
    def _lower_emails(cls, value: dict[str, str]) -> dict[str, str]:
        return {email.strip().lower(): name for email, name in value.items()}


class InvoiceRules(StrictModel):
    """How an Ignition invoice becomes a Xero sales (ACCREC) invoice."""

    # Where Ignition's reference_number goes; the other field gets the Ignition slug.
    number_field: Literal["InvoiceNumber", "Reference"] = "InvoiceNumber"
    status: Literal["DRAFT", "AUTHORISED"] = "AUTHORISED"
    default_account_code: str = Field(default="200", min_length=1, max_length=10)
    # Ignition service slug (or name) -> Xero account code.
    account_codes_by_service: dict[str, str] = Field(default_factory=dict)
    # Ignition tax rate percentage ("10", "0") -> Xero tax type, for rates to pin. Rates not listed
    # come from the organisation's own GET /TaxRates by EffectiveRate (AU OUTPUT 10%, NZ OUTPUT2
    # 15%, UK OUTPUT2 20%...), so an organisation of any country needs no tax configuration.
    tax_types_by_rate: dict[str, str] = Field(default_factory=dict)
    # Tax type for a line without a tax rate and for the rounding line; None: the organisation's
    # "not reported" rate (AU BASEXCLUDED, NZ/UK NONE).
    untaxed_tax_type: str | None = None
    payment_terms_days: int = Field(default=14, ge=0, le=365)
    branding_theme_id: str | None = None
    tracking: list[TrackingRule] = Field(default_factory=list, max_length=2)
    owner: OwnerRule | None = None
    # When Xero's per-line rounding would make its total differ from Ignition's, add a line of
    # the difference to this account (Xero's own advice); None: write as is and report the gap.
    rounding_account_code: str | None = "860"
    # Ignition invoice states that are voided in Xero (only when Xero allows it: no payments).
    void_states: list[str] = Field(default_factory=lambda: ["void", "voided", "cancelled"])
    skip_states: list[str] = Field(default_factory=lambda: ["draft"])

    @field_validator("tax_types_by_rate")
    @classmethod
    def _normalise_rates(cls, value: dict[str, str]) -> dict[str, str]:
        try:
            return {rate_key(rate): tax_type for rate, tax_type in value.items()}
        except MoneyError as exc:
            raise ValueError(f"tax_types_by_rate: {exc}") from exc


class PaymentRules(StrictModel):
    """How an Ignition payment is applied in Xero."""

    # The account the money is received into, e.g. an "Ignition clearing" bank account: by code,
    # or by AccountID for a bank account without a code (many have none).
    account_code: str = Field(default="090", min_length=1, max_length=10)
    account_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
        description="Xero AccountID of the bank account; when set it wins over account_code",
    )
    # Ignition payment states that mean money was received; others are not applied.
    applied_states: list[str] = Field(default_factory=lambda: ["succeeded", "paid", "completed"])
    reference_prefix: str = "Ignition "


# Categories the reconciliation may re-queue; the rest only ever go in the report (merging
# duplicates, deleting orphans and replaying the DLQ are a person's decisions).
HealableCategory = Literal[
    "missing_in_xero",
    "not_mapped",
    "not_applied",
    "mapped_missing_in_xero",
    "archived_in_xero",
    "field_drift",
]
HEALABLE_CATEGORIES: frozenset[str] = frozenset(get_args(HealableCategory))
# What the reconciliation finds comparing Ignition and Xero record by record: each is a metric the
# discrepancy alarm sums (infra/monitoring.py), at most 10 (CloudWatch's limit for one alarm).
DiscrepancyCategory = Literal[
    HealableCategory,
    "duplicate_in_xero",
    "orphan_in_xero",
    "written_by_ignition",
    "ignition_draft",
]
# Dead letters have their own alarm.
ReconcileCategory = Literal[DiscrepancyCategory, "dead_letter"]


class ReconcileRules(StrictModel):
    """The scheduled reconciliation: what it reads, what it may repair, whom it tells."""

    # What the EventBridge schedule runs: "full" compares everything, "incremental" only re-queues
    # Ignition records changed since the last run that the sync has not applied.
    default_mode: Literal["full", "incremental"] = "full"
    # updated_from = last run - overlap, so a record written while the last run read is not missed.
    overlap_minutes: int = Field(default=10, ge=0, le=24 * 60)
    # Records changed this recently may still have a webhook in flight: not judged this run.
    in_flight_grace_seconds: int = Field(default=300, ge=0, le=86_400)
    # Per category: "requeue" (the sync re-applies the Ignition record) or "report" only. Drift and
    # archived/deleted records are reported by default: a person may have changed Xero on purpose.
    heal: dict[ReconcileCategory, Literal["requeue", "report"]] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "missing_in_xero": "requeue",
            "not_mapped": "requeue",
            "not_applied": "requeue",
            "mapped_missing_in_xero": "report",
            "archived_in_xero": "report",
            "field_drift": "report",
        }
    )
    # SNS: "when_needed" only when something needs a person; "always"; "never".
    notify: Literal["when_needed", "always", "never"] = "when_needed"
    xero_page_size: int = Field(default=1000, ge=1, le=1000)
    # Ignition refuses pages over 250 (see IgnitionConfig.page_limit).
    ignition_page_limit: int = Field(default=250, ge=1, le=250)
    # A run stops cleanly (checkpoint, resumed by the next run) before spending more than this.
    max_xero_calls_per_run: int = Field(default=1_000, ge=10, le=1_000_000)
    max_ignition_requests_per_run: int = Field(default=600, ge=10, le=1_000_000)
    # Seconds kept back from the Lambda timeout for the checkpoint and the report.
    reserve_seconds: int = Field(default=90, ge=5, le=600)
    max_requeue_per_run: int = Field(default=2_000, ge=0, le=100_000)
    max_dead_letters_read: int = Field(default=1_000, ge=0, le=100_000)
    # xero_events mode: Ignition lookups per run (Ignition allows ~1,000 requests an hour).
    xero_events_per_run: int = Field(default=50, ge=1, le=1_000)
    # Ignition slug prefixes that mark our keys on Xero invoices and payments (clients use
    # ignition.client_slug_prefix).
    invoice_slug_prefix: str = "inv_"
    payment_slug_prefix: str = "pypay_"
    html_max_rows: int = Field(default=2_000, ge=10, le=100_000)
    # The report's times are shown in the firm's zone (an IANA name, checked against zoneinfo).
    time_zone: str = "Australia/Sydney"
    # How long the e-mailed link to the HTML report opens it. SigV4 presigned URLs last at most
    # 7 days, and one signed with a Lambda role's temporary credentials dies with them (hours):
    # docs/operator.md gives the real lifetime; `cli report --latest` signs a fresh one.
    report_link_hours: int = Field(default=7 * 24, ge=1, le=7 * 24)
    # Links in the report; {id} is the Xero id or Ignition slug.
    xero_links: dict[str, str] = Field(
        default_factory=lambda: {
            "client": "https://go.xero.com/Contacts/View/{id}",
            "invoice": "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={id}",
            "payment": "https://go.xero.com/Bank/ViewTransaction.aspx?paymentID={id}",
        }
    )
    ignition_links: dict[str, str] = Field(
        default_factory=lambda: {
            "client": "https://go.ignitionapp.com/clients/{id}",
            "invoice": "https://go.ignitionapp.com/invoices/{id}",
            "payment": "https://go.ignitionapp.com/payments/{id}",
        }
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time_zone: {value!r} is not an IANA time zone (e.g. Australia/Sydney)"
            ) from None
        return value

    @field_validator("heal")
    @classmethod
    def _only_healable(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(k for k, v in value.items() if v == "requeue" and k not in HEALABLE_CATEGORIES)
        if wrong:
            raise ValueError(f"heal: {', '.join(wrong)} can only be reported")
        return value

    def action_for(self, category: str) -> Literal["requeue", "report"]:
        return self.heal.get(category, "report")  # type: ignore[call-overload,no-any-return]


class RetryRules(StrictModel):
    """How long the sync keeps trying an event before it parks it in the DLQ with the reason.

    Only faults count: waiting for a rate limit, the call budget or a lock never does, so a burst
    queued behind Xero's limits cannot exhaust its attempts."""

    # Failed tries (5xx that outlasted in-process retries, timeouts, unexpected errors).
    max_fault_attempts: int = Field(default=5, ge=1, le=100)
    # Deliveries that ended with nothing recorded (the function timed out or crashed mid-batch).
    max_unexplained_receives: int = Field(default=10, ge=2, le=200)
    # The longest a message stays invisible between tries (SQS caps it at 12 hours).
    max_delay_seconds: int = Field(default=12 * 3600, ge=1, le=12 * 3600)


class BatchingRules(StrictModel):
    """The sync's gathered batches (``shared/collector.py``, ``shared/gather.py``): on an
    invocation the function also receives more ready messages from its queue, up to
    ``max_messages``, and sends their Xero calls together, 50 elements a call (docs/batching.md).
    ``enabled: false`` handles the event source's batch one record at a time."""

    enabled: bool = True
    max_messages: int = Field(default=50, ge=1, le=100)
    # ReceiveMessage's wait when collecting: 0 is a short poll (no latency added when idle).
    receive_wait_seconds: int = Field(default=0, ge=0, le=20)
    # The longest one record's Xero call waits for the other groups' before it goes anyway: a
    # safety net only (a call goes as soon as every thread waits), so it costs no latency alone.
    gather_wait_seconds: float = Field(default=5.0, gt=0, le=30)


class XeroToIgnitionRules(BaseModel):
    """Xero -> Ignition (opt-in per firm, docs/xero-to-ignition.md): a DRAFT sales invoice a
    bookkeeper marks in Xero becomes an Ignition invoice draft through Ignition's MCP server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # A DRAFT whose Reference starts with this (trimmed, any case) is marked; None: not used.
    reference_prefix: str | None = Field(default="IGN:", min_length=1, max_length=50)
    # A line carrying this tracking option marks the invoice too; both or neither.
    tracking_category: str | None = Field(default=None, min_length=1, max_length=100)
    tracking_option: str | None = Field(default=None, min_length=1, max_length=100)
    # True: the reference prefix AND the tracking option; False: either one.
    require_both: bool = False
    # The reconciliation reports drafts nobody has finished in Ignition for longer than this.
    waiting_draft_days: int = Field(default=3, ge=1, le=365)
    # Xero account code -> Ignition service (its id, code or name); lines of other accounts get none.
    services_by_account_code: dict[str, str] = Field(default_factory=dict)
    # Also match a line's description to an Ignition service of that name (ignoring case).
    match_services_by_name: bool = False
    # A note in the Xero invoice's history with the draft's Ignition link (one Xero call).
    history_note: bool = True
    # Where the tool's app_path (the draft's link) is opened.
    app_url: str = Field(default="https://app.ignitionapp.com", pattern=r"^https?://")

    @model_validator(mode="after")
    def _a_usable_mark(self) -> XeroToIgnitionRules:
        if (self.tracking_category is None) != (self.tracking_option is None):
            raise ValueError("tracking_category and tracking_option go together")
        if self.reference_prefix is None and self.tracking_option is None:
            raise ValueError(
                "set reference_prefix or tracking_category/tracking_option: nothing marks an invoice"
            )
        if self.require_both and (self.reference_prefix is None or self.tracking_option is None):
            raise ValueError("require_both needs reference_prefix and tracking_category/option")
        return self


class IntegrationConfig(StrictModel):
    xero: XeroConfig = XeroConfig()
    ignition: IgnitionConfig = IgnitionConfig()
    contacts: ContactRules = ContactRules()
    invoices: InvoiceRules = InvoiceRules()
    payments: PaymentRules = PaymentRules()
    reconcile: ReconcileRules = ReconcileRules()
    retries: RetryRules = RetryRules()
    batching: BatchingRules = BatchingRules()
    xero_to_ignition: XeroToIgnitionRules = XeroToIgnitionRules()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IntegrationConfig:
        env = os.environ if environ is None else environ
        raw = env.get("INTEGRATION_CONFIG")
        path = env.get("INTEGRATION_CONFIG_FILE")
        if raw is None and path:
            raw = Path(path).read_text(encoding="utf-8")
        if not raw:
            return cls()
        try:
            return cls.model_validate(json.loads(raw))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ConfigError(f"INTEGRATION_CONFIG is invalid: {exc}") from exc


class EnvironmentSettings(BaseModel):
    """Resource names and secret ids from the environment, one variable each (set per function by
    the CDK stack, ``infra/functions.py``). Each function's settings hold only what it reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(env))
        except ValidationError as exc:
            missing = [str(err["loc"][0]) for err in exc.errors() if err["type"] == "missing"]
            raise ConfigError(
                f"missing environment variables: {', '.join(missing)}" if missing else str(exc)
            ) from exc


# The pieces the functions' settings are made of, one per resource.
class StateTable(EnvironmentSettings):
    state_table: str = Field(alias="STATE_TABLE_NAME")


class ArchiveBucket(EnvironmentSettings):
    archive_bucket: str = Field(alias="ARCHIVE_BUCKET_NAME")


class SyncQueue(EnvironmentSettings):
    sync_queue_url: str = Field(alias="SYNC_QUEUE_URL")


class DeadLetterQueue(EnvironmentSettings):
    dlq_url: str = Field(alias="DLQ_URL")


class XeroAccess(StateTable):
    """The Xero app's client credentials and the organisation's token set (refreshed under a lock
    in the state table)."""

    xero_client_secret_id: str = Field(alias="XERO_CLIENT_SECRET_ID")
    xero_token_secret_id: str = Field(alias="XERO_TOKEN_SECRET_ID")


class IgnitionAccess(StateTable):
    """Ignition's client credentials and rotating token set (one secret; refreshed under a lock in
    the state table, whose request budget every Ignition reader shares)."""

    ignition_api_secret_id: str = Field(alias="IGNITION_API_SECRET_ID")


class IgnitionMcpAccess(StateTable):
    """The Ignition MCP user's client credentials and rotating token set (shared/ignition/mcp.py);
    set only where runtime.xero_to_ignition is enabled, so None means the feature is off."""

    ignition_mcp_secret_id: str | None = Field(default=None, alias="IGNITION_MCP_SECRET_ID")


class IngestSettings(ArchiveBucket, SyncQueue):
    ignition_webhook_secret_id: str = Field(alias="IGNITION_WEBHOOK_SECRET_ID")


class SyncSettings(XeroAccess, IgnitionAccess, IgnitionMcpAccess, SyncQueue, DeadLetterQueue):
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")


class XeroWebhookSettings(StateTable, ArchiveBucket, SyncQueue):
    xero_webhook_secret_id: str = Field(alias="XERO_WEBHOOK_SECRET_ID")


class PollSettings(IgnitionAccess, SyncQueue):
    """Reads Ignition's Reporting API (its cursor and run lease in the state table), queues changes."""


class ReconcileSettings(XeroAccess, IgnitionAccess, ArchiveBucket, SyncQueue, DeadLetterQueue):
    # The report's name and the notification's subject carry the client's name.
    client_name: str = Field(alias="CLIENT_NAME")
    # The SNS topic told about a run that needs a person; None: no notification.
    alert_topic_arn: str | None = Field(default=None, alias="ALERT_TOPIC_ARN")


class DeploymentSettings(ReconcileSettings):
    """Every resource of one deployment: what the operator CLI (``cli/target.py``) acts on. The
    Xero webhook's secret is optional here, so a deployment from before that function still loads."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE_NAME")
    ignition_webhook_secret_id: str = Field(alias="IGNITION_WEBHOOK_SECRET_ID")

    xero_webhook_secret_id: str | None = Field(default=None, alias="XERO_WEBHOOK_SECRET_ID")
    # Only where runtime.xero_to_ignition is enabled (connect ignition-mcp writes it).
    ignition_mcp_secret_id: str | None = Field(default=None, alias="IGNITION_MCP_SECRET_ID")
