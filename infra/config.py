"""Per-client deployment configuration: ``clients/<name>.json``, validated at synth time.

One file describes one client firm's deployment: where it goes (account, region), who is told
when something needs a person (alarm e-mail), how the AWS resources are sized and watched, and
the ``runtime`` section the Lambda functions read (``shared.config.IntegrationConfig``: Xero auth
mode, Ignition webhook verification, field mapping). The file name is the client name; every
resource name derives from it, so two clients can share one AWS account.

Errors name the file, the field and the problem, e.g.
``clients/acme.json: alarm_email: value is not a valid e-mail address``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.config import XERO_STARTER_DAY_LIMIT, IntegrationConfig

CLIENTS_DIR = Path(__file__).resolve().parent.parent / "clients"

# Lambda caps the whole environment at 4 KB; the other variables (ARNs, URLs, names) take about
# 1.4 KB (the reconcile function's, with a 32-character client name up to ~1.7 KB), so the runtime
# section gets what is left with a safety margin.
MAX_INTEGRATION_CONFIG_BYTES = 2_200

# The values CloudWatch Logs accepts for a retention period.
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653
]

_CLIENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
# Deliberately simple (no email-validator dependency): one @, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)$")
_CRON = re.compile(r"^cron\((\S+\s+){5}\S+\)$")


class ConfigError(ValueError):
    """A client configuration is missing or invalid; the message says which file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    """Stage throttling of the webhook API (API Gateway answers 429 above it)."""

    throttle_rate_limit: float = Field(
        default=10.0, gt=0, le=1_000, description="Steady-state requests per second for the stage."
    )
    throttle_burst_limit: int = Field(default=20, ge=1, le=5_000, description="Burst capacity (requests).")


class SyncSettings(_Section):
    """How the sync function consumes the FIFO queue."""

    max_concurrency: int = Field(
        default=2,
        ge=2,
        le=5,
        description="Most sync functions running at once (the SQS event source cap; AWS minimum is 2). "
        "Xero allows 5 concurrent calls per organisation.",
    )
    batch_size: int = Field(default=5, ge=1, le=10, description="Messages per invocation (FIFO max 10).")
    max_receive_count: int = Field(
        default=1_000,
        ge=50,
        le=1_000,
        description="Deliveries before the queue itself moves a message to the dead-letter queue: a "
        "backstop only (1,000 is SQS's maximum). The sync parks what it gives up on earlier, with a "
        "reason, by runtime.retries; waits for Xero's limits are deliveries too, so a low value would "
        "park a burst without a reason.",
    )
    timeout_seconds: int = Field(
        default=60, ge=10, le=900, description="Sync function timeout; the queue visibility is 6x this."
    )


def _schedule_expression(value: str) -> str:
    if not (_RATE.match(value) or _CRON.match(value)):
        raise ValueError(
            f'{value!r} is not an EventBridge schedule: use "rate(1 day)", "rate(6 hours)" '
            'or a 6-field cron such as "cron(0 3 * * ? *)"'
        )
    return value


class ReconciliationSettings(_Section):
    """When the reconcile function runs, and who receives its reports."""

    schedule: str = Field(
        default="rate(1 day)",
        description='EventBridge schedule of the full reconciliation: "rate(N unit)" or 6-field "cron(...)".',
    )
    incremental_schedule: str | None = Field(
        default="rate(1 hour)",
        description="Schedule of the incremental run (Ignition records changed since the last run); "
        "null turns it off.",
    )
    xero_events_schedule: str | None = Field(
        default="rate(15 minutes)",
        description="Schedule of the run that checks records named by Xero webhooks; null turns it off.",
    )
    report_emails: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Who is e-mailed when a report needs a person; empty: alarm_email.",
    )

    @field_validator("schedule")
    @classmethod
    def _is_schedule_expression(cls, value: str) -> str:
        return _schedule_expression(value)

    @field_validator("incremental_schedule", "xero_events_schedule")
    @classmethod
    def _is_optional_schedule_expression(cls, value: str | None) -> str | None:
        return None if value is None else _schedule_expression(value)

    @field_validator("report_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        wrong = [address for address in value if not _EMAIL.match(address)]
        if wrong:
            raise ValueError(f"not valid e-mail addresses: {', '.join(repr(a) for a in wrong)}")
        if len({a.lower() for a in value}) != len(value):
            raise ValueError("an address is listed twice")
        return value


class PollingSettings(_Section):
    """When the Reporting API poller runs (deployed when ``runtime.ignition.sources`` has "poll")."""

    schedule: str = Field(
        default="rate(2 minutes)",
        description='EventBridge schedule of the poller: "rate(N unit)" or 6-field "cron(...)". Each run '
        "costs one Ignition request per resource when nothing changed (Ignition allows about 1,000 an "
        "hour per practice).",
    )

    @field_validator("schedule")
    @classmethod
    def _is_schedule_expression(cls, value: str) -> str:
        return _schedule_expression(value)


class AlarmSettings(_Section):
    """Thresholds of the alarms that e-mail a person."""

    oldest_message_age_minutes: int = Field(
        default=30, ge=5, le=1_440, description="Alarm when the oldest queued event is older than this."
    )
    xero_day_limit_remaining_below: int = Field(
        default=500, ge=1, le=5_000, description="Alarm when fewer Xero calls than this are left today."
    )
    ingest_5xx_per_period: int = Field(
        default=5, ge=1, description="API 5XX responses per 5 minutes that count as a bad period."
    )
    sync_errors_per_period: int = Field(
        default=3, ge=1, description="Sync function errors per 5 minutes that count as a bad period."
    )
    sustained_periods: int = Field(
        default=3,
        ge=1,
        le=12,
        description="Consecutive bad 5-minute periods before the 5XX/errors alarms fire.",
    )
    reconcile_discrepancies_above: int = Field(
        default=20,
        ge=0,
        description="Alarm when reconciliation finds more discrepancies than this within an hour.",
    )


class ArchiveSettings(_Section):
    """Lifecycle of the archive bucket's prefixes."""

    raw_infrequent_access_after_days: int = Field(default=30, ge=30, description="raw/ to STANDARD_IA after.")
    raw_expire_after_days: int = Field(default=400, ge=31, description="raw/ deleted after.")
    quarantine_expire_after_days: int = Field(default=1_095, ge=31, description="quarantine/ deleted after.")
    reports_expire_after_days: int = Field(default=730, ge=1, description="reports/ deleted after.")

    @model_validator(mode="after")
    def _expiry_after_transition(self) -> ArchiveSettings:
        if self.raw_expire_after_days <= self.raw_infrequent_access_after_days:
            raise ValueError("raw_expire_after_days must be greater than raw_infrequent_access_after_days")
        return self


class ClientConfig(_Section):
    """One client firm's deployment. ``name`` comes from the file name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: str | None = Field(default=None, alias="$comment", description="Free text, ignored.")
    name: str = Field(description="Client name = file name; lower-case letters, digits and dashes.")
    account: str = Field(pattern=r"^\d{12}$", description="12-digit AWS account id to deploy into.")
    region: str = Field(
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region, e.g. ap-southeast-2."
    )
    alarm_email: str = Field(description="Receives alarm e-mails (confirm the SNS subscription once).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_retention_days: LogRetentionDays = Field(default=90, description="CloudWatch Logs retention.")
    tracing: bool = Field(default=False, description="X-Ray active tracing (adds cold-start time).")
    api: ApiSettings = ApiSettings()
    sync: SyncSettings = SyncSettings()
    reconciliation: ReconciliationSettings = ReconciliationSettings()
    polling: PollingSettings = PollingSettings()
    alarms: AlarmSettings = AlarmSettings()
    archive: ArchiveSettings = ArchiveSettings()
    runtime: IntegrationConfig = Field(
        default_factory=IntegrationConfig,
        description="Behaviour of the functions (shared.config.IntegrationConfig).",
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _CLIENT_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a usable client name: 2-32 characters, lower-case letters, digits "
                "and dashes, starting with a letter (rename the file)"
            )
        return value

    @field_validator("alarm_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("value is not a valid e-mail address")
        return value

    @model_validator(mode="after")
    def _concurrency_within_xero_limit(self) -> ClientConfig:
        if self.sync.max_concurrency > self.runtime.xero.max_concurrent:
            raise ValueError(
                f"sync.max_concurrency ({self.sync.max_concurrency}) exceeds "
                f"runtime.xero.max_concurrent ({self.runtime.xero.max_concurrent})"
            )
        return self

    @model_validator(mode="after")
    def _budget_alarm_within_the_day_limit(self) -> ClientConfig:
        # Xero's X-DayLimit-Remaining counts down from the tier's limit: a threshold at or above it
        # would keep XeroDailyBudgetLow in alarm all day (1,000 a day on the 2026 Starter tier).
        limit = self.runtime.xero.day_limit
        if self.alarms.xero_day_limit_remaining_below >= limit:
            raise ValueError(
                f"alarms.xero_day_limit_remaining_below ({self.alarms.xero_day_limit_remaining_below}) "
                f"must be below runtime.xero.day_limit ({limit}"
                + (", Xero's Starter tier" if limit == XERO_STARTER_DAY_LIMIT else "")
                + "): e.g. a tenth of it"
            )
        return self

    @model_validator(mode="after")
    def _redrive_is_only_a_backstop(self) -> ClientConfig:
        retries = self.runtime.retries
        needed = retries.max_fault_attempts + retries.max_unexplained_receives
        if self.sync.max_receive_count <= needed:
            raise ValueError(
                f"sync.max_receive_count ({self.sync.max_receive_count}) must exceed "
                f"runtime.retries.max_fault_attempts + max_unexplained_receives ({needed}), or the "
                "queue parks events without a reason before the sync gives up on them with one"
            )
        return self

    @property
    def polls(self) -> bool:
        """Whether the Reporting API poller is deployed."""
        return "poll" in self.runtime.ignition.sources

    @property
    def drafts_to_ignition(self) -> bool:
        """runtime.xero_to_ignition: only then do the Ignition MCP secret, its grants to the sync
        function and its alarm exist, so a firm without the feature pays nothing for it."""
        return self.runtime.xero_to_ignition.enabled

    @property
    def receives_ignition_webhooks(self) -> bool:
        """Whether the API has the Ignition webhook route (and its ingest function a purpose)."""
        return "webhook" in self.runtime.ignition.sources

    @property
    def report_recipients(self) -> list[str]:
        return list(self.reconciliation.report_emails) or [self.alarm_email]

    @property
    def stack_name(self) -> str:
        return f"IgnitionXeroSync-{self.name}"

    def integration_config_json(self) -> str:
        """The runtime section as compact JSON for ``INTEGRATION_CONFIG``.

        Defaults are left out: the functions validate it with the same model (same asset), so
        they fill in the same defaults, and the environment stays far below its 4 KB limit.
        """
        text = self.runtime.model_dump_json(exclude_defaults=True)
        if len(text.encode("utf-8")) > MAX_INTEGRATION_CONFIG_BYTES:
            raise ConfigError(
                f"{self.name}: runtime: {len(text)} bytes as compact JSON, more than the "
                f"{MAX_INTEGRATION_CONFIG_BYTES} that fit in the Lambda environment (4 KB in total); "
                "shorten runtime.contacts.field_map or leave options at their defaults"
            )
        return text


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        # Drop pydantic's "Value error, " prefix: the message is ours and reads better without it.
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "field required"
        elif err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/deploy.md for the options)"
        lines.append(f"{source}: {_location(tuple(err['loc']))}: {message}")
    return "\n".join(lines)


def available_clients(clients_dir: Path = CLIENTS_DIR) -> list[str]:
    return sorted(path.stem for path in clients_dir.glob("*.json"))


def parse_client_config(name: str, data: Any, *, source: str) -> ClientConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a JSON object")
    if "name" in data and data["name"] != name:
        raise ConfigError(f"{source}: name: {data['name']!r} differs from the file name {name!r}; remove it")
    try:
        return ClientConfig.model_validate({**data, "name": name})
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from None


def load_client_config(name: str | None, clients_dir: Path = CLIENTS_DIR) -> ClientConfig:
    """Read and validate ``clients/<name>.json``; every problem raises ConfigError."""
    available = ", ".join(available_clients(clients_dir)) or "none"
    if not name:
        raise ConfigError(f"no client given: run with -c client=NAME (available: {available})")
    if not _CLIENT_NAME.match(name):
        raise ConfigError(
            f"client {name!r}: use lower-case letters, digits and dashes (available: {available})"
        )
    path = clients_dir / f"{name}.json"
    source = f"clients/{name}.json" if clients_dir == CLIENTS_DIR else str(path)
    if not path.is_file():
        raise ConfigError(f"{source} not found (available: {available})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    config = parse_client_config(name, data, source=source)
    try:
        config.integration_config_json()  # fail now, with the file named, if it is too big
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).split(': ', 1)[1]}") from None
    return config
