"""``reconcile --now`` against a deployed stack: one asynchronous invocation under the run lock, its
phases shown until the outcome is written. DynamoDB is moto's; the Lambda service is a stand-in
that, like Lambda for ``InvocationType=Event``, answers 202 at once and runs the function's part of
the contract (``shared/reconcile/runs.py``) on its own thread."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from cli import reconcile as cli_reconcile
from cli.errors import CliError, Exit
from shared import aws
from shared.reconcile import runs

REPORT = {"json": "s3://archive/reports/r.json", "csv": "s3://archive/reports/r.csv", "html": "s3://x/r.html"}


class AsyncLambda:
    """Queues the function and answers 202, as Lambda does for an Event invocation; the function
    starts under the request's ticket, goes through its phases and writes its outcome."""

    def __init__(self, table: str, *, phase_seconds: float = 0.05, phases: int = 3) -> None:
        self.table = table
        self.phase_seconds = phase_seconds
        self.phases = phases
        self.invocations: list[dict[str, Any]] = []
        self.runs_started = 0
        self._threads: list[threading.Thread] = []
        self._mutex = threading.Lock()

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        if InvocationType != "Event":
            # A synchronous call waits for the whole run behind a read timeout: the failure mode.
            raise TimeoutError("Read timeout on endpoint URL")
        event = json.loads(Payload)
        self.invocations.append(event)
        thread = threading.Thread(target=self._function, args=(event["run_ticket"],))
        thread.start()
        self._threads.append(thread)
        return {"StatusCode": 202}

    def _function(self, ticket: str) -> None:
        if not runs.start(self.table, ticket):
            return
        with self._mutex:
            self.runs_started += 1
        for phase in ("xero_contacts", "compare", "report")[: self.phases]:
            runs.note_phase(self.table, ticket, phase)
            time.sleep(self.phase_seconds)
        if self.phases < 3:
            return  # still running when the test looks
        runs.save_outcome(self.table, ticket, {"run_id": "r-1", "status": "complete", "report": REPORT})
        runs.release(self.table, ticket)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


def _stack(table: str) -> Any:
    return SimpleNamespace(
        kind="stack",
        label="stack ignition-xero-acme",
        settings=SimpleNamespace(state_table=table),
        outputs={cli_reconcile.FUNCTION_OUTPUT: "acme-reconcile"},
    )


@pytest.fixture
def fake_lambda(state_table: str, monkeypatch: pytest.MonkeyPatch) -> AsyncLambda:
    service = AsyncLambda(state_table)
    real = aws.client

    def client(name: str, *args: Any, **kwargs: Any) -> Any:
        return service if name == "lambda" else real(name, *args, **kwargs)

    monkeypatch.setattr(cli_reconcile.aws, "client", client)
    return service


def test_given_a_stack_when_reconcile_now_then_one_asynchronous_run_and_its_phases_until_the_report(
    state_table: str, fake_lambda: AsyncLambda
) -> None:
    shown: list[str] = []

    result = cli_reconcile.run_reconciliation(_stack(state_table), poll_seconds=0.01, progress=shown.append)
    fake_lambda.join()

    assert result["status"] == "complete" and result["report"] == REPORT
    assert len(fake_lambda.invocations) == 1 and fake_lambda.runs_started == 1
    assert any("compare" in line for line in shown)
    assert runs.current_run(state_table) is None  # the lock is free for the next run


def test_given_two_starts_at_once_when_reconcile_now_then_one_run_and_the_second_is_told_and_follows_it(
    state_table: str, fake_lambda: AsyncLambda
) -> None:
    results: list[dict[str, Any]] = []
    shown: list[str] = []
    gate = threading.Barrier(2)

    def operator() -> None:
        gate.wait()
        results.append(
            cli_reconcile.run_reconciliation(_stack(state_table), poll_seconds=0.01, progress=shown.append)
        )

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fake_lambda.join()

    assert len(fake_lambda.invocations) == 1 and fake_lambda.runs_started == 1
    assert [r["run_id"] for r in results] == ["r-1", "r-1"]
    assert sum("already in progress" in line for line in shown) == 1


def test_given_the_same_invocation_delivered_twice_when_the_function_starts_then_it_runs_once(
    state_table: str,
) -> None:
    ticket = runs.new_ticket()
    assert runs.reserve(state_table, ticket)

    assert runs.start(state_table, ticket) is True
    assert runs.start(state_table, ticket) is False  # Lambda's own retry of the Event: not a second run
    assert runs.reserve(state_table, runs.new_ticket()) is False  # nor a scheduled run meanwhile
    runs.release(state_table, ticket)
    assert runs.reserve(state_table, runs.new_ticket()) is True


def test_given_a_run_longer_than_the_timeout_when_reconcile_now_then_paused_and_the_run_carries_on(
    state_table: str, fake_lambda: AsyncLambda
) -> None:
    fake_lambda.phases = 1  # it will not finish while we wait

    with pytest.raises(CliError) as caught:
        cli_reconcile.run_reconciliation(_stack(state_table), timeout=0.2, poll_seconds=0.01)
    fake_lambda.join()

    assert caught.value.code == Exit.PAUSED
    assert "carries on" in str(caught.value)
    running = runs.current_run(state_table)
    assert running is not None and running["ticket"] == fake_lambda.invocations[0]["run_ticket"]
