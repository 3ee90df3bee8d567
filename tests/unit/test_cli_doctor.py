"""``doctor``'s checks on what was read from Xero and Ignition: the organisation's own accounts,
tax rates and lock dates against the configuration, each with what to fix."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from cli.doctor import (
    Setup,
    _connection_check,
    _Ignition,
    _lock_dates_check,
    _payment_account_check,
    _sales_accounts_check,
    _scopes_check,
    _tax_check,
)
from shared.config import IntegrationConfig
from shared.models.ignition import IgnitionInvoice
from shared.models.xero import Account, Organisation, TaxRate
from shared.oauth import TokenSet

CODELESS_BANK = "5f0b9e33-3c1e-4d6a-9a54-2f6f3f6c1a10"
ACCOUNTS = [
    Account(AccountID="a-090", Code="090", Name="Ignition Clearing", Type="BANK", Class="ASSET"),
    Account(AccountID=CODELESS_BANK, Name="Stripe Payouts", Type="BANK", Class="ASSET"),
    Account(AccountID="a-200", Code="200", Name="Sales", Type="REVENUE", Class="REVENUE", Status="ACTIVE"),
    Account(
        AccountID="a-201", Code="201", Name="Old sales", Type="REVENUE", Class="REVENUE", Status="ARCHIVED"
    ),
    Account(AccountID="a-400", Code="400", Name="Advertising", Type="EXPENSE", Class="EXPENSE"),
    Account(AccountID="a-877", Code="877", Name="Stripe fees", Type="EXPENSE", EnablePaymentsToAccount=True),
]
NZ_RATES = [
    TaxRate(TaxType="OUTPUT2", Name="15% GST on Income", EffectiveRate=Decimal("15"), CanApplyToRevenue=True),
    TaxRate(TaxType="ZERORATED", Name="Zero Rated", EffectiveRate=Decimal("0"), CanApplyToRevenue=True),
    TaxRate(
        TaxType="INPUT2", Name="15% GST on Expenses", EffectiveRate=Decimal("15"), CanApplyToRevenue=False
    ),
    TaxRate(TaxType="NONE", Name="No GST", EffectiveRate=Decimal("0"), CanApplyToRevenue=True),
]


def setup(**runtime: Any) -> Setup:
    return Setup(IntegrationConfig.model_validate(runtime))


def invoice(
    slug: str, rate: str | None = "15", *, on: date = date(2026, 11, 2), state: str = "sent"
) -> IgnitionInvoice:
    item: dict[str, Any] = {"unit_price": {"amount": "100.00", "currency": "NZD"}}
    if rate is not None:
        item["tax_rate"] = rate
    return IgnitionInvoice.model_validate(
        {
            "slug": slug,
            "reference_number": f"IGN-{slug}",
            "state": state,
            "client": {"slug": "cli_1"},
            "amount": {"total": "115.00", "currency": "NZD"},
            "date": on.isoformat(),
            "items": [item],
            "created_at": "2026-11-02T09:00:00Z",
            "updated_at": "2026-11-02T09:00:00Z",
        }
    )


def seen(*invoices: IgnitionInvoice) -> _Ignition:
    return _Ignition(list(invoices), complete=True)


# --- accounts ---------------------------------------------------------------------------------------


def test_given_an_expense_account_for_payments_when_checked_then_fail_listing_the_bank_accounts() -> None:
    check = _payment_account_check(setup(payments={"account_code": "400"}), ACCOUNTS)

    assert check.status == "fail"
    assert "refuses payments into it" in check.detail
    # The codeless bank account is offered by its AccountID, the key a person sets for it.
    assert f"no code, AccountID {CODELESS_BANK}" in check.action
    assert "payments.account_id" in check.action


def test_given_a_codeless_bank_account_by_id_or_one_with_payments_enabled_when_checked_then_ok() -> None:
    by_id = _payment_account_check(setup(payments={"account_id": CODELESS_BANK}), ACCOUNTS)
    enabled = _payment_account_check(setup(payments={"account_code": "877"}), ACCOUNTS)

    assert by_id.status == "ok" and by_id.data["account_id"] == CODELESS_BANK
    assert enabled.status == "ok" and "payments enabled" in enabled.detail


def test_given_a_missing_payment_account_when_checked_then_fail_with_where_to_change_it() -> None:
    check = _payment_account_check(
        Setup(IntegrationConfig.model_validate({"payments": {"account_code": "999"}}), "clients/acme.json"),
        ACCOUNTS,
    )

    assert check.status == "fail" and "'999' does not exist in Xero" in check.detail
    assert "runtime.payments.account_code in clients/acme.json" in check.action


def test_given_service_accounts_archived_or_not_revenue_when_checked_then_each_named_with_its_key() -> None:
    rules = setup(invoices={"account_codes_by_service": {"ads": "400", "legacy": "201", "tax": "200"}})

    check = _sales_accounts_check(rules, ACCOUNTS)

    assert check.status == "fail"
    assert (
        "account 400 'Advertising' (invoices.account_codes_by_service['ads']) is of type EXPENSE"
        in check.detail
    )
    assert "not revenue" in check.detail
    assert "account 201 'Old sales' (invoices.account_codes_by_service['legacy']) is ARCHIVED" in check.detail
    assert check.data["problems"] and len(check.data["problems"]) == 2


def test_given_revenue_accounts_when_checked_then_ok() -> None:
    check = _sales_accounts_check(setup(), ACCOUNTS)

    assert check.status == "ok" and "200 Sales" in check.detail


# --- tax types --------------------------------------------------------------------------------------


def test_given_an_nz_organisation_and_no_tax_configuration_when_15_percent_seen_then_ok_with_output2() -> (
    None
):
    check = _tax_check(setup(), NZ_RATES, seen(invoice("inv_1"), invoice("inv_2", None)))

    assert check.status == "ok"
    assert check.data["by_rate"] == {"15": "OUTPUT2"}
    assert check.data["untaxed"] == "NONE"
    assert check.data["invoices_by_rate"] == {"15": 1}


def test_given_a_rate_the_organisation_lacks_when_seen_in_ignition_then_fail_naming_what_it_has() -> None:
    check = _tax_check(setup(), NZ_RATES, seen(invoice("inv_1", "12.5")))

    assert check.status == "fail"
    assert "1 invoice(s) have 12.5% lines" in check.detail
    assert "15% (OUTPUT2)" in check.detail and "INPUT2" not in check.detail
    assert "tax_types_by_rate" in check.action


def test_given_overrides_naming_a_missing_type_or_the_wrong_rate_when_checked_then_fail_and_warn() -> None:
    missing = _tax_check(setup(invoices={"tax_types_by_rate": {"10": "OUTPUT"}}), NZ_RATES, seen())
    wrong_rate = _tax_check(setup(invoices={"tax_types_by_rate": {"10": "OUTPUT2"}}), NZ_RATES, seen())
    expense_type = _tax_check(setup(invoices={"untaxed_tax_type": "INPUT2"}), NZ_RATES, seen())

    assert missing.status == "fail" and "names OUTPUT, which the organisation does not have" in missing.detail
    assert wrong_rate.status == "warn" and "OUTPUT2 is 15% in Xero, not 10%" in wrong_rate.detail
    assert expense_type.status == "fail" and "does not allow on sales" in expense_type.detail


# --- lock dates -------------------------------------------------------------------------------------


def test_given_an_end_of_year_lock_when_invoices_fall_before_it_then_warn_counting_them_but_not_drafts() -> (
    None
):
    organisation = Organisation(EndOfYearLockDate=date(2026, 6, 30))
    invoices = seen(
        invoice("inv_old", on=date(2026, 6, 30)),
        invoice("inv_draft", on=date(2026, 1, 5), state="draft"),
        invoice("inv_new", on=date(2026, 7, 1)),
    )

    check = _lock_dates_check(setup(), organisation, invoices)

    assert check.status == "warn"
    assert check.data["invoices_on_or_before"] == 1
    assert "end of year lock date 2026-06-30: 1 invoice(s)" in check.detail
    assert "IGN-inv_old (2026-06-30)" in check.detail and "inv_draft" not in check.detail


def test_given_no_lock_dates_when_checked_then_ok() -> None:
    assert _lock_dates_check(setup(), Organisation(), seen(invoice("inv_1"))).status == "ok"


# --- connection and scopes --------------------------------------------------------------------------


def tokens(scope: str, refresh: str | None = "r") -> TokenSet:
    return TokenSet(
        access_token="a",
        refresh_token=refresh,
        expires_at=datetime.now(UTC) + timedelta(minutes=30),
        scope=scope,
        tenant_id="t-1",
    )


def test_given_the_broad_scopes_of_an_older_app_when_checked_then_ok() -> None:
    granted = "offline_access accounting.contacts accounting.transactions accounting.settings"

    assert _scopes_check(tokens(granted), oauth=True).status == "ok"


def test_given_no_payments_scope_when_checked_then_fail_naming_it() -> None:
    check = _scopes_check(
        tokens("offline_access accounting.contacts accounting.invoices accounting.settings.read"), oauth=True
    )

    assert check.status == "fail" and check.data["missing"] == ["accounting.payments"]
    assert "developer.xero.com" in check.action


def test_given_a_custom_connection_without_offline_access_when_checked_then_ok() -> None:
    granted = "accounting.contacts accounting.invoices accounting.payments accounting.settings.read"

    assert _scopes_check(tokens(granted, refresh=None), oauth=False).status == "ok"


def test_given_an_oauth_connection_without_a_refresh_token_when_checked_then_fail() -> None:
    check = _connection_check(tokens("x", refresh=None), {"tenantName": "Acme"}, oauth=True, expired=False)

    assert check.status == "fail" and "no refresh token" in check.detail
