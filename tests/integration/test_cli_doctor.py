"""``doctor`` against the sandbox: the connected organisation checked against the configuration
before a first sync, with what to fix and an exit code a script can gate on."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.app import main
from cli.errors import Exit
from cli.target import SANDBOX_FILE_ENV
from sandbox.environment import Sandbox
from shared.config import IgnitionConfig
from shared.money import MoneyError, rate_key
from tests.integration.conftest import DEFAULT_ORGANISATION, World
from tests.integration.test_cli_support import put_secret, run_cli, secret_value, write_sandbox_file

pytestmark = pytest.mark.integration

CHECKS = {
    "xero_connection",
    "xero_scopes",
    "sales_accounts",
    "rounding_account",
    "payment_account",
    "tax_types",
    "currencies",
    "lock_dates",
    "ignition_access",
    "written_outside",
}


@pytest.fixture
def sandbox_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_sandbox_file(sandbox, tmp_path / "sandbox.json")


@pytest.fixture
def every_ignition_currency_enabled(world: World, organise: Any) -> None:
    """The session sandbox's Ignition holds other tests' invoices, some in currencies the default
    organisation lacks (on purpose): a healthy organisation enables every currency in use."""
    state = world.http.get(f"{world.sandbox.ignition_url}/_emulator/state").json()
    used = {str((i.get("amount") or {}).get("currency") or "AUD") for i in state.get("invoices", [])}
    organise(currencies=sorted(set(DEFAULT_ORGANISATION["currencies"]) | used))


@pytest.fixture
def every_ignition_tax_rate_in_xero(world: World) -> Iterator[None]:
    """Other tests leave Ignition invoices at rates the default (AU) organisation lacks, on purpose
    (an NZ firm's 15%, a rate with no Xero tax type): a healthy organisation has a sales tax rate
    for every rate in use, so one is added for each missing rate and deleted again after the test
    (``Status: DELETED``, which neither doctor nor the sync uses)."""
    ignition = world.http.get(f"{world.sandbox.ignition_url}/_emulator/state").json()
    used: set[str] = set()
    for invoice in ignition.get("invoices", []):
        for item in invoice.get("items") or []:
            if item.get("tax_rate") is not None:
                with contextlib.suppress(MoneyError):  # not a percentage: no Xero rate can fix it
                    used.add(rate_key(item["tax_rate"]))
    have = {
        rate_key(str(r["EffectiveRate"]))
        for r in world.xero_state()["TaxRates"]
        if r.get("Status") == "ACTIVE" and r.get("CanApplyToRevenue", True)
    }
    added = [
        {"TaxType": f"TAX{n:03d}", "Name": f"Sales {rate}% (test)", "EffectiveRate": rate}
        for n, rate in enumerate(sorted(used - have), start=900)
    ]
    if added:
        world.http.post(
            f"{world.sandbox.xero_url}/_emulator/tax-rates", json={"TaxRates": added}
        ).raise_for_status()
    yield
    if added:
        deleted = [{**rate, "Status": "DELETED"} for rate in added]
        world.http.post(
            f"{world.sandbox.xero_url}/_emulator/tax-rates", json={"TaxRates": deleted}
        ).raise_for_status()


def ignition_invoice(world: World, slug: str, currency: str = "AUD", **fields: Any) -> None:
    """An invoice in Ignition only (no webhook): what a firm has before its first sync."""
    items = [
        {
            "description": "Monthly advisory",
            "quantity": "1",
            "unit_price": {"amount": "100.00", "currency": currency},
            "tax_rate": "10",
        }
    ]
    record = world.invoice(slug, world.slug(), items, "110.00", currency=currency, **fields)
    world.put_record("invoices", record, deliver=False)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


@pytest.mark.usefixtures("every_ignition_currency_enabled", "every_ignition_tax_rate_in_xero")
def test_given_a_healthy_sandbox_when_doctor_then_every_check_is_ok_and_it_exits_0(
    world: World, sandbox_file: Path
) -> None:
    ignition_invoice(world, f"inv_{world.tag}")
    calls_before = world.xero_calls()

    run = run_cli("doctor", "--json", sandbox_file=sandbox_file)

    assert run.code == Exit.OK, run.stdout + run.stderr
    report = run.json()
    checks = by_name(report)
    assert set(checks) == CHECKS
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(CHECKS, "ok")
    assert report["ready"] is True
    assert report["summary"] == {"ok": len(CHECKS), "warn": 0, "fail": 0, "skipped": 0}
    for check in report["checks"]:
        assert set(check) == {"name", "title", "status", "detail", "action", "data"}
        assert check["detail"] and check["action"] == ""
    assert report["organisation"]["country"] == "AU" and report["organisation"]["base_currency"] == "AUD"
    assert checks["tax_types"]["data"]["by_rate"]["10"] == "OUTPUT"
    assert checks["tax_types"]["data"]["invoices_by_rate"]["10"] >= 1
    assert checks["payment_account"]["data"]["code"] == "090"
    assert report["ignition_invoices_read"] >= 1
    # Read-only and cheap: connections, Organisation, Accounts, TaxRates, Currencies, and the
    # invoices that carry the sampled Ignition invoices' numbers (40 numbers a lookup).
    assert report["xero_calls"] == 5 + checks["written_outside"]["data"]["xero_lookups"]
    assert world.xero_calls() - calls_before == report["xero_calls"]


@pytest.mark.usefixtures("every_ignition_currency_enabled", "every_ignition_tax_rate_in_xero")
def test_given_a_healthy_sandbox_when_doctor_for_people_then_a_table_of_checks_and_ready(
    world: World, sandbox_file: Path
) -> None:
    run = run_cli("doctor", sandbox_file=sandbox_file)

    assert run.code == Exit.OK, run.stdout + run.stderr
    header = run.stdout.splitlines()[2]
    assert header.split() == ["check", "status", "detail", "what", "to", "do"]
    assert "READY" in run.stdout.splitlines()[0]
    payment = next(line for line in run.stdout.splitlines() if line.startswith("Payment account"))
    assert payment.split()[2] == "ok" and "090" in payment
    assert "0 fail" in run.stdout


@pytest.mark.usefixtures("every_ignition_currency_enabled", "every_ignition_tax_rate_in_xero")
def test_given_no_target_when_doctor_then_it_checks_the_sandbox_of_the_sandbox_file(
    world: World, sandbox_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_FILE_ENV, str(sandbox_file))
    stdout, stderr = io.StringIO(), io.StringIO()

    code = main(["doctor", "--json"], stdout=stdout, stderr=stderr)

    assert code == Exit.OK, stdout.getvalue() + stderr.getvalue()
    report = json.loads(stdout.getvalue())
    assert report["target"] == "the local sandbox" and report["ready"] is True


@pytest.mark.usefixtures("every_ignition_tax_rate_in_xero")
def test_given_a_lock_date_a_disabled_currency_and_a_missing_account_when_doctor_then_each_says_what_to_fix(
    world: World, sandbox: Sandbox, organise: Any, tmp_path: Path
) -> None:
    organise(period_lock_date="2026-10-31", currencies=["AUD", "NZD", "GBP"])
    locked = f"inv_locked_{world.tag}"
    # Other tests leave invoices dated before the lock date and the detail names the oldest few:
    # this one is dated on the first day doctor reads, so it is among them.
    locked_on = IgnitionConfig().window_start.isoformat()
    ignition_invoice(world, locked, date=locked_on)
    ignition_invoice(world, f"inv_usd_{world.tag}", currency="USD")
    misconfigured = write_sandbox_file(
        sandbox, tmp_path / "sandbox.json", invoices={"default_account_code": "999"}
    )

    run = run_cli("doctor", "--json", sandbox_file=misconfigured)

    assert run.code == Exit.UNHEALTHY, run.stdout + run.stderr
    report = run.json()
    checks = by_name(report)
    assert report["ready"] is False

    accounts = checks["sales_accounts"]
    assert accounts["status"] == "fail"
    assert "account code '999' (invoices.default_account_code) does not exist in Xero" in accounts["detail"]
    assert "invoices.default_account_code" in accounts["action"]

    currencies = checks["currencies"]
    assert currencies["status"] == "fail"
    assert "USD" in currencies["detail"] and "not enabled" in currencies["detail"]
    # Other tests leave invoices in other currencies (EUR) in the shared sandbox: the action names
    # every missing one, USD among them.
    missing = currencies["data"]["missing"]
    assert "USD" in missing
    assert currencies["action"].startswith(f"add {', '.join(missing)} in Xero (Settings, Currencies")

    lock = checks["lock_dates"]
    assert lock["status"] == "warn"
    assert "period lock date 2026-10-31" in lock["detail"]
    assert f"IGN-{locked} ({locked_on})" in lock["detail"]
    assert lock["data"]["invoices_on_or_before"] >= 1
    assert "lock date" in lock["action"]

    # What the organisation does have still passes: the failures are the named ones only.
    assert {n for n, c in checks.items() if c["status"] == "fail"} == {"sales_accounts", "currencies"}
    assert checks["payment_account"]["status"] == "ok"


def test_given_a_revoked_ignition_token_when_doctor_then_ignition_fails_with_reconnect_and_xero_checked(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    assert sandbox.resources is not None
    secret_id = json.loads(sandbox_file.read_text())["environment"]["IGNITION_API_SECRET_ID"]
    original = secret_value(secret_id)
    put_secret(
        secret_id,
        {**original, "access_token": f"gone-{world.tag}", "refresh_token": f"spent-{world.tag}"},
    )
    try:
        run = run_cli("doctor", "--json", sandbox_file=sandbox_file)
    finally:
        put_secret(secret_id, original)

    assert run.code == Exit.UNHEALTHY, run.stdout + run.stderr
    checks = by_name(run.json())
    ignition = checks["ignition_access"]
    assert ignition["status"] == "fail"
    assert "refresh" in ignition["detail"]
    assert "python -m cli connect ignition" in ignition["action"]
    assert world.tag not in run.stdout  # no token text in the report
    assert checks["sales_accounts"]["status"] == "ok"
    assert checks["lock_dates"]["status"] == "ok"
