"""One version, shown by the CLI; a changelog and an upgrade guide whose commands exist."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.app import build_parser, main
from cli.errors import CliError, Exit
from cli.fleet import firm_names
from cli.status import silence_problem
from shared import aws
from shared.version import VERSION, deployed_version
from tests.unit.test_docs_paths import cited_paths

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_given_pyproject_when_read_then_it_carries_the_version_written_in_shared_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)


def test_given_the_cli_when_run_with_version_then_it_prints_the_version_and_exits_0() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cli", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"python -m cli {VERSION}"


def test_given_a_stack_when_its_version_is_read_then_the_output_wins_and_an_old_stack_is_unknown() -> None:
    assert deployed_version({"APP_VERSION": "0.0.9"}, {"Version": VERSION}) == VERSION
    assert deployed_version({"APP_VERSION": VERSION}, {}) == VERSION
    assert deployed_version({}, None) is None


@pytest.mark.parametrize(
    ("webhook_minutes_ago", "poll_minutes_ago", "warned"),
    [
        (10, None, False),  # a webhook 10 minutes ago: fine
        (None, 59, False),  # only polling, last run within the hour
        (None, 61, True),  # neither within the hour
        (None, None, True),  # never seen at all
        (600, 1, False),  # the newest of the two counts
    ],
)
def test_given_last_webhook_and_poll_when_checked_against_an_hour_then_warned_only_when_both_are_older(
    webhook_minutes_ago: int | None, poll_minutes_ago: int | None, warned: bool
) -> None:
    def at(minutes: int | None) -> datetime | None:
        return None if minutes is None else NOW - timedelta(minutes=minutes)

    problem = silence_problem(at(webhook_minutes_ago), at(poll_minutes_ago), NOW, 60)

    assert (problem is not None) is warned
    if problem is not None:
        assert "no Ignition webhook or poll run seen" in problem
        assert "runtime.ignition.silence_warning_minutes" in problem


def test_given_a_clients_folder_when_firms_are_listed_then_the_example_and_sandbox_files_are_not_firms(
    tmp_path: Path,
) -> None:
    for name in ("example.json", "acme.json", "beta.json", "acme.sandbox.json", "notes.txt"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert firm_names(tmp_path) == ["acme", "beta"]
    with pytest.raises(CliError):
        firm_names(tmp_path / "empty-does-not-exist")


def test_given_the_changelog_then_it_has_a_section_for_this_version_and_cites_only_existing_paths() -> None:
    changelog = ROOT / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.MULTILINE)
    assert "## [Unreleased]" in text
    assert "### Added" in text and "### Upgrade notes" in text
    assert not re.search(r"\b(issue|#)\s?\d+\b", text, re.IGNORECASE)  # no tracker numbers
    missing = [written for _, written, path in cited_paths(changelog) if not path.exists()]
    assert missing == []


def _cli_commands(doc: str) -> list[list[str]]:
    """Every ``python -m cli ...`` command line in the doc, as argv (continuations and a command
    wrapped across two lines of a paragraph joined)."""
    joined = re.sub(r"\\?\n\s+(?=--)", " ", doc)
    found = []
    for match in re.finditer(r"python -m cli ([^`\n&|]*)", joined):
        words = [w.strip("\"'") for w in match.group(1).split("#")[0].split()]
        found.append([w.replace("$name", "acme") for w in words if w != "\\"])
    return found


def test_given_the_upgrade_guide_then_every_cli_command_it_cites_parses_and_make_and_cdk_steps_exist() -> (
    None
):
    doc = (ROOT / "docs" / "upgrade.md").read_text(encoding="utf-8")
    commands = _cli_commands(doc)
    assert {c[0] for c in commands} >= {"--version", "status", "doctor", "replay", "reconcile"}
    parser = build_parser()
    for argv in commands:
        if argv == ["--version"]:
            continue
        parser.parse_args(argv)  # an unknown command or option exits 2
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "make setup" in doc and re.search(r"^setup:", makefile, re.MULTILINE)
    # The same deploy command as the first deployment's (docs/deploy.md).
    assert "npx aws-cdk@2 deploy -c client=acme --no-notices" in (ROOT / "docs" / "deploy.md").read_text()
    assert "npx aws-cdk@2 deploy -c client=acme --no-notices" in doc
    assert "clients/*.json" in doc and "status --all" in doc


def test_given_firms_whose_accounts_cannot_be_read_when_status_all_then_one_line_each_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two firms' files and a shell without any AWS credentials (none in the environment,
    # no config files, no instance metadata),
    for name, region in (("acme", "ap-southeast-2"), ("kiwi", "ap-southeast-6")):
        (tmp_path / f"{name}.json").write_text(json.dumps({"region": region}), encoding="utf-8")
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # (the CLI sets the region of each firm; these restore the test process's after it)
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    stdout, stderr = io.StringIO(), io.StringIO()

    # When every firm is checked,
    code = main(
        ["status", "--all", "--clients-dir", str(tmp_path), "--no-colour"], stdout=stdout, stderr=stderr
    )
    aws.reset_clients()

    # Then each firm has its one line saying why it could not be read, and the run says unhealthy.
    assert code == Exit.UNHEALTHY, stderr.getvalue()
    lines = stdout.getvalue().splitlines()
    assert lines[0].startswith("2 of 2 firms need attention: acme, kiwi")
    for name, region in (("acme", "ap-southeast-2"), ("kiwi", "ap-southeast-6")):
        (line,) = [line for line in lines if line.startswith(name)]
        assert "UNREACHABLE" in line
        assert f"cannot read stack IgnitionXeroSync-{name} in {region}" in line
        assert "NoCredentialsError" in line


def test_given_all_and_a_client_when_status_then_usage_error() -> None:
    stderr = io.StringIO()
    code = main(["status", "--all", "--client", "acme"], stdout=io.StringIO(), stderr=stderr)
    assert code == Exit.USAGE
    assert "--all reads every firm" in stderr.getvalue()
