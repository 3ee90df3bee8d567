"""The report reaches the bookkeeper: the notification carries a presigned link with the configured
lifetime, ``cli report --latest`` prints the summary and a fresh link and downloads the files, and
the report's words are plain (failure codes and config keys rewritten). S3 and DynamoDB are moto's."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import ValidationError

from bench.reconcile_fakes import Books, Files, Runs
from cli import report as cli_report
from cli.output import Output
from shared import aws
from shared.config import IntegrationConfig, ReconcileRules
from shared.reconcile.adapters import DynamoRunStore, S3Artifacts
from shared.reconcile.engine import Ports, Reconciler
from shared.reconcile.model import Discrepancy, RunCounters
from shared.reconcile.wording import FAILURES, plain, real_config_path
from tests.unit.moto_env import STATE_TABLE, fresh_state_table

BUCKET = "archive-bucket"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(aws_module: None) -> str:
    s3 = aws.client("s3")
    if not any(b["Name"] == BUCKET for b in s3.list_buckets().get("Buckets", [])):
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    return BUCKET


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


def test_given_a_run_that_needs_a_person_when_notified_then_the_message_links_the_html_report_for_the_configured_hours(  # noqa: E501
    tmp_path: Path, bucket: str
) -> None:
    # Given a run with invoices a person must look at, a notifier, and links signed for 48 hours,
    counters = RunCounters()
    books = Books(5, 5, counters)
    outbox = Outbox()
    ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=Runs(),
                  artifacts=Files(tmp_path), notifier=outbox, links=S3Artifacts(bucket))  # fmt: skip
    config = IntegrationConfig(reconcile=ReconcileRules(report_link_hours=48))
    # When the reconciliation runs,
    result = Reconciler(ports, config, client_name="acme", counters=counters, remaining_seconds=lambda: 900.0,
                        workdir=tmp_path).run("full")  # fmt: skip
    # Then the e-mail carries a SigV4 presigned GET of the HTML report, valid 48 hours, and says so.
    ((_, message),) = outbox.sent
    (url,) = re.findall(r"https?://\S+", message)
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert parsed.path.endswith(result.report["html"])
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == [str(48 * 3600)]
    # Signed with temporary credentials (a Lambda role's): the token travels, the URL dies with it.
    assert "X-Amz-Security-Token" in query
    assert "no AWS login needed" in message and "48 hours" in message and "cli report --latest" in message


@pytest.mark.parametrize(
    ("rules", "wrong"),
    [({"report_link_hours": 7 * 24 + 1}, "report_link_hours"), ({"time_zone": "Sydney"}, "time_zone")],
)
def test_given_a_link_longer_than_sigv4_allows_or_an_unknown_zone_when_configured_then_refused(
    rules: dict[str, Any], wrong: str
) -> None:
    with pytest.raises(ValidationError, match=wrong):
        ReconcileRules.model_validate(rules)


def _saved_run(bucket: str, tmp_path: Path) -> dict[str, str]:
    fresh_state_table()
    keys = {kind: f"reports/2026/11/26/r-1/report.{kind}" for kind in ("json", "csv", "html")}
    for kind, key in keys.items():
        source = tmp_path / f"source.{kind}"
        source.write_text(f"<{kind} body>", encoding="utf-8")
        S3Artifacts(bucket).put_file(key, source, "text/plain")
    DynamoRunStore(STATE_TABLE).save_latest(
        {"run_id": "r-1", "status": "complete", "mode": "full", "started_at": "2026-11-26T23:30:00+00:00",
         "finished_at": "2026-11-26T23:31:00+00:00", "summary": {"field_drift": 2, "dead_letter": 1},
         "report": keys, "healed": 0, "needs_person": 3, "counters": {}}
    )  # fmt: skip
    return keys


def _target(bucket: str) -> Any:
    return SimpleNamespace(
        settings=SimpleNamespace(state_table=STATE_TABLE, archive_bucket=bucket), config=IntegrationConfig()
    )


def test_given_a_stored_run_when_report_latest_downloaded_and_opened_then_summary_link_files_and_browser(
    tmp_path: Path, bucket: str
) -> None:
    # Given a stored run and its three report files in the archive bucket,
    keys = _saved_run(bucket, tmp_path)
    opened: list[str] = []
    stdout = io.StringIO()
    args = argparse.Namespace(latest=True, download=tmp_path / "out", open=True)
    # When the operator asks for the latest report, downloaded and opened,
    code = cli_report.run(args, _target(bucket), Output(json_mode=False, stdout=stdout, stderr=io.StringIO()),
                          opened.append)  # fmt: skip
    text = stdout.getvalue()
    # Then the summary reads in plain words and Sydney time, with a link valid the default 7 days,
    assert code == 0
    assert (
        "27 Nov 2026, 10:30 AEDT" in text and "Values differ: 2" in text and "3 item(s) need a person" in text
    )
    (url,) = re.findall(r"https?://\S+", text)
    assert keys["html"] in url and parse_qs(urlparse(url).query)["X-Amz-Expires"] == [str(7 * 24 * 3600)]
    # the three files saved under the run's id, and the HTML opened from the saved copy.
    folder = tmp_path / "out" / "r-1"
    assert {p.name for p in folder.iterdir()} == {"report.html", "report.csv", "report.json"}
    assert (folder / "report.csv").read_text() == "<csv body>"
    assert opened == [(folder / "report.html").resolve().as_uri()]


def test_given_no_run_yet_when_report_latest_as_json_then_a_json_document_saying_so(
    tmp_path: Path, bucket: str
) -> None:
    fresh_state_table()
    stdout = io.StringIO()
    args = argparse.Namespace(latest=True, download=None, open=False)
    code = cli_report.run(args, _target(bucket), Output(json_mode=True, stdout=stdout, stderr=io.StringIO()),
                          lambda url: None)  # fmt: skip
    assert code == 0 and json.loads(stdout.getvalue()) == {"latest": None}


def test_given_the_syncs_failure_codes_then_each_has_plain_words_and_config_keys_point_to_the_real_file() -> (
    None
):
    # Every failure category the sync raises (PermanentSyncError(category=...)) has words.
    raised: set[str] = set()
    for path in (ROOT / "shared").rglob("*.py"):
        raised.update(re.findall(r'category="([a-z_]+)"', path.read_text(encoding="utf-8")))
    engine_categories = {"dead_letter", "duplicate_in_xero", "field_drift", "missing_in_xero", "not_applied",
                         "not_mapped", "orphan_in_xero", "archived_in_xero", "mapped_missing_in_xero",
                         "written_by_ignition", "receives_exhausted", "unexpected_error"}  # fmt: skip
    assert raised - engine_categories - set(FAILURES) == set()
    assert (
        real_config_path("set invoices.number_field to 'Reference'", "acme")
        == "set runtime.invoices.number_field in clients/acme.json to 'Reference'"
    )
    letter = Discrepancy(
        category="dead_letter",
        record_type="client",  # type: ignore[arg-type]
        ignition_id="cli_1",
        detail="ambiguous_match: 2 contacts share a@b.example",
    )
    happened, action, detail = plain(letter, "acme")
    assert happened.startswith("Several Xero contacts fit") and "Merge" in action
    assert detail == "2 contacts share a@b.example"
