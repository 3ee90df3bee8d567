"""``cli report --latest`` against the sandbox: after a real reconciliation run, the printed link
opens the HTML report over plain HTTP with no AWS credentials, and ``--download``/``--open`` save
the three files and open the saved HTML."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx
import pytest

from cli.errors import Exit
from sandbox.environment import Sandbox
from tests.integration.conftest import World
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_sandbox_file(sandbox, tmp_path / "sandbox.json")


@pytest.mark.skipif(importlib.util.find_spec("functions.reconcile") is None, reason="no reconcile function")
def test_given_a_finished_run_when_report_latest_then_its_link_opens_the_html_without_aws_and_download_saves(
    world: World, sandbox_file: Path, tmp_path: Path
) -> None:
    # Given a reconciliation that has run in the sandbox,
    ran = run_cli("reconcile", "--now", "--json", sandbox_file=sandbox_file)
    assert ran.code in (Exit.OK, Exit.UNHEALTHY), ran.stderr
    run_id = ran.json()["run_id"]
    opened: list[str] = []
    # When the operator asks for the latest report, downloaded and opened,
    shown = run_cli(
        "report", "--latest", "--download", str(tmp_path / "out"), "--open", "--json",
        sandbox_file=sandbox_file, opener=opened.append,
    )  # fmt: skip
    # Then the link opens the HTML report with no AWS credentials at all (a bookkeeper's browser),
    assert shown.code == Exit.OK, shown.stderr
    document = shown.json()
    assert document["latest"]["run_id"] == run_id
    page = httpx.get(document["link"], timeout=10)
    assert page.status_code == 200 and "Xero &harr; Ignition reconciliation" in page.text
    # and the three files are saved under the run's id, the saved HTML opened in the browser.
    folder = tmp_path / "out" / run_id
    assert sorted(p.name for p in folder.iterdir()) == ["report.csv", "report.html", "report.json"]
    assert (folder / "report.html").read_text(encoding="utf-8") == page.text
    assert opened == [(folder / "report.html").resolve().as_uri()]
