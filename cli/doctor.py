"""``doctor``: the connected Xero organisation and Ignition's Reporting API checked against the
configuration before the first sync. Read-only: five Xero reads (connections, Organisation,
Accounts, TaxRates, Currencies) and one sample of Ignition's invoices.

Each check says ok, warn (the sync runs, some records will need a person) or fail (the sync would
fail records or not run); checks that depend on a read that failed are "skipped". What a check
compares follows the rules the sync itself meets (integration-facts.md, "Behaviour a first real
organisation shows"): a document dated on or before a lock date is refused, a currency must be
enabled, a payment goes into a bank account (or one with payments enabled), and tax types come
from the organisation's own ``GET /TaxRates`` with ``invoices.tax_types_by_rate`` as an override.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from cli.backfill_cmd import CallCounter
from cli.oauth_flow import XERO_SCOPES
from cli.target import Target
from shared.config import IntegrationConfig, InvoiceRules
from shared.ignition.budget import IgnitionRequestBudget
from shared.ignition.reporting import (
    IgnitionApiError,
    IgnitionAuthError,
    IgnitionRateLimited,
    IgnitionReportingClient,
)
from shared.models.ignition import IgnitionInvoice
from shared.models.xero import Account, Currency, Organisation, TaxRate
from shared.money import MoneyError, rate_key
from shared.oauth import OAuthError, SecretTokenStore, TokenSet
from shared.reconcile.compare import invoice_key
from shared.wiring import ignition_token_provider, xero_token_provider
from shared.xero.budget import DynamoCallBudget
from shared.xero.client import XeroClient
from shared.xero.errors import XeroAuthError, XeroError
from shared.xero.rules import NO_TAX_TYPES, OrganisationTaxTypes, UnknownTaxRate

Status = Literal["ok", "warn", "fail", "skipped"]
DEFAULT_INVOICE_SAMPLE = 250  # one page of the Reporting API at the configured maximum
# A granted scope that covers a needed one: the broad scopes of apps created before March 2026.
SCOPE_ALTERNATIVES = {
    "accounting.invoices": ("accounting.transactions",),
    "accounting.payments": ("accounting.transactions",),
    "accounting.settings.read": ("accounting.settings",),
}
CONNECT_XERO = "run `python -m cli connect xero` (a Xero admin of the organisation consents)"
CONNECT_IGNITION = "run `python -m cli connect ignition` (a practice admin consents)"
_AWS_ERRORS = (ClientError, BotoCoreError)


@dataclass
class Check:
    name: str
    title: str
    status: Status
    detail: str
    action: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Xero:
    """What was read from Xero; None where the read failed (its check says why)."""

    tokens: TokenSet | None = None
    organisation: Organisation | None = None
    accounts: list[Account] | None = None
    tax_rates: list[TaxRate] | None = None
    currencies: list[Currency] | None = None
    # To read more later (the invoices that carry Ignition's numbers).
    provider: Any = None
    tenant_id: str | None = None


@dataclass
class _Ignition:
    invoices: list[IgnitionInvoice] | None = None
    complete: bool = False  # every invoice was read, not a sample


def _skipped(name: str, title: str, because: str) -> Check:
    return Check(name, title, "skipped", f"not checked: {because}")


def _xero_failure(exc: Exception) -> str:
    if isinstance(exc, XeroAuthError):
        return f"Xero refused the call ({exc.status}): {exc}"
    return f"{type(exc).__name__}: {exc}"


# --- Xero ---------------------------------------------------------------------------------------


def _read_xero(target: Target, counter: CallCounter, checks: list[Check]) -> _Xero:
    settings, config = target.settings, target.config
    read = _Xero()
    title = "Xero connection"
    try:
        read.tokens = SecretTokenStore(settings.xero_token_secret_id, provider="xero").load()
        provider, tenant_id = xero_token_provider(settings, config, None)
    except (OAuthError, *_AWS_ERRORS) as exc:
        checks.append(
            Check("xero_connection", title, "fail", f"cannot read the Xero secrets: {exc}", CONNECT_XERO)
        )
        return read
    if read.tokens is None or tenant_id is None:
        checks.append(
            Check(
                "xero_connection",
                title,
                "fail",
                f"no Xero token set with an organisation in {settings.xero_token_secret_id}",
                CONNECT_XERO,
            )
        )
        return read
    read.provider, read.tenant_id = provider, tenant_id
    oauth = config.xero.auth_mode == "oauth"
    now = datetime.now(UTC)
    expired = read.tokens.expires_at <= now
    budget = DynamoCallBudget(settings.state_table, tenant_id, config.xero)
    with XeroClient(config.xero, provider, tenant_id, budget, on_call=counter) as xero:
        try:
            connections = xero.connections()
        except (OAuthError, XeroError) as exc:
            action = CONNECT_XERO if isinstance(exc, OAuthError | XeroAuthError) else "try again later"
            checks.append(Check("xero_connection", title, "fail", _xero_failure(exc), action))
            return read
        connected = next((c for c in connections if c.get("tenantId") == tenant_id), None)
        if connected is None:
            checks.append(
                Check(
                    "xero_connection",
                    title,
                    "fail",
                    f"the token reaches {len(connections)} organisation(s), not the stored one "
                    f"({tenant_id}): the app was disconnected from it",
                    CONNECT_XERO,
                    {"tenant_id": tenant_id},
                )
            )
            return read
        checks.append(_connection_check(read.tokens, connected, oauth=oauth, expired=expired))
        for name, load in (
            ("organisation", xero.organisation),
            ("accounts", xero.accounts),
            ("tax_rates", xero.tax_rates),
            ("currencies", xero.currencies),
        ):
            loader: Callable[[], Any] = load
            try:
                setattr(read, name, loader())
            except (OAuthError, XeroError) as exc:
                checks.append(
                    Check(
                        f"xero_{name}",
                        f"Xero {name.replace('_', ' ')}",
                        "fail",
                        f"cannot read them: {_xero_failure(exc)}",
                        "check the scopes below, then reconnect: " + CONNECT_XERO
                        if isinstance(exc, XeroAuthError)
                        else "try again later",
                    )
                )
    return read


def _connection_check(tokens: TokenSet, connection: dict[str, Any], *, oauth: bool, expired: bool) -> Check:
    name = connection.get("tenantName") or tokens.extra.get("tenant_name") or tokens.tenant_id
    token = (
        "refreshed the expired access token"
        if expired
        else f"access token valid until {tokens.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    data = {
        "tenant_id": tokens.tenant_id,
        "tenant_name": name,
        "auth_mode": "oauth" if oauth else "client_credentials",
    }
    detail = f"connected to {name} ({tokens.tenant_id}); {token}"
    if oauth and not tokens.refresh_token:
        return Check(
            "xero_connection",
            "Xero connection",
            "fail",
            detail + "; no refresh token stored: the connection stops when the access token expires",
            CONNECT_XERO + " with offline_access",
            data,
        )
    return Check("xero_connection", "Xero connection", "ok", detail, "", data)


def _scopes_check(tokens: TokenSet | None, oauth: bool) -> Check:
    title = "Xero scopes"
    if tokens is None:
        return _skipped("xero_scopes", title, "no Xero token set")
    granted = set(tokens.scope.split())
    needed = [s for s in XERO_SCOPES if oauth or s != "offline_access"]
    if not granted:
        return Check(
            "xero_scopes",
            title,
            "warn",
            "the stored token set does not record its scopes; the reads above show what works",
            CONNECT_XERO + " to record them",
        )
    missing = [s for s in needed if s not in granted and not granted & set(SCOPE_ALTERNATIVES.get(s, ()))]
    data = {"granted": sorted(granted), "missing": missing}
    if missing:
        return Check(
            "xero_scopes",
            title,
            "fail",
            f"granted without {' '.join(missing)}: the sync's calls needing them will be refused",
            "give the app these scopes (developer.xero.com/app/manage), then " + CONNECT_XERO,
            data,
        )
    return Check("xero_scopes", title, "ok", "granted: " + " ".join(s for s in needed), "", data)


# --- accounts -----------------------------------------------------------------------------------


def _find(
    accounts: list[Account], *, code: str | None = None, account_id: str | None = None
) -> tuple[Account | None, str]:
    """The account, and a note when the code matched only case-insensitively."""
    if account_id:
        wanted = account_id.lower()
        return next((a for a in accounts if (a.AccountID or "").lower() == wanted), None), ""
    assert code is not None
    exact = next((a for a in accounts if a.Code == code.strip()), None)
    if exact is not None:
        return exact, ""
    loose = next((a for a in accounts if (a.Code or "").casefold() == code.strip().casefold()), None)
    return loose, f" (Xero spells it {loose.Code!r})" if loose is not None else ""


@dataclass(frozen=True)
class Setup:
    """The configuration checked, and where a person changes it."""

    config: IntegrationConfig
    place: str = "clients/<name>.json"
    prefix: str = "runtime."  # the functions' configuration sits under "runtime" in a client file

    @classmethod
    def of(cls, target: Target) -> Setup:
        if target.kind == "stack":
            return cls(target.config, f"clients/{target.name}.json (then deploy)")
        return cls(target.config, "the sandbox's INTEGRATION_CONFIG", "")

    def where(self, key: str) -> str:
        return f"{self.prefix}{key} in {self.place}"


def _sales_accounts_check(setup: Setup, accounts: list[Account] | None) -> Check:
    title = "Sales accounts"
    if accounts is None:
        return _skipped("sales_accounts", title, "Xero's accounts were not read")
    rules = setup.config.invoices
    wanted: dict[str, list[str]] = {rules.default_account_code: ["invoices.default_account_code"]}
    for service, code in rules.account_codes_by_service.items():
        wanted.setdefault(code, []).append(f"invoices.account_codes_by_service[{service!r}]")
    problems: list[str] = []
    fine: list[str] = []
    for code, keys in wanted.items():
        account, note = _find(accounts, code=code)
        used_by = ", ".join(keys)
        if account is None:
            problems.append(f"account code {code!r} ({used_by}) does not exist in Xero")
        elif (account.Status or "ACTIVE").upper() != "ACTIVE":
            problems.append(f"account {code} {account.Name!r} ({used_by}) is {account.Status}")
        elif (account.Class or "").upper() != "REVENUE":
            problems.append(
                f"account {code} {account.Name!r} ({used_by}) is of type {account.Type} "
                f"(class {account.Class}), not revenue: Xero refuses sales tax types on it"
            )
        else:
            fine.append(f"{code} {account.Name}{note}")
    data = {"checked": sorted(wanted), "problems": problems}
    if problems:
        return Check(
            "sales_accounts",
            title,
            "fail",
            "; ".join(problems),
            f"create or re-activate the revenue account in Xero (Chart of accounts), or change "
            f"{setup.where('invoices.default_account_code / account_codes_by_service')}",
            data,
        )
    return Check("sales_accounts", title, "ok", "revenue accounts: " + ", ".join(fine), "", data)


def _rounding_account_check(setup: Setup, accounts: list[Account] | None) -> Check | None:
    code = setup.config.invoices.rounding_account_code
    title = "Rounding account"
    if code is None:
        return None
    if accounts is None:
        return _skipped("rounding_account", title, "Xero's accounts were not read")
    account, note = _find(accounts, code=code)
    fix = (
        f"create the account in Xero, or change {setup.where('invoices.rounding_account_code')} "
        "(null: no rounding line, the cent differences are reported)"
    )
    if account is None:
        return Check(
            "rounding_account",
            title,
            "fail",
            f"account code {code!r} (invoices.rounding_account_code) does not exist in Xero: an invoice "
            "needing a rounding line will be refused",
            fix,
        )
    if (account.Status or "ACTIVE").upper() != "ACTIVE" or account.Type == "BANK":
        return Check(
            "rounding_account",
            title,
            "fail",
            f"account {code} {account.Name!r} is {account.Status} {account.Type}: Xero refuses it on an "
            "invoice line",
            fix,
        )
    return Check("rounding_account", title, "ok", f"{code} {account.Name}{note}")


def _payment_account_check(setup: Setup, accounts: list[Account] | None) -> Check:
    title = "Payment account"
    if accounts is None:
        return _skipped("payment_account", title, "Xero's accounts were not read")
    rules = setup.config.payments
    if rules.account_id:
        key, shown = "payments.account_id", rules.account_id
        account, note = _find(accounts, account_id=rules.account_id)
    else:
        key, shown = "payments.account_code", repr(rules.account_code)
        account, note = _find(accounts, code=rules.account_code)
    banks = [
        f"{a.Name} ({a.Code or 'no code, AccountID ' + str(a.AccountID)})"
        for a in accounts
        if a.Type == "BANK" and (a.Status or "ACTIVE").upper() == "ACTIVE"
    ]
    fix = (
        f"set {setup.where('payments.account_code')} (or payments.account_id for a bank account "
        f"without a code) to one of: {'; '.join(banks) or 'no bank accounts found'}"
    )
    if account is None:
        return Check(
            "payment_account",
            title,
            "fail",
            f"{key} {shown} does not exist in Xero: every payment would be refused",
            fix,
        )
    if (account.Status or "ACTIVE").upper() != "ACTIVE":
        return Check(
            "payment_account", title, "fail", f"{key} {shown} ({account.Name}) is {account.Status}", fix
        )
    if account.Type != "BANK" and not account.EnablePaymentsToAccount:
        return Check(
            "payment_account",
            title,
            "fail",
            f'{key} {shown} ({account.Name}) is of type {account.Type}, not BANK, without "Enable payments '
            'to this account": Xero refuses payments into it',
            fix + ", or tick that option on the account in Xero",
        )
    kind = "bank account" if account.Type == "BANK" else f"{account.Type}-type account with payments enabled"
    return Check(
        "payment_account",
        title,
        "ok",
        f"{account.Name} ({account.Code or account.AccountID}{note}), a {kind}",
        "",
        {"account_id": account.AccountID, "code": account.Code},
    )


# --- tax, currencies, lock dates ----------------------------------------------------------------


def _active_invoices(setup: Setup, ignition: _Ignition) -> list[IgnitionInvoice]:
    skip = {s.lower() for s in setup.config.invoices.skip_states}
    return [i for i in ignition.invoices or [] if i.state.lower() not in skip]


def _seen(ignition: _Ignition) -> str:
    if ignition.invoices is None:
        return "Ignition's invoices were not read"
    scope = "all" if ignition.complete else "a sample of"
    return f"{scope} {len(ignition.invoices)} Ignition invoice(s) read"


def _configured_tax_problems(rules: InvoiceRules, rates: list[TaxRate]) -> tuple[list[str], list[str]]:
    """Problems and warnings with the tax types the settings name: missing, not for sales, or at
    another rate than the one they are configured for."""
    by_type = {r.TaxType.upper(): r for r in rates}
    problems: list[str] = []
    warnings: list[str] = []
    for rate, tax_type in [
        *rules.tax_types_by_rate.items(),
        *([("", rules.untaxed_tax_type)] if rules.untaxed_tax_type else []),
    ]:
        key = f"invoices.tax_types_by_rate[{rate!r}]" if rate else "invoices.untaxed_tax_type"
        found = by_type.get(tax_type.upper())
        if found is None or (found.Status or "ACTIVE").upper() != "ACTIVE":
            problems.append(f"{key} names {tax_type}, which the organisation does not have (active)")
        elif found.CanApplyToRevenue is False:
            problems.append(f"{key} names {tax_type} ({found.Name}), which Xero does not allow on sales")
        elif rate and found.EffectiveRate is not None and _rate(found.EffectiveRate) != rate:
            warnings.append(
                f"{key}: {tax_type} is {_rate(found.EffectiveRate)}% in Xero, not {rate}%: Xero's tax and "
                "totals will differ from Ignition's"
            )
    return problems, warnings


def _rates_seen(invoices: list[IgnitionInvoice], problems: list[str]) -> tuple[Counter[str], bool]:
    """How many invoices have lines at each tax rate, and whether any line has no tax; a rate that
    is not a percentage is a problem."""
    seen: Counter[str] = Counter()
    untaxed_lines = False
    for invoice in invoices:
        keys = set()
        for item in invoice.items:
            if item.tax_rate is None:
                untaxed_lines = True
                continue
            try:
                keys.add(rate_key(item.tax_rate))
            except MoneyError:
                problems.append(
                    f"invoice {invoice.slug} has a tax rate {item.tax_rate!r} that is not a percentage"
                )
        seen.update(keys)
    return seen, untaxed_lines


def _resolved_rates(
    taxes: OrganisationTaxTypes, rates: Iterable[str], seen: Counter[str], problems: list[str]
) -> dict[str, str]:
    """The tax type the sync would use for each rate; a rate the organisation lacks is a problem."""
    resolved: dict[str, str] = {}
    for rate in sorted(rates, key=_decimal_order):
        try:
            resolved[rate] = taxes.for_rate(rate)
        except UnknownTaxRate as exc:
            shown = ", ".join(f"{r}% ({t})" for r, t in exc.available) or "none"
            where = f"{seen[rate]} invoice(s) have {rate}% lines" if seen[rate] else f"{rate}% is configured"
            problems.append(
                f"{where}, and the organisation has no sales tax rate of {rate}% (it has: {shown})"
            )
    return resolved


def _untaxed_type(taxes: OrganisationTaxTypes, problems: list[str]) -> str | None:
    try:
        return taxes.untaxed()
    except UnknownTaxRate:
        problems.append(
            "the organisation has no untaxed sales rate ("
            + "/".join(NO_TAX_TYPES)
            + " or 0%) for lines without tax and the rounding line"
        )
        return None


def _tax_check(setup: Setup, rates: list[TaxRate] | None, ignition: _Ignition) -> Check:
    title = "Tax types"
    if rates is None:
        return _skipped("tax_types", title, "Xero's tax rates were not read")
    rules = setup.config.invoices
    problems, warnings = _configured_tax_problems(rules, rates)
    taxes = OrganisationTaxTypes(lambda: rates, rules.tax_types_by_rate, rules.untaxed_tax_type)
    seen, untaxed_lines = _rates_seen(_active_invoices(setup, ignition), problems)
    resolved = _resolved_rates(taxes, {*seen, *rules.tax_types_by_rate}, seen, problems)
    untaxed: str | None = None
    if untaxed_lines or rules.rounding_account_code is not None:
        untaxed = _untaxed_type(taxes, problems)
    mapping = ", ".join(
        f"{rate}% -> {tax_type}" + (f" ({seen[rate]} invoice(s))" if seen[rate] else "")
        for rate, tax_type in resolved.items()
    )
    detail = (mapping or "no taxed lines seen") + (f"; untaxed -> {untaxed}" if untaxed else "")
    detail += f" ({_seen(ignition)})"
    data = {
        "by_rate": resolved,
        "untaxed": untaxed,
        "invoices_by_rate": dict(seen),
        "available": [f"{r}% {t}" for r, t in taxes.available()],
    }
    if problems:
        return Check(
            "tax_types",
            title,
            "fail",
            "; ".join(problems + warnings),
            "add the rate in Xero (Settings, Tax rates), or map it under "
            + setup.where("invoices.tax_types_by_rate"),
            data,
        )
    if warnings:
        return Check(
            "tax_types", title, "warn", "; ".join(warnings) + f"; {detail}", "correct the override", data
        )
    return Check("tax_types", title, "ok", detail, "", data)


def _rate(value: Any) -> str:
    try:
        return rate_key(value)
    except MoneyError:
        return str(value)


def _decimal_order(rate: str) -> tuple[int, str]:
    try:
        return (-int(float(rate) * 10_000), rate)
    except ValueError:
        return (0, rate)


def _currencies_check(
    setup: Setup, organisation: Organisation | None, currencies: list[Currency] | None, ignition: _Ignition
) -> Check:
    title = "Currencies"
    if currencies is None:
        return _skipped("currencies", title, "Xero's currencies were not read")
    enabled = {c.Code.upper() for c in currencies}
    base = (organisation.BaseCurrency or "").upper() if organisation else ""
    if base:
        enabled.add(base)  # the base currency is always usable, listed or not
    seen = Counter(i.amount.currency.upper() for i in _active_invoices(setup, ignition))
    missing = sorted(c for c in seen if c not in enabled)
    data = {
        "base": base or None,
        "enabled": sorted(enabled),
        "invoices_by_currency": dict(seen),
        "missing": missing,
    }
    shown = ", ".join(f"{c} ({n})" for c, n in seen.most_common()) or "none"
    if missing:
        count = sum(seen[c] for c in missing)
        return Check(
            "currencies",
            title,
            "fail",
            f"{count} Ignition invoice(s) in {', '.join(missing)}, not enabled in Xero (enabled: "
            f"{', '.join(sorted(enabled))}): Xero refuses them (currency_not_enabled)",
            f"add {', '.join(missing)} in Xero (Settings, Currencies; needs a plan with multi-currency)",
            data,
        )
    return Check(
        "currencies",
        title,
        "ok",
        f"base {base or '?'}; invoices by currency: {shown}, all enabled ({_seen(ignition)})",
        "",
        data,
    )


def _lock_dates_check(setup: Setup, organisation: Organisation | None, ignition: _Ignition) -> Check:
    title = "Lock dates"
    if organisation is None:
        return _skipped("lock_dates", title, "Xero's organisation was not read")
    locks = {
        "period lock date": organisation.PeriodLockDate,
        "end of year lock date": organisation.EndOfYearLockDate,
    }
    set_locks = {name: when for name, when in locks.items() if when is not None}
    data: dict[str, Any] = {
        "period_lock_date": organisation.PeriodLockDate,
        "end_of_year_lock_date": organisation.EndOfYearLockDate,
    }
    if not set_locks:
        return Check("lock_dates", title, "ok", "no lock dates set", "", data)
    latest: date = max(set_locks.values())
    invoices = _active_invoices(setup, ignition)
    locked = sorted((i for i in invoices if i.date <= latest), key=lambda i: i.date)
    data["invoices_on_or_before"] = len(locked)
    dates = ", ".join(f"{name} {when.isoformat()}" for name, when in set_locks.items())
    if ignition.invoices is None:
        return Check(
            "lock_dates",
            title,
            "warn",
            f"{dates}; Ignition's invoices were not read, so how many fall before is unknown",
            "see the Ignition check",
            data,
        )
    if not locked:
        return Check(
            "lock_dates", title, "ok", f"{dates}; no invoice on or before it ({_seen(ignition)})", "", data
        )
    examples = ", ".join(f"{i.reference_number or i.slug} ({i.date.isoformat()})" for i in locked[:3])
    return Check(
        "lock_dates",
        title,
        "warn",
        f"{dates}: {len(locked)} invoice(s) dated on or before {latest.isoformat()}, e.g. {examples}; Xero "
        f"refuses to write them (period_locked) ({_seen(ignition)})",
        "leave them (they are reported, not retried), or ask the bookkeeper to move the lock date in Xero "
        "(Settings, Advanced, Financial settings) before the backfill",
        data,
    )


# --- Ignition -----------------------------------------------------------------------------------


def _read_ignition(target: Target, sample: int | None, checks: list[Check]) -> _Ignition:
    settings, config = target.settings, target.config
    title = "Ignition Reporting API"
    read = _Ignition()
    try:
        stored = SecretTokenStore(settings.ignition_api_secret_id, provider="ignition").load()
        tokens = ignition_token_provider(settings, config)
    except (OAuthError, *_AWS_ERRORS) as exc:
        checks.append(
            Check(
                "ignition_access", title, "fail", f"cannot read the Ignition secret: {exc}", CONNECT_IGNITION
            )
        )
        return read
    if stored is None:
        checks.append(
            Check(
                "ignition_access",
                title,
                "fail",
                f"no Ignition token set in {settings.ignition_api_secret_id}",
                CONNECT_IGNITION,
            )
        )
        return read
    granted = stored.scope.split()
    if granted and "reporting" not in granted:
        checks.append(
            Check(
                "ignition_access",
                title,
                "fail",
                f"the token was granted {' '.join(granted)}, without the reporting scope",
                "a practice admin on a plan with the Reporting API (Pro and above) runs "
                "`python -m cli connect ignition`",
            )
        )
        return read
    started = time.monotonic()
    try:
        with IgnitionReportingClient.from_config(
            config.ignition,
            tokens.access_token,
            force_refresh=tokens.force_refresh,
            budget=IgnitionRequestBudget.in_table(settings.state_table, config.ignition),
        ) as client:
            found = client.iter_invoices()
            read.invoices = list(found if sample is None else islice(found, sample + 1))
    except IgnitionAuthError as exc:
        if exc.status == 403:
            detail = (
                "Ignition answered 403 Forbidden: the token works but may not read reports; the practice's "
                "plan may not include the Reporting API (Pro and above), or the person who connected is not "
                "a practice admin"
            )
            action = "upgrade the plan or have a practice admin run `python -m cli connect ignition`"
        else:
            detail = (
                f"Ignition answered {exc.status} Unauthorized: the access token was refused, even after "
                "a refresh"
            )
            action = CONNECT_IGNITION
        checks.append(Check("ignition_access", title, "fail", detail, action, {"status": exc.status}))
        return read
    except OAuthError as exc:
        checks.append(
            Check(
                "ignition_access",
                title,
                "fail",
                f"the Ignition token could not be refreshed: {exc}",
                CONNECT_IGNITION,
            )
        )
        return read
    except IgnitionRateLimited as exc:
        checks.append(
            Check(
                "ignition_access",
                title,
                "warn",
                f"Ignition's rate limit is spent (resets in {exc.retry_after:.0f} s); invoices not read",
                "run doctor again later",
            )
        )
        return read
    except IgnitionApiError as exc:
        checks.append(
            Check(
                "ignition_access", title, "fail", f"Ignition's Reporting API failed: {exc}", "try again later"
            )
        )
        return read
    read.complete = sample is None or len(read.invoices) <= sample
    if sample is not None:
        read.invoices = read.invoices[:sample]
    checks.append(
        Check(
            "ignition_access",
            title,
            "ok",
            f"reporting scope works; {_seen(read)} in {time.monotonic() - started:.1f} s",
            "",
            {"invoices_read": len(read.invoices), "complete": read.complete},
        )
    )
    return read


# --- the report ---------------------------------------------------------------------------------


WRITTEN_OUTSIDE_EXAMPLES = 5
NUMBERS_PER_LOOKUP = 40  # keeps the InvoiceNumbers query string short


def _written_outside_check(target: Target, counter: CallCounter, xero: _Xero, ignition: _Ignition) -> Check:
    """Xero invoices that carry an Ignition invoice's number without this product's key: Ignition's
    own Xero integration still pushes invoices, so both would write the same ones."""
    name, title = "written_outside", "Invoices written outside this product"
    if xero.provider is None or xero.tenant_id is None:
        return _skipped(name, title, "Xero is not connected")
    if ignition.invoices is None:
        return _skipped(name, title, "Ignition's invoices could not be read")
    numbers = {i.reference_number: i.slug for i in ignition.invoices if i.reference_number}
    prefix = target.config.reconcile.invoice_slug_prefix
    config = target.config.xero
    budget = DynamoCallBudget(target.settings.state_table, xero.tenant_id, config)
    outside: list[str] = []
    lookups = 0
    try:
        with XeroClient(config, xero.provider, xero.tenant_id, budget, on_call=counter) as client:
            ordered = sorted(numbers)
            for start in range(0, len(ordered), NUMBERS_PER_LOOKUP):
                lookups += 1
                for invoice in client.find_invoices(
                    invoice_numbers=ordered[start : start + NUMBERS_PER_LOOKUP]
                ):
                    slug = numbers.get(invoice.InvoiceNumber or "")
                    ours = invoice_key(invoice.Reference, prefix) == slug
                    if slug and not ours and invoice.Status not in ("VOIDED", "DELETED"):
                        outside.append(invoice.InvoiceNumber or "")
    except (OAuthError, XeroError) as exc:
        return Check(
            name, title, "fail", f"cannot read Xero's invoices: {_xero_failure(exc)}", "try again later"
        )
    read = "every" if ignition.complete else f"a sample of {len(ignition.invoices)}"
    data: dict[str, Any] = {
        "count": len(outside),
        "examples": sorted(outside)[:WRITTEN_OUTSIDE_EXAMPLES],
        "xero_lookups": lookups,
    }
    if not outside:
        return Check(name, title, "ok", f"none among {read} Ignition invoices' numbers", "", data)
    examples = ", ".join(data["examples"])
    return Check(
        name,
        title,
        "warn",
        f"{len(outside)} Xero invoice(s) carry Ignition's numbers but were not written by this product "
        f"(e.g. {examples}): Ignition's own Xero integration is still pushing invoices, so both would "
        "write the same ones",
        "turn off invoice creation in Ignition's Xero settings (the cut-over checklist in "
        "docs/ignition-setup.md), then void the copies you do not keep",
        data,
    )


def run_doctor(target: Target, *, invoice_sample: int | None = DEFAULT_INVOICE_SAMPLE) -> dict[str, Any]:
    """Every check, in the order a person fixes them; ``invoice_sample`` None reads every invoice."""
    started = time.monotonic()
    counter = CallCounter()
    connection_checks: list[Check] = []
    xero = _read_xero(target, counter, connection_checks)
    ignition_checks: list[Check] = []
    ignition = _read_ignition(target, invoice_sample, ignition_checks)
    setup = Setup.of(target)
    checks: list[Check] = [
        *connection_checks,
        _scopes_check(xero.tokens, target.config.xero.auth_mode == "oauth"),
        _sales_accounts_check(setup, xero.accounts),
        *_present([_rounding_account_check(setup, xero.accounts)]),
        _payment_account_check(setup, xero.accounts),
        _tax_check(setup, xero.tax_rates, ignition),
        _currencies_check(setup, xero.organisation, xero.currencies, ignition),
        _lock_dates_check(setup, xero.organisation, ignition),
        *ignition_checks,
        _written_outside_check(target, counter, xero, ignition),
    ]
    counts = Counter(c.status for c in checks)
    return {
        "target": target.label,
        "checked_at": datetime.now(UTC),
        "ready": counts["fail"] == 0,
        "summary": {status: counts[status] for status in ("ok", "warn", "fail", "skipped")},
        "organisation": {
            "name": xero.organisation.Name,
            "country": xero.organisation.CountryCode,
            "base_currency": xero.organisation.BaseCurrency,
        }
        if xero.organisation
        else None,
        "checks": [c.document() for c in checks],
        "xero_calls": counter.count(),
        "ignition_invoices_read": len(ignition.invoices) if ignition.invoices is not None else None,
        "seconds": round(time.monotonic() - started, 2),
    }


def _present(checks: Iterable[Check | None]) -> list[Check]:
    return [c for c in checks if c is not None]
