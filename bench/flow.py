"""Benchmarks that run the real handlers in the local sandbox (moto server, Xero and Ignition
emulators, the API Gateway front and the SQS event source of ``sandbox/``).

* warm latency of the ingest and sync handlers, called in-process, with the time inside boto3 and
  httpx calls attributed separately (``bench.core.CallTimer``);
* steady state: webhooks sent one at a time through the API front, each waited for: Xero calls per
  record by record type and latency from webhook received to record in Xero;
* burst: N client webhooks already received when the sync starts, drained against the emulator
  enforcing Xero's minute and concurrency limits (time-compressed by ``k``, see ``BurstPlan``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import payloads
from bench.core import Sample, log, summary, timed
from sandbox.environment import WEBHOOK_SECRET, Sandbox, SandboxOptions
from sandbox.iam import acting_as
from sandbox.runtime import LambdaContext, SqsEventSource
from shared import aws
from shared.models.xero import parse_xero_datetime

# Effectively no limit: the emulator and the budget are out of the way for latency runs.
UNLIMITED_PER_MINUTE = 100_000
UNLIMITED_PER_DAY = 10_000_000
XERO_PER_MINUTE = 60
XERO_CONCURRENT = 5
# The client's own budget, a little under Xero's (shared.config.XeroConfig default).
BUDGET_PER_MINUTE = 55
SYNC_CONCURRENCY = 2
SYNC_TIMEOUT_SECONDS = 60


def api_calls(state: dict[str, Any]) -> int:
    """Accounting API calls (what Xero's limits count); identity (token) calls excluded."""
    by_endpoint: dict[str, int] = state["requests"]["by_endpoint"]
    return sum(
        n for label, n in by_endpoint.items() if " /connect" not in label and "/connections" not in label
    )


def status_count(state: dict[str, Any], status: int) -> int:
    return int(state["requests"]["by_status"].get(str(status), 0))


def xero_time(record: dict[str, Any]) -> float | None:
    """When the emulator last wrote the record (its UpdatedDateUTC, ms precision), epoch seconds."""
    stamp = parse_xero_datetime(record.get("UpdatedDateUTC"))
    return stamp.timestamp() if stamp else None


class Harness:
    """One sandbox for every flow benchmark, with the poller under the benchmark's control."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.sandbox = Sandbox(
            SandboxOptions(
                xero_calls_per_minute=UNLIMITED_PER_MINUTE,
                xero_calls_per_day=UNLIMITED_PER_DAY,
                xero_limits={
                    "per_minute": UNLIMITED_PER_MINUTE,
                    "per_day": UNLIMITED_PER_DAY,
                    "app_per_minute": UNLIMITED_PER_MINUTE,
                },
                sync_concurrency=SYNC_CONCURRENCY,
                log_level="ERROR",
                prefix="bench",
            )
        )
        self.http = httpx.Client(timeout=60, trust_env=False)
        self._queue_arn: str | None = None

    def start(self) -> Harness:
        self.sandbox.start()
        return self

    def stop(self) -> None:
        self.http.close()
        self.sandbox.stop()

    # -- what the benchmarks use -----------------------------------------------------------------

    @property
    def queue_url(self) -> str:
        assert self.sandbox.resources is not None
        return self.sandbox.resources.queue_url

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attributes = aws.client("sqs").get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]
            self._queue_arn = str(attributes["QueueArn"])
        return self._queue_arn

    def xero_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        return state

    def pause_sync(self) -> None:
        assert self.sandbox.poller is not None
        self.sandbox.poller.stop()

    def resume_sync(self, concurrency: int = SYNC_CONCURRENCY) -> None:
        """A new event source, built as ``Sandbox.start`` builds it (a stopped one cannot restart)."""
        assert self.sandbox.sync is not None
        options = self.sandbox.options
        extra: dict[str, Any] = {}
        if getattr(options, "isolated_sync_workers", False):  # one handler per worker, as Lambda
            extra["handler_factory"] = self.sandbox._sync_worker
        poller = SqsEventSource(
            queue_url=self.queue_url,
            handler=self.sandbox.sync,
            function_name="sync",
            timeout_seconds=getattr(options, "sync_timeout_seconds", SYNC_TIMEOUT_SECONDS),
            concurrency=concurrency,
            batch_size=getattr(options, "sync_batch_size", 10),
            **extra,
        )
        self.sandbox.poller = poller
        poller.start()

    def purge_queue(self) -> None:
        sqs = aws.client("sqs")
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    def set_limits(self, *, per_minute: int, per_day: int, concurrent: int, budget_per_minute: int) -> None:
        """The emulator's limits, and the sync function's budget (a redeploy: cold-starts it)."""
        self.sandbox.set_xero_limits(
            per_minute=per_minute,
            per_day=per_day,
            concurrent=concurrent,
            app_per_minute=max(per_minute, 10_000),
        )
        self.sandbox.reconfigure(xero={"calls_per_minute": budget_per_minute, "calls_per_day": per_day})

    def post_webhook(self, body: bytes) -> int:
        response = self.http.post(
            self.sandbox.info()["webhook_url"],
            content=body,
            headers=payloads.signed_headers(body, WEBHOOK_SECRET, self.sandbox.webhook),
        )
        return response.status_code

    def ingest_event(self, body: bytes) -> dict[str, Any]:
        return payloads.api_gateway_event(
            body, payloads.signed_headers(body, WEBHOOK_SECRET, self.sandbox.webhook)
        )

    def call_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.sandbox.ingest is not None
        with acting_as(self.sandbox.role("ingest")):  # under its own role, as the sandbox runs it
            result: dict[str, Any] = self.sandbox.ingest(event, LambdaContext("ingest", 10))
        return result

    def receive(self, count: int, attempts: int = 10) -> list[dict[str, Any]]:
        # Short polls: moto's FIFO long poll spins a CPU (see sandbox.runtime).
        for _ in range(attempts):
            messages: list[dict[str, Any]] = (
                aws.client("sqs")
                .receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                .get("Messages", [])
            )
            if messages:
                return messages
            time.sleep(0.1)
        return []

    def delete(self, messages: list[dict[str, Any]]) -> None:
        sqs = aws.client("sqs")
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def call_sync(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.sandbox.sync is not None
        event = payloads.sqs_event(messages, self.queue_arn)
        with acting_as(self.sandbox.role("sync")):
            result: dict[str, Any] = dict(
                self.sandbox.sync(event, LambdaContext("sync", SYNC_TIMEOUT_SECONDS)) or {}
            )
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:  # what the event source mapping does after the invocation (not timed)
            aws.client("sqs").delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return result


# --- warm handler latency -------------------------------------------------------------------------


@dataclass
class WarmResult:
    function: str
    samples: list[Sample]
    warmup: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        ms = 1000.0
        calls: dict[str, float] = {}
        for sample in self.samples:
            for name, n in sample.aws_calls.items():
                calls[name] = calls.get(name, 0) + n
        n = len(self.samples)
        return {
            "iterations": n,
            "warmup": self.warmup,
            "seconds": round(self.seconds, 1),
            "total_ms": summary([s.total * ms for s in self.samples]),
            "excluding_aws_ms": summary([(s.total - s.aws) * ms for s in self.samples]),
            "excluding_aws_and_http_ms": summary([s.own * ms for s in self.samples]),
            "cpu_excluding_aws_ms": summary([(s.cpu_total - s.cpu_aws) * ms for s in self.samples]),
            "cpu_excluding_aws_and_http_ms": summary([s.own_cpu * ms for s in self.samples]),
            "aws_ms": summary([s.aws * ms for s in self.samples]),
            "http_ms": summary([s.http * ms for s in self.samples]),
            "aws_calls_per_invocation": {k: round(v / n, 3) for k, v in sorted(calls.items())},
            "http_calls_per_invocation": round(sum(s.http_calls for s in self.samples) / n, 3),
        }


def warm_ingest(h: Harness, iterations: int, warmup: int, max_seconds: float, first_index: int) -> WarmResult:
    """The ingest handler called in-process with a new signed ~5 KB client webhook each time.
    The sync is paused, so the queued events wait for ``warm_sync``."""
    samples: list[Sample] = []
    started = time.monotonic()
    for i in range(warmup + iterations):
        body = payloads.envelope("client.created", payloads.client_record(first_index + i))
        event = h.ingest_event(body)
        result, sample = timed(lambda event=event: h.call_ingest(event))  # type: ignore[misc]
        if result["statusCode"] != 202:
            raise RuntimeError(f"ingest answered {result['statusCode']}: {result.get('body')}")
        if i >= warmup:
            samples.append(sample)
            if time.monotonic() - started > max_seconds and len(samples) >= 30:
                break
    return WarmResult("ingest", samples, warmup, time.monotonic() - started)


def warm_sync(h: Harness, iterations: int, warmup: int, max_seconds: float) -> WarmResult:
    """The sync handler called in-process with one queued event per invocation (a new client:
    its Xero search and create, the mapping, audit and idempotency records)."""
    samples: list[Sample] = []
    started = time.monotonic()
    done = 0
    while done < warmup + iterations:
        messages = h.receive(1)
        if not messages:
            break
        result, sample = timed(lambda messages=messages: h.call_sync(messages))  # type: ignore[misc]
        if result.get("batchItemFailures"):
            raise RuntimeError(f"sync failed: {result}")
        done += 1
        if done > warmup:
            samples.append(sample)
            if time.monotonic() - started > max_seconds and len(samples) >= 20:
                break
    return WarmResult("sync", samples, warmup, time.monotonic() - started)


# --- steady state: one webhook at a time ---------------------------------------------------------


def _invoice(index: int, client_slug: str) -> dict[str, Any]:
    return payloads.invoice_record(
        f"inv_bench_{index:06d}",
        f"BENCH-{index:06d}",
        client_slug,
        net="1000.00",
        total="1100.00",
        description="Monthly bookkeeping",
        date="2026-11-02",
        due_date="2026-11-30",
    )


def _payment(index: int, client_slug: str, invoice_slug: str) -> dict[str, Any]:
    return payloads.payment_record(f"pypay_bench_{index:06d}", client_slug, invoice_slug, "1100.00")


@dataclass(frozen=True)
class SteadyStep:
    """One webhook of the steady-state mix: what it is and the record it carries."""

    kind: str  # new_client | client_update | invoice | payment
    event_type: str
    record: dict[str, Any]


def steady_mix(clients: int, first_index: int) -> list[SteadyStep]:
    """``clients`` new clients, then one update of each (a new e-mail: a field Xero holds), then an
    invoice and its payment for half of them, in the order they are sent. The bench sends them
    through the sandbox; tests/unit/test_steady_state_calls.py replays the same mix in-process to
    pin the calls each kind costs."""
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    indices = [first_index + i for i in range(clients)]
    steps = [SteadyStep("new_client", "client.created", payloads.client_record(index)) for index in indices]
    for n, index in enumerate(indices):
        updated = (base + timedelta(hours=1, minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        record = payloads.client_record(index, updated_at=updated, email=f"changed{index}@bench-client.test")
        steps.append(SteadyStep("client_update", "client.updated", record))
    for index in indices[: max(1, clients // 2)]:
        slug = payloads.client_record(index)["slug"]
        inv = _invoice(index, slug)
        steps.append(SteadyStep("invoice", "invoice.created", inv))
        steps.append(SteadyStep("payment", "payment.created", _payment(index, slug, inv["slug"])))
    return steps


@dataclass
class SteadyEvent:
    kind: str  # new_client | client_update | invoice | payment
    xero_calls: int
    latency_s: float | None
    calls_by_endpoint: dict[str, int]


@dataclass
class SteadyResult:
    events: list[SteadyEvent] = field(default_factory=list)

    def by_kind(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind in ("new_client", "client_update", "invoice", "payment"):
            chosen = [e for e in self.events if e.kind == kind]
            if not chosen:
                continue
            endpoints: dict[str, int] = {}
            for event in chosen:
                for label, n in event.calls_by_endpoint.items():
                    endpoints[label] = endpoints.get(label, 0) + n
            latencies = [e.latency_s * 1000 for e in chosen if e.latency_s is not None]
            out[kind] = {
                "records": len(chosen),
                "xero_calls": sum(e.xero_calls for e in chosen),
                "calls_per_record": round(sum(e.xero_calls for e in chosen) / len(chosen), 3),
                "by_endpoint": endpoints,
                "latency_ms": summary(latencies, 0) if latencies else None,
            }
        return out

    @property
    def calls_per_record(self) -> float:
        return sum(e.xero_calls for e in self.events) / len(self.events)

    def latencies_ms(self) -> list[float]:
        return [e.latency_s * 1000 for e in self.events if e.latency_s is not None]


def steady_state(h: Harness, clients: int, first_index: int) -> SteadyResult:
    """The steady mix (``steady_mix``): every webhook through the API front, the next sent once the
    sandbox is idle again."""
    result = SteadyResult()

    def deliver(
        kind: str, event_type: str, data: dict[str, Any], find: Callable[[dict[str, Any]], Any]
    ) -> None:
        before = h.xero_state()
        sent = time.time()
        status = h.post_webhook(payloads.envelope(event_type, data))
        if status != 202:
            raise RuntimeError(f"{kind}: webhook answered {status}")
        h.sandbox.wait_until_idle(timeout=120, settle=0.2)
        after = h.xero_state()
        record = find(after)
        landed = xero_time(record) if record else None
        delta = {
            label: n - before["requests"]["by_endpoint"].get(label, 0)
            for label, n in after["requests"]["by_endpoint"].items()
            if n - before["requests"]["by_endpoint"].get(label, 0)
        }
        result.events.append(
            SteadyEvent(
                kind,
                api_calls(after) - api_calls(before),
                (landed - sent) if landed is not None else None,
                delta,
            )
        )

    def contact(slug: str) -> Callable[[dict[str, Any]], Any]:
        return lambda state: next((c for c in state["Contacts"] if c.get("ContactNumber") == slug), None)

    def invoice(slug: str) -> Callable[[dict[str, Any]], Any]:
        return lambda state: next((i for i in state["Invoices"] if i.get("Reference") == slug), None)

    def payment(invoice_slug: str) -> Callable[[dict[str, Any]], Any]:
        def find(state: dict[str, Any]) -> Any:
            inv = invoice(invoice_slug)(state)
            wanted = inv.get("InvoiceID") if inv else None
            return next(
                (p for p in state["Payments"] if (p.get("Invoice") or {}).get("InvoiceID") == wanted), None
            )

        return find

    def landed(step: SteadyStep) -> Callable[[dict[str, Any]], Any]:
        if step.kind in ("new_client", "client_update"):
            return contact(step.record["slug"])
        if step.kind == "invoice":
            return invoice(step.record["slug"])
        return payment(step.record["invoices"][0]["slug"])

    for step in steady_mix(clients, first_index):
        deliver(step.kind, step.event_type, step.record, landed(step))
    return result


# --- burst: N webhooks at once, drained under Xero's limits ---------------------------------------


@dataclass
class BurstPlan:
    """How the drain is made to fit in a few minutes.

    ``k`` compresses time: the emulator allows ``60 k`` calls a minute (5 concurrent, unchanged)
    and the sync's budget ``55 k``, so one real minute holds what Xero allows in ``k`` minutes,
    with the same fixed-window behaviour. A drain measured in ``t`` seconds stands for ``t k``
    seconds at Xero's real limits, provided the sandbox itself can go faster than ``60 k`` calls a
    minute (``capacity_calls_per_minute`` is checked for that)."""

    records: int
    k: int
    capacity_calls_per_minute: float
    calls_per_record_estimate: float

    @property
    def per_minute(self) -> int:
        return XERO_PER_MINUTE * self.k

    @property
    def budget_per_minute(self) -> int:
        return BUDGET_PER_MINUTE * self.k


def plan_burst(
    sync_seconds_per_record: float,
    calls_per_record: float,
    *,
    target_floor_seconds: float = 150.0,
    records: int | None = None,
    k: int | None = None,
) -> BurstPlan:
    """Choose ``k`` so the limit, not the sandbox, is the bottleneck (half the measured pipeline
    capacity), and N so that the drain's floor is about ``target_floor_seconds`` (at most 5,000)."""
    # Two pollers share two cores with moto, the emulators and the ingest: a drain reached about a
    # quarter of 2 / (warm sync time) on this kind of machine (k=8 was sandbox-bound at 284 calls/min).
    capacity = SYNC_CONCURRENCY * 0.25 / max(sync_seconds_per_record, 1e-3) * calls_per_record * 60
    chosen_k = k or max(1, int(capacity / 2 / XERO_PER_MINUTE))
    chosen_n = records or int(
        target_floor_seconds / 60 * XERO_PER_MINUTE * chosen_k / max(calls_per_record, 0.02)
    )
    return BurstPlan(max(10, min(5_000, chosen_n)), chosen_k, capacity, calls_per_record)


@dataclass
class BurstResult:
    plan: BurstPlan
    received: int
    landed: int
    drain_seconds: float
    xero_calls: int
    rate_limited_429: int
    latencies_s: list[float]
    dead_letters: int
    by_endpoint: dict[str, int]
    ingest_seconds: float
    retried_records: int

    @property
    def calls_per_record(self) -> float:
        return self.xero_calls / max(self.landed, 1)

    @property
    def floor_seconds(self) -> float:
        """The least time Xero's minute limit allows for the calls this drain made."""
        return self.xero_calls / self.plan.per_minute * 60

    @property
    def achieved_per_minute(self) -> float:
        return self.xero_calls / self.drain_seconds * 60 if self.drain_seconds else 0.0

    @property
    def sandbox_bound(self) -> bool:
        """The sandbox, not the budget, set the pace: the measurement is not about the limit."""
        return self.achieved_per_minute < 0.9 * self.plan.budget_per_minute and self.ratio > 1.2

    @property
    def ratio(self) -> float:
        return self.drain_seconds / self.floor_seconds if self.floor_seconds else math.inf

    def as_json(self) -> dict[str, Any]:
        return {
            "records": self.plan.records,
            "time_compression_k": self.plan.k,
            "emulator_per_minute": self.plan.per_minute,
            "budget_per_minute": self.plan.budget_per_minute,
            "sandbox_capacity_calls_per_minute_estimate": round(self.plan.capacity_calls_per_minute),
            "received": self.received,
            "landed_in_xero": self.landed,
            "dead_letters": self.dead_letters,
            "drain_seconds_measured": round(self.drain_seconds, 2),
            "drain_seconds_at_real_limits": round(self.drain_seconds * self.plan.k, 1),
            "floor_seconds_measured": round(self.floor_seconds, 2),
            "ratio_to_floor": round(self.ratio, 3),
            "achieved_calls_per_minute": round(self.achieved_per_minute, 1),
            "sandbox_bound": self.sandbox_bound,
            "xero_calls": self.xero_calls,
            "calls_per_record": round(self.calls_per_record, 3),
            "by_endpoint": self.by_endpoint,
            "http_429": self.rate_limited_429,
            "sync_records_retried": self.retried_records,
            "latency_ms_measured": summary([x * 1000 for x in self.latencies_s], 0)
            if self.latencies_s
            else None,
            "ingest_seconds": round(self.ingest_seconds, 1),
        }


def burst(h: Harness, plan: BurstPlan, first_index: int, *, invoices: bool = False) -> BurstResult:
    """Queue ``plan.records`` new-client webhooks (``invoices``: one new invoice each for clients
    already in Xero, those of an earlier client burst from ``first_index``) through the ingest
    handler with the sync paused (they have all arrived), then start the sync at the start of a
    minute window and time until the last record is written to Xero."""
    h.set_limits(
        per_minute=plan.per_minute,
        per_day=UNLIMITED_PER_DAY,
        concurrent=XERO_CONCURRENT,
        budget_per_minute=plan.budget_per_minute,
    )
    h.pause_sync()
    slugs: set[str] = set()
    started_ingest = time.monotonic()
    lock = threading.Lock()

    def one(index: int) -> None:
        client = payloads.client_record(index)
        record = _invoice(index, client["slug"]) if invoices else client
        event_type = "invoice.created" if invoices else "client.created"
        result = h.call_ingest(h.ingest_event(payloads.envelope(event_type, record)))
        if result["statusCode"] != 202:
            raise RuntimeError(f"burst ingest answered {result['statusCode']}")
        with lock:
            slugs.add(record["slug"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(first_index, first_index + plan.records)))
    ingest_seconds = time.monotonic() - started_ingest
    before = h.xero_state()
    # Start on a fresh minute window (both the emulator's and the budget's are wall-clock minutes),
    # so the measurement does not depend on where in a window it began.
    time.sleep(60 - time.time() % 60 + 0.2)
    t0 = time.time()
    h.resume_sync()
    assert h.sandbox.poller is not None
    expected_floor = plan.records * plan.calls_per_record_estimate / plan.per_minute * 60
    h.sandbox.wait_until_idle(timeout=max(600.0, expected_floor * 6), settle=1.0)
    after = h.xero_state()
    resource, key = ("Invoices", "Reference") if invoices else ("Contacts", "ContactNumber")
    times = [t for c in after[resource] if c.get(key) in slugs and (t := xero_time(c)) is not None]
    by_endpoint = {
        label: n - before["requests"]["by_endpoint"].get(label, 0)
        for label, n in after["requests"]["by_endpoint"].items()
        if n - before["requests"]["by_endpoint"].get(label, 0)
    }
    return BurstResult(
        plan=plan,
        received=len(slugs),
        landed=len(times),
        drain_seconds=(max(times) - t0) if times else math.inf,
        xero_calls=api_calls(after) - api_calls(before),
        rate_limited_429=status_count(after, 429) - status_count(before, 429),
        latencies_s=[t - t0 for t in times],
        dead_letters=len(h.sandbox.dead_letters()),
        by_endpoint=by_endpoint,
        ingest_seconds=ingest_seconds,
        retried_records=h.sandbox.poller.stats.failed_records,
    )


def restore_unlimited(h: Harness) -> None:
    h.set_limits(
        per_minute=UNLIMITED_PER_MINUTE,
        per_day=UNLIMITED_PER_DAY,
        concurrent=XERO_CONCURRENT,
        budget_per_minute=UNLIMITED_PER_MINUTE,
    )


def sandbox_file(h: Harness, path: Any) -> None:
    """What ``python -m sandbox serve`` writes, so the CLI in another process acts on this sandbox."""
    path.write_text(json.dumps(h.sandbox.info()) + "\n", encoding="utf-8")


def log_step(name: str) -> None:
    log(name)


# --- the scheduled reconciliation at idle (for the cost model) ------------------------------------


def reconcile_idle(
    h: Harness, modes: tuple[str, ...] = ("xero_events", "incremental", "full")
) -> dict[str, Any]:
    """One run of each scheduled mode through the real reconcile handler, on the sandbox's small
    data set: its own time, boto3 calls, Xero and Ignition calls (for the cost of idle months)."""
    run = getattr(h.sandbox, "run_reconcile", None)
    if run is None:
        return {"error": "the sandbox has no reconcile function yet"}
    out: dict[str, Any] = {}
    for mode in modes:
        result, row = scheduled_run(h, lambda mode=mode: run({"mode": mode}))  # type: ignore[misc]
        out[mode] = {"status": result.get("status") if isinstance(result, dict) else None, **row}
    return out


def ignition_requests(h: Harness) -> int:
    """Requests the Ignition emulator has answered so far."""
    return int(h.http.get(f"{h.sandbox.ignition_url}/_emulator/state").json()["requests"]["total"])


def scheduled_run(h: Harness, call: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """``call()``, a scheduled function's run, timed: what it returned, and its own time, AWS calls,
    and the Xero and Ignition calls it made."""
    xero_before, ignition_before = api_calls(h.xero_state()), ignition_requests(h)
    result, sample = timed(call)
    return result, {
        "total_ms": round(sample.total * 1000, 1),
        "own_ms": round(sample.own * 1000, 1),
        "own_cpu_ms": round(sample.own_cpu * 1000, 1),
        "aws_calls": sample.aws_calls,
        "xero_calls": api_calls(h.xero_state()) - xero_before,
        "ignition_calls": ignition_requests(h) - ignition_before,
    }
