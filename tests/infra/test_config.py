"""clients/<name>.json: validated at synth time, errors name the file, the field and the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from infra.config import CLIENTS_DIR, ClientConfig, ConfigError, load_client_config

pytestmark = [pytest.mark.infra]

ROOT = Path(__file__).resolve().parents[2]


def _example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CLIENTS_DIR / "example.json").read_text())
    return data


def _load(tmp_path: Path, data: dict[str, Any], name: str = "acme") -> ClientConfig:
    (tmp_path / f"{name}.json").write_text(json.dumps(data))
    return load_client_config(name, tmp_path)


def _error(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, data)
    return str(exc.value)


def test_given_the_example_file_when_loaded_then_it_is_valid_and_named_after_the_file() -> None:
    config = load_client_config("example")
    assert config.name == "example"
    assert config.stack_name == "IgnitionXeroSync-example"
    assert config.runtime.xero.auth_mode in ("oauth", "client_credentials")


def test_given_an_invalid_email_when_loaded_then_the_error_names_file_and_field(tmp_path: Path) -> None:
    message = _error(tmp_path, {**_example(), "alarm_email": "not-an-address"})
    assert message == f"{tmp_path / 'acme.json'}: alarm_email: value is not a valid e-mail address"


def test_given_a_missing_account_when_loaded_then_the_error_says_field_required(tmp_path: Path) -> None:
    data = _example()
    del data["account"]
    assert message_line(_error(tmp_path, data)) == "account: field required"


def test_given_a_misspelt_option_when_loaded_then_it_is_reported_not_ignored(tmp_path: Path) -> None:
    data = _example()
    data["sync"] = {"max_concurency": 3}
    assert message_line(_error(tmp_path, data)).startswith("sync.max_concurency: unknown field")


def test_given_a_wrong_runtime_value_when_loaded_then_the_nested_path_is_named(tmp_path: Path) -> None:
    data = _example()
    data["runtime"]["xero"]["auth_mode"] = "password"
    assert message_line(_error(tmp_path, data)).startswith("runtime.xero.auth_mode: Input should be")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"reconciliation": {"schedule": "every day"}}, "reconciliation.schedule"),
        ({"reconciliation": {"incremental_schedule": "hourly"}}, "reconciliation.incremental_schedule"),
        (
            {"reconciliation": {"xero_events_schedule": "rate(0 minutes)"}},
            "reconciliation.xero_events_schedule",
        ),
        (
            {"reconciliation": {"report_emails": ["books@example.com", "nobody"]}},
            "reconciliation.report_emails",
        ),
        ({"alarms": {"reconcile_discrepancies_above": -1}}, "alarms.reconcile_discrepancies_above"),
        ({"sync": {"max_concurrency": 6}}, "sync.max_concurrency"),
        ({"sync": {"max_receive_count": 1}}, "sync.max_receive_count"),
        ({"account": "12345"}, "account"),
        ({"log_retention_days": 42}, "log_retention_days"),
        ({"archive": {"raw_infrequent_access_after_days": 90, "raw_expire_after_days": 60}}, "archive"),
    ],
)
def test_given_an_out_of_range_option_when_loaded_then_the_field_is_named(
    tmp_path: Path, patch: dict[str, Any], field: str
) -> None:
    assert message_line(_error(tmp_path, {**_example(), **patch})).startswith(f"{field}: ")


def test_given_a_valid_schedule_when_loaded_then_rate_and_cron_are_accepted(tmp_path: Path) -> None:
    for schedule in ("rate(1 day)", "rate(6 hours)", "cron(0 3 * * ? *)"):
        config = _load(tmp_path, {**_example(), "reconciliation": {"schedule": schedule}})
        assert config.reconciliation.schedule == schedule


def test_given_optional_schedules_set_to_null_when_loaded_then_they_are_off_and_reports_go_to_alarm_email(
    tmp_path: Path,
) -> None:
    config = _load(
        tmp_path,
        {**_example(), "reconciliation": {"incremental_schedule": None, "xero_events_schedule": None}},
    )
    assert config.reconciliation.incremental_schedule is None
    assert config.reconciliation.xero_events_schedule is None
    assert config.report_recipients == [config.alarm_email]


def test_given_a_wrong_report_email_when_loaded_then_the_error_names_the_address(tmp_path: Path) -> None:
    message = _error(tmp_path, {**_example(), "reconciliation": {"report_emails": ["nobody"]}})
    assert message_line(message) == "reconciliation.report_emails: not valid e-mail addresses: 'nobody'"


def test_given_no_or_an_unknown_client_when_loaded_then_the_available_clients_are_listed() -> None:
    with pytest.raises(ConfigError, match=r"-c client=NAME \(available: .*example"):
        load_client_config(None)
    with pytest.raises(ConfigError, match=r"clients/nobody.json not found \(available: .*example"):
        load_client_config("nobody")


def test_given_broken_json_when_loaded_then_the_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "acme.json").write_text('{"account": "123456789012",\n "region": }')
    with pytest.raises(ConfigError, match=r"acme.json: line 2 column"):
        load_client_config("acme", tmp_path)


def test_given_a_bad_config_when_the_app_synthesises_then_it_exits_with_the_field_named(
    tmp_path: Path,
) -> None:
    (tmp_path / "acme.json").write_text(json.dumps({**_example(), "alarm_email": "nobody"}))
    result = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "app.py",
            "-c",
            "client=acme",
            "-c",
            f"clients_dir={tmp_path}",
            "-c",
            "bundle=false",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")},
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'acme.json'}: alarm_email: value is not a valid e-mail address"
    )
    assert "Traceback" not in result.stderr


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and key != "runtime":
            paths.extend(_field_paths(annotation, f"{prefix}{key}."))
        else:
            paths.append(f"{prefix}{key}")
    return paths


def test_given_the_deploy_guide_when_read_then_every_deployment_option_is_documented() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    undocumented = [path for path in _field_paths(ClientConfig) if f"`{path}`" not in guide]
    assert undocumented == []


def message_line(message: str) -> str:
    """The part after ``<file>: `` of the first error line."""
    return message.splitlines()[0].split(".json: ", 1)[1]
