"""``status``, ``replay`` and ``reconcile`` against the sandbox."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.errors import Exit
from sandbox.environment import Sandbox
from shared.models.events import SyncEvent
from shared.reconcile import runs
from shared.store.dead_letter_queue import DeadLetters
from tests.integration.conftest import World
from tests.integration.test_cli_support import run_cli, write_sandbox_file

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_sandbox_file(sandbox, tmp_path / "sandbox.json")


def _dead_letter(sandbox: Sandbox, world: World, slug: str, category: str) -> SyncEvent:
    """An event for ``slug`` parked in the DLQ, as the sync function parks one."""
    assert sandbox.resources is not None
    now = datetime.now(UTC)
    event = SyncEvent(
        event_id=f"evt_{uuid.uuid4().hex[:12]}",
        event_type="client.updated",
        record_type="client",
        record_id=slug,
        group_id=slug,
        occurred_at=now,
        received_at=now,
        payload_sha256="0" * 64,
        correlation_id="test",
    )
    DeadLetters(sandbox.resources.dlq_url).send(
        event.model_dump_json(),
        group_id=slug,
        dedup_id=event.event_id,
        category=category,
        reason=f"{category}: made by the test {world.tag}",
    )
    return event


def _drain_my_dead_letters(sandbox_file: Path, world: World) -> None:
    run_cli("replay", "dlq", "--error", world.tag, sandbox_file=sandbox_file)
    world.settle()


def test_given_a_working_sandbox_when_status_then_connections_webhook_and_budget_are_shown(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    world.put_client(world.client(world.slug()))
    world.settle()

    run = run_cli("status", "--json", sandbox_file=sandbox_file)

    report = run.json()
    assert run.code == (Exit.OK if report["healthy"] else Exit.UNHEALTHY)
    assert report["xero"]["state"] == "connected"
    assert report["xero"]["tenant_id"] == sandbox.xero.tenant_id
    assert report["ignition"]["state"] == "connected"
    last = datetime.fromisoformat(report["webhooks"]["last_received"])
    assert datetime.now(UTC) - last < timedelta(minutes=5)
    assert report["xero_budget"]["calls_left_today"] < report["xero_budget"]["day_limit"]
    assert "access_token" not in run.stdout.replace("access_token_", "")


def test_given_a_dead_letter_when_status_then_unhealthy_with_its_reason(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    slug = world.slug()
    world.put_client(world.client(slug), deliver=False)
    _dead_letter(sandbox, world, slug, "xero_validation")

    run = run_cli("status", sandbox_file=sandbox_file)
    as_json = run_cli("status", "--json", sandbox_file=sandbox_file).json()
    _drain_my_dead_letters(sandbox_file, world)

    assert run.code == Exit.UNHEALTHY
    assert "NEEDS ATTENTION" in run.stdout and "dead-letter queue" in run.stdout
    assert as_json["dead_letters"]["count"] >= 1
    assert any(world.tag in r["reason"] for r in as_json["dead_letters"]["top_reasons"])


def test_given_dead_letters_when_replay_dlq_filtered_then_only_matching_events_are_applied_once(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    fixed, other = world.slug("fixed"), world.slug("other")
    world.put_client(world.client(fixed), deliver=False)
    world.put_client(world.client(other), deliver=False)
    _dead_letter(sandbox, world, fixed, "xero_validation")
    _dead_letter(sandbox, world, fixed, "xero_validation")  # parked twice: applied once
    _dead_letter(sandbox, world, other, "ambiguous_match")

    dry = run_cli("replay", "dlq", "--dry-run", "--json", "--error", world.tag, sandbox_file=sandbox_file)
    world.settle()
    nothing_after_dry_run = not world.contacts(ContactNumber=fixed)
    replay_validation = ("replay", "dlq", "--category", "xero_validation", "--error", world.tag, "--json")
    run = run_cli(*replay_validation, sandbox_file=sandbox_file)
    world.settle()
    again = run_cli(*replay_validation, sandbox_file=sandbox_file)

    assert dry.code == Exit.OK and dry.json()["replayed"] == 3 and nothing_after_dry_run
    assert run.code == Exit.OK, run.stderr
    assert run.json()["replayed"] == 2
    assert len(world.contacts(ContactNumber=fixed)) == 1
    assert not world.contacts(ContactNumber=other)
    assert again.json()["replayed"] == 0
    left = [m for m in sandbox.dead_letters() if m["body"]["record_id"] in (fixed, other)]
    assert [m["body"]["record_id"] for m in left] == [other]
    _drain_my_dead_letters(sandbox_file, world)


def test_given_archived_webhooks_when_replay_archive_then_they_run_again_without_duplicates(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=2)
    slug = world.slug()
    delivery = world.put_client(world.client(slug))["delivery"]
    world.settle()
    writes_before = world.xero_state()["requests"]["by_endpoint"].get("POST /Contacts", 0)

    run = run_cli(
        "replay",
        "archive",
        "--from",
        start.isoformat(),
        "--type",
        "client",
        "--json",
        sandbox_file=sandbox_file,
    )
    world.settle()

    assert run.code == Exit.OK, run.stderr
    assert delivery["event_id"] in [e["event_id"] for e in run.json()["events"]]
    assert len(world.contacts(ContactNumber=slug)) == 1
    # Already applied: the sync's idempotency makes the replay a no-op in Xero.
    assert world.xero_state()["requests"]["by_endpoint"].get("POST /Contacts", 0) == writes_before


def test_given_replay_archive_with_to_before_from_then_usage_error(sandbox_file: Path) -> None:
    run = run_cli(
        "replay",
        "archive",
        "--from",
        "2026-11-02T00:00Z",
        "--to",
        "2026-11-01T00:00Z",
        sandbox_file=sandbox_file,
    )

    assert run.code == Exit.USAGE


def test_given_the_sandbox_when_reconcile_now_then_the_report_location_is_printed(
    world: World, sandbox_file: Path
) -> None:
    run = run_cli("reconcile", "--now", "--json", sandbox_file=sandbox_file)

    assert run.code in (Exit.OK, Exit.UNHEALTHY), run.stderr
    result = run.json()
    assert result["run_id"] and result["status"]
    assert set(result["report"]) >= {"json", "csv", "html"}
    assert "queued" in run.stderr  # progress was shown while it ran
    latest = run_cli("reconcile", "--json", sandbox_file=sandbox_file).json()["latest"]
    assert latest is None or json.dumps(latest)


def test_given_a_requested_run_when_it_finishes_then_its_outcome_is_written_before_the_lease_goes(
    world: World, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reconcile --now` reads a lease gone without an outcome as a killed run: the function must
    never leave that gap, however the requester's polls fall."""
    assert sandbox.resources is not None
    table = sandbox.resources.state_table
    ticket = runs.new_ticket()
    assert runs.reserve(table, ticket)
    at_release: list[dict[str, object] | None] = []
    release = runs.release

    def observed_release(table_name: str, owner: str) -> None:
        if owner == ticket:
            at_release.append(runs.outcome(table_name, owner))
        release(table_name, owner)

    monkeypatch.setattr(runs, "release", observed_release)
    try:
        body = sandbox.run_reconcile({"mode": "incremental", "run_ticket": ticket})
    finally:
        release(table, ticket)

    assert at_release == [body]
    running = runs.current_run(table)
    assert running is None or running["ticket"] != ticket


def _run_in_progress(sandbox: Sandbox) -> tuple[str, str]:
    """Another reconciliation run holding the lock: the state table and that run's ticket."""
    assert sandbox.resources is not None
    table = sandbox.resources.state_table
    other = runs.new_ticket()
    assert runs.reserve(table, other) and runs.start(table, other)
    return table, other


def test_given_a_run_in_progress_when_reconcile_now_then_no_second_run_starts_and_it_is_followed(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    table, other = _run_in_progress(sandbox)  # e.g. the schedule's run
    runs.note_phase(table, other, "xero_invoices")

    def finish_later() -> None:
        time.sleep(1.5)
        runs.save_outcome(table, other, {"run_id": "r-scheduled", "status": "complete", "report": {}})
        runs.release(table, other)

    finisher = threading.Thread(target=finish_later)
    finisher.start()
    try:
        run = run_cli("reconcile", "--now", "--json", "--timeout", "30", sandbox_file=sandbox_file)
    finally:
        finisher.join()

    assert run.code == Exit.OK, run.stderr
    assert "already in progress" in run.stderr and "xero_invoices" in run.stderr
    assert run.json()["run_id"] == "r-scheduled"  # the run it followed; none of its own


def test_given_a_run_that_outlasts_the_timeout_when_reconcile_now_then_exit_paused_and_the_lock_stays(
    world: World, sandbox: Sandbox, sandbox_file: Path
) -> None:
    table, other = _run_in_progress(sandbox)
    try:
        # The shortest timeout the CLI accepts (a whole second): the other run never ends here.
        run = run_cli("reconcile", "--now", "--timeout", "1", sandbox_file=sandbox_file)
        assert run.code == Exit.PAUSED, run.stderr
        assert "carries on" in run.stderr
        running = runs.current_run(table)
        assert running is not None and running["ticket"] == other
    finally:
        runs.release(table, other)
