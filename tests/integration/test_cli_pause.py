"""``pause`` / ``resume`` against the sandbox: nothing reaches Xero while paused, nothing is lost,
everything lands once after."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli.errors import Exit
from sandbox.environment import Sandbox
from shared import aws
from tests.integration.conftest import World
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_sandbox_file(sandbox, tmp_path / "sandbox.json")


def test_given_a_paused_sync_when_webhooks_arrive_then_they_stay_queued_and_land_once_after_resume(
    sandbox: Sandbox, sandbox_file: Path, world: World
) -> None:
    assert sandbox.control_watcher is not None
    slugs = [world.slug(f"paused{index}") for index in range(3)]
    paused = run_cli("pause", "--json", sandbox_file=sandbox_file)
    try:
        assert paused.code == Exit.OK, paused.stderr
        assert paused.json()["paused"] is True
        assert {s["kind"] for s in paused.json()["switches"]} == {"event_source_mapping", "schedule"}
        rules = sandbox.controls.schedule_rules.values()
        assert all(aws.client("events").describe_rule(Name=r)["State"] == "DISABLED" for r in rules)
        time.sleep(1.5)  # the sandbox's Lambda service reads the switches twice a second
        assert not sandbox.control_watcher.schedule_enabled("poll")
        assert not sandbox.control_watcher.schedule_enabled("reconcile")

        for slug in slugs:
            world.put_client(world.client(slug))  # Ignition delivers the webhook; ingest queues it
        time.sleep(3)  # long enough for the sync to have written them, were it running

        waiting, _ = sandbox.queue_depth()
        shown = run_cli("status", sandbox_file=sandbox_file)
        in_xero_while_paused = [s for s in slugs if world.contacts(ContactNumber=s)]
    finally:
        resumed = run_cli("resume", "--json", sandbox_file=sandbox_file)

    assert waiting >= len(slugs)
    assert in_xero_while_paused == []
    assert "PAUSED" in shown.stdout and "python -m cli resume" in shown.stdout
    assert resumed.code == Exit.OK, resumed.stderr
    assert resumed.json()["paused"] is False
    world.settle()
    assert all(len(world.contacts(ContactNumber=s)) == 1 for s in slugs)
    assert run_cli("status", "--json", sandbox_file=sandbox_file).json()["sync"]["paused"] is False


def test_given_a_paused_sandbox_when_resumed_twice_then_the_second_is_a_no_op(sandbox_file: Path) -> None:
    first = run_cli("resume", "--json", sandbox_file=sandbox_file)
    second = run_cli("resume", sandbox_file=sandbox_file)

    assert first.code == second.code == Exit.OK
    assert "Resumed" in second.stdout and "Disabled" not in second.stdout
