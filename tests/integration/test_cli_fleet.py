"""``status --all`` over several firms configured against the sandbox: one healthy, one with a dead
letter and no Ignition source seen, one whose sandbox is not running, one seen by polling only."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.app import main
from cli.errors import Exit
from sandbox.environment import Sandbox
from shared import aws
from shared.models.poll import PollState
from shared.store.dead_letter_queue import DeadLetters
from shared.store.poll_state import DynamoPollStateStore
from shared.version import VERSION
from tests.integration.conftest import World
from tests.integration.test_cli_support import CliRun
from tests.unit.moto_env import fresh_state_table

pytestmark = pytest.mark.integration


def _own_resources(tag: str) -> dict[str, str]:
    """A firm's own state table, DLQ and archive bucket, so its readings are its own."""
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    table = f"fleet-state-{tag}"
    fresh_state_table(table)
    dlq = sqs.create_queue(QueueName=f"fleet-dlq-{tag}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    bucket = f"fleet-archive-{tag}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    return {"STATE_TABLE_NAME": table, "DLQ_URL": dlq, "ARCHIVE_BUCKET_NAME": bucket}


def _firm(clients: Path, sandbox: Sandbox, name: str, environment: dict[str, str] | None) -> None:
    """clients/<name>.json, and (unless None) the sandbox file the firm is reached through."""
    (clients / f"{name}.json").write_text(json.dumps({"region": "ap-southeast-2"}), encoding="utf-8")
    if environment is None:
        return
    info = sandbox.info()
    info["environment"] = {**info["environment"], **environment}
    (clients / f"{name}.sandbox.json").write_text(json.dumps(info) + "\n", encoding="utf-8")


def _fleet(clients: Path, *extra: str) -> CliRun:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(
        ["status", "--all", "--sandbox", "--clients-dir", str(clients), "--no-colour", *extra],
        stdout=stdout,
        stderr=stderr,
    )
    return CliRun(code, stdout.getvalue(), stderr.getvalue())


def _dead_letter(dlq_url: str, tag: str) -> None:
    event: dict[str, Any] = {"event_id": f"evt_{tag}", "record_type": "client", "record_id": "cli_x"}
    DeadLetters(dlq_url).send(
        json.dumps(event),
        group_id="cli_x",
        dedup_id=f"evt_{tag}",
        category="xero_validation",
        reason="xero_validation: made by the fleet test",
    )


def test_given_four_firms_healthy_dead_letter_unreachable_poll_only_when_status_all_json_then_one_line_each(
    world: World, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Given: alpha healthy (a webhook just arrived in the shared archive), bravo with a dead letter
    # and an archive no webhook ever reached, charlie configured but its sandbox not running; and
    # the example file new firms copy, which is no firm; delta polls only (no webhook ever, a poll
    # run a minute ago, as the poller records it).
    world.put_client(world.client(world.slug("fleet")))
    world.settle()
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "example.json").write_text("{}", encoding="utf-8")
    alpha = _own_resources(f"a{uuid.uuid4().hex[:8]}")
    del alpha["ARCHIVE_BUCKET_NAME"]  # the sandbox's own archive, with the webhook just received
    bravo = _own_resources(f"b{uuid.uuid4().hex[:8]}")
    _dead_letter(bravo["DLQ_URL"], world.tag)
    _firm(clients, sandbox, "alpha", alpha)
    _firm(clients, sandbox, "bravo", bravo)
    _firm(clients, sandbox, "charlie", None)
    delta = _own_resources(f"d{uuid.uuid4().hex[:8]}")
    polled_at = datetime.now(UTC) - timedelta(minutes=1)
    DynamoPollStateStore(delta["STATE_TABLE_NAME"]).save(
        PollState(runs=7, last_run_at=polled_at, last_queued=2)
    )
    _firm(clients, sandbox, "delta", delta)

    # When
    run = _fleet(clients, "--json")
    text = _fleet(clients)

    # Then: exit 3 (some firm unhealthy), one entry per firm in name order, the example skipped
    assert run.code == Exit.UNHEALTHY, run.stderr
    report = run.json()
    firms = {firm["client"]: firm for firm in report["firms"]}
    assert [firm["client"] for firm in report["firms"]] == ["alpha", "bravo", "charlie", "delta"]
    assert report["healthy"] is False and report["unhealthy"] == ["bravo", "charlie"]

    assert firms["alpha"]["healthy"] is True, firms["alpha"]["problems"]
    assert firms["alpha"]["version"] == VERSION  # from the functions' environment (the template's)
    assert firms["alpha"]["dead_letters"] == 0
    assert datetime.now(UTC) - datetime.fromisoformat(firms["alpha"]["last_webhook"]) < timedelta(minutes=5)
    assert firms["alpha"]["last_reconciliation"] is None

    assert firms["bravo"]["reachable"] is True and firms["bravo"]["healthy"] is False
    assert firms["bravo"]["dead_letters"] == 1
    assert firms["bravo"]["last_webhook"] is None and firms["bravo"]["last_poll"] is None
    assert any("dead-letter queue" in p for p in firms["bravo"]["problems"])
    assert any("no Ignition webhook or poll run seen ever" in p for p in firms["bravo"]["problems"])

    assert firms["charlie"]["reachable"] is False
    assert firms["charlie"]["problems"][0].startswith("unreachable: no sandbox running")

    # a recent poll run is a source seen: no silence warning without any webhook
    assert firms["delta"]["healthy"] is True, firms["delta"]["problems"]
    assert firms["delta"]["last_webhook"] is None
    assert datetime.fromisoformat(firms["delta"]["last_poll"]) == polled_at

    # and for people: one line per firm, the unreachable one saying why
    assert text.code == Exit.UNHEALTHY
    lines = text.stdout.splitlines()
    assert lines[0].startswith("2 of 4 firms need attention: bravo, charlie")
    firm_lines = [line for line in lines if line.split(" ", 1)[0] in firms]
    assert [line.split(" ", 1)[0] for line in firm_lines] == ["alpha", "bravo", "charlie", "delta"]
    assert "healthy" in firm_lines[0] and VERSION in firm_lines[0]
    assert "DLQ 1" in firm_lines[1]
    assert "UNREACHABLE" in firm_lines[2] and "charlie.sandbox.json does not exist" in firm_lines[2]


def test_given_only_the_example_file_when_status_all_then_exit_config_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "example.json").write_text("{}", encoding="utf-8")

    run = _fleet(tmp_path)

    assert run.code == Exit.CONFIG
    assert "no firms" in run.stderr and "--clients-dir" in run.stderr
