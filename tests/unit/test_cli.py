"""The CLI's parts that need no sandbox: arguments, exit codes, the OAuth helpers, output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cli.app import main
from cli.errors import CliError, Exit
from cli.oauth_flow import (
    CallbackListener,
    _callback_error,
    check_scopes,
    choose_tenant,
    pkce_pair,
    xero_provider,
)
from cli.output import Output, duration
from shared.config import IntegrationConfig

COMMANDS = [
    ["connect", "xero"],
    ["connect", "ignition"],
    ["status"],
    ["backfill"],
    ["replay", "dlq"],
    ["replay", "archive"],
    ["reconcile"],
]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_given_any_command_when_help_then_it_exits_0_and_names_the_targets(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--help"])

    assert code == 0
    text = capsys.readouterr().out
    assert "--client NAME" in text and "--sandbox" in text and "--json" in text and "exit codes" in text


def test_given_no_target_when_status_then_usage_exit_2() -> None:
    code, _, err = run("status")

    assert code == Exit.USAGE
    assert "--client NAME" in err


def test_given_both_targets_when_status_then_argparse_refuses_with_2() -> None:
    assert run("status", "--client", "acme", "--sandbox")[0] == 2


def test_given_no_running_sandbox_when_status_then_exit_4_with_how_to_start_one(tmp_path: Path) -> None:
    code, out, err = run("status", "--sandbox", "--sandbox-file", str(tmp_path / "missing.json"), "--json")

    assert code == Exit.CONFIG
    assert json.loads(out)["error"]["exit_code"] == Exit.CONFIG  # --json: the error is the document
    assert "python -m sandbox serve" in err


def test_given_an_unknown_phase_when_backfill_then_usage(tmp_path: Path) -> None:
    code, _, err = run(
        "backfill", "--sandbox", "--sandbox-file", str(tmp_path / "none.json"), "--phases", "x"
    )

    assert code == Exit.USAGE  # checked before the target is looked for
    assert "unknown phase(s): x" in err


def test_given_a_pkce_pair_then_the_challenge_is_the_s256_of_the_verifier() -> None:
    import base64
    import hashlib

    verifier, challenge = pkce_pair()

    assert 43 <= len(verifier) <= 128
    assert (
        challenge
        == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def test_given_granted_scopes_without_payments_then_the_missing_one_is_named() -> None:
    provider = xero_provider(IntegrationConfig())

    with pytest.raises(CliError) as raised:
        check_scopes(
            provider, "offline_access accounting.contacts accounting.invoices accounting.settings.read"
        )

    assert raised.value.code == Exit.AUTH
    assert "accounting.payments" in str(raised.value)


def test_given_access_denied_then_an_auth_error_saying_consent_was_denied() -> None:
    error = _callback_error(xero_provider(IntegrationConfig()), {"error": "access_denied"})

    assert error.code == Exit.AUTH and "consent was denied" in str(error)


def test_given_several_tenants_and_no_choice_then_usage_listing_them() -> None:
    connections = [{"tenantId": "t1", "tenantName": "One"}, {"tenantId": "t2", "tenantName": "Two"}]

    with pytest.raises(CliError) as raised:
        choose_tenant(connections, None, None)

    assert raised.value.code == Exit.USAGE and "One (t1)" in (raised.value.hint or "")
    assert choose_tenant(connections, "two", None)["tenantId"] == "t2"
    assert choose_tenant(connections, None, lambda items: 1)["tenantId"] == "t2"


def test_given_a_redirect_uri_off_loopback_then_the_listener_refuses_it() -> None:
    with pytest.raises(CliError) as raised:
        CallbackListener("https://example.com/callback")

    assert raised.value.code == Exit.USAGE


def test_given_rows_then_the_table_aligns_columns_without_colour_codes() -> None:
    output = Output(json_mode=False, stdout=io.StringIO(), stderr=io.StringIO(), colour=False)

    table = output.table(["a", "bb"], [["xxx", 1], ["y", None]])

    assert table.splitlines() == ["a    bb", "xxx  1", "y"]
    assert duration(3725) == "1h02m" and duration(65) == "1m05s" and duration(None) == "unknown"
