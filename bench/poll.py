"""The Reporting API poller's figures: Ignition requests an hour at idle and at 1,000 changes an
hour, and latency from a change in Ignition to the record in Xero with polling as the only source.

Each part runs in a poll-only sandbox of its own (the poller's cursor sees every record of its
sandbox), through the real poll handler under its own role, which counts the HTTP requests it
makes to Ignition.

Time compression: the deployed schedule is every 2 minutes (``SCHEDULE_SECONDS``).

* Requests: a request count does not depend on wall time, only on what each run finds. One hour
  is 30 runs; the changes of each 2-minute interval are stored with Ignition change times on a
  simulated clock (120 s between runs, in the past), so each run's ``updated_from`` window (and its
  5-minute overlap) holds exactly what it would in real time, and the 30 runs take seconds.
* Latency: the poller runs every ``latency_every`` real seconds, changes are made at random
  moments. Each change's latency is split into its wait for the next run (a fraction of the
  interval, as measured) and the rest (the run, the queue, the sync, the Xero write: measured,
  not scaled). At the 2-minute schedule it is ``wait_fraction * 120 s + rest``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import payloads
from bench.core import Figure, log, percentile
from sandbox.environment import PeriodicRunner, Sandbox, SandboxOptions

SCHEDULE_SECONDS = 120.0  # the poll rule's default, rate(2 minutes)
RUNS_PER_HOUR = int(3600 / SCHEDULE_SECONDS)
UNLIMITED = 100_000


@dataclass
class PollSizes:
    changes_per_hour: int = 1_000
    latency_every: float = 10.0  # real seconds between runs in the latency part (k = 120 / this)
    latency_changes: int = 30
    latency_intervals: int = 5  # the changes are spread over this many intervals


def _sandbox() -> Sandbox:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return Sandbox(
        SandboxOptions(
            xero_calls_per_minute=UNLIMITED,
            xero_calls_per_day=UNLIMITED,
            xero_limits={"per_minute": UNLIMITED, "per_day": UNLIMITED, "app_per_minute": UNLIMITED},
            ignition_sources=("poll",),
            log_level="ERROR",
            prefix="benchpoll",
        )
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Ignition:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(timeout=60, trust_env=False)

    def put(self, resource: str, record: dict[str, Any]) -> None:
        # deliver=false: no webhook at all, as in a poll-only deployment.
        self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}",
            json=record,
            params={"deliver": "false"},
        ).raise_for_status()

    def xero_keys(self) -> set[str]:
        """ContactNumbers and invoice References now in Xero."""
        state = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        return {str(c.get("ContactNumber")) for c in state["Contacts"]} | {
            str(i.get("Reference")) for i in state["Invoices"]
        }


def _client(slug: str, at: datetime | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"slug": slug, "name": f"Polled {slug}", "email": f"{slug}@example.test"}
    if at is not None:
        record |= {"created_at": _iso(at), "updated_at": _iso(at)}
    return record


def _invoice(slug: str, client: str, at: datetime | None = None) -> dict[str, Any]:
    return payloads.invoice_record(
        slug,
        f"R-{slug}",
        client,
        net="100.00",
        total="110.00",
        description="Advice",
        date=datetime.now(UTC).date().isoformat(),
        created_at=_iso(at) if at is not None else None,
        state="awaiting_payment",
    )


def requests_per_hour(sizes: PollSizes) -> dict[str, Any]:
    """Idle: one cycle of runs (the terminal pass included) on an empty sandbox, times 6. Busy: 30
    runs on a simulated clock with ``changes_per_hour`` spread evenly (40% clients, 40% invoices,
    20% payments, a new record or a change of one)."""
    with _sandbox() as sandbox:
        cycle = [sandbox.run_poll() for _ in range(5)]  # runs 0..4: one terminal pass in 5
        idle_cycle = [int(r["ignition_requests"]) for r in cycle]
        idle = sum(idle_cycle) * RUNS_PER_HOUR // len(idle_cycle)

    with _sandbox() as sandbox:
        if sandbox.poller:  # the sync is not what is measured: its queue just fills
            sandbox.poller.stop()
        ignition = _Ignition(sandbox)
        # The simulated hour ends a minute ago: every change is in the past, and inside the first
        # run's lookback (one hour) so nothing is left to a backfill.
        start = datetime.now(UTC) - timedelta(minutes=61)
        per_run = [
            sizes.changes_per_hour * (k + 1) // RUNS_PER_HOUR - sizes.changes_per_hour * k // RUNS_PER_HOUR
            for k in range(RUNS_PER_HOUR)
        ]
        rng = random.Random(7)
        clients: list[str] = []
        invoices: dict[str, str] = {}  # slug -> its client
        runs: list[dict[str, Any]] = []
        n = 0
        for k, count in enumerate(per_run):
            for i in range(count):
                n += 1
                at = start + timedelta(seconds=SCHEDULE_SECONDS * (k + (i + 0.5) / count))
                kind = rng.random()
                if kind < 0.4 or not clients:
                    slug = rng.choice(clients) if clients and rng.random() < 0.5 else f"cli_b{n}"
                    if slug == f"cli_b{n}":
                        clients.append(slug)
                    ignition.put("clients", _client(slug, at))
                elif kind < 0.8 or not invoices:
                    slug = rng.choice(list(invoices)) if invoices and rng.random() < 0.5 else f"inv_b{n}"
                    invoices.setdefault(slug, rng.choice(clients))
                    ignition.put("invoices", _invoice(slug, invoices[slug], at))
                else:
                    invoice = rng.choice(list(invoices))
                    ignition.put(
                        "payments",
                        {
                            "slug": f"pypay_b{n}",
                            "state": "succeeded",
                            "client": {"slug": invoices[invoice]},
                            "amount": {"amount": "10.00", "currency": "AUD"},
                            "invoices": [{"slug": invoice}],
                            "created_at": _iso(at),
                        },
                    )
            runs.append(sandbox.run_poll())
        busy_runs = [int(r["ignition_requests"]) for r in runs]
        queued = sum(int(r["queued"]) for r in runs)
    return {
        "idle_requests_per_run": idle_cycle,
        "idle_requests_per_hour": idle,
        "busy_requests_per_run": busy_runs,
        "busy_requests_per_hour": sum(busy_runs),
        "busy_changes": sum(per_run),
        "busy_queued": queued,
    }


def latency(sizes: PollSizes) -> dict[str, Any]:
    """Changes at random moments with the poller every ``latency_every`` s; first seen in Xero by a
    watcher reading the emulator every 0.1 s."""
    with _sandbox() as sandbox:
        ignition = _Ignition(sandbox)
        # Clients the invoices belong to, already in Xero before the clock starts.
        owners = [f"cli_lo{i}" for i in range(sizes.latency_changes // 3)]
        for slug in owners:
            ignition.put("clients", _client(slug))
        sandbox.run_poll()
        sandbox.wait_until_idle(timeout=120)

        run_starts: list[float] = []

        def run() -> object:
            run_starts.append(time.monotonic())
            return sandbox.run_poll()

        seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                now = time.monotonic()
                for key in ignition.xero_keys():
                    seen.setdefault(key, now)
                stop.wait(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        schedule = PeriodicRunner(run, sizes.latency_every, name="poll")
        rng = random.Random(11)
        span = sizes.latency_every * sizes.latency_intervals
        moments = sorted(rng.uniform(0, span) for _ in range(sizes.latency_changes))
        changed: dict[str, float] = {}
        began = time.monotonic()
        schedule.start()
        try:
            for i, moment in enumerate(moments):
                time.sleep(max(0.0, began + moment - time.monotonic()))
                if i % 3 == 0:
                    key = f"inv_lo{i}"  # its Reference in Xero
                    ignition.put("invoices", _invoice(key, owners[i // 3]))
                else:
                    key = f"cli_ln{i}"
                    ignition.put("clients", _client(key))
                changed[key] = time.monotonic()
            deadline = time.monotonic() + 4 * sizes.latency_every + 60
            while set(changed) - set(seen) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            schedule.stop()
            stop.set()
            watcher.join(timeout=5)
        samples: list[dict[str, float]] = []
        for key, at in changed.items():
            if key not in seen:
                continue
            landed = seen[key]
            # The run that queued it: the last one to start before it landed.
            run_start = max((s for s in run_starts if s <= landed), default=at)
            wait = max(0.0, run_start - at)
            samples.append({"wait_fraction": wait / sizes.latency_every, "rest": landed - run_start})
    scaled = [s["wait_fraction"] * SCHEDULE_SECONDS + s["rest"] for s in samples]
    rest = [s["rest"] for s in samples]
    return {
        "changes": len(changed),
        "landed": len(samples),
        "every_seconds": sizes.latency_every,
        "p50_seconds": round(percentile(scaled, 50), 1) if scaled else None,
        "p95_seconds": round(percentile(scaled, 95), 1) if scaled else None,
        "max_seconds": round(max(scaled), 1) if scaled else None,
        "rest_p50_seconds": round(percentile(rest, 50), 2) if rest else None,
        "rest_p95_seconds": round(percentile(rest, 95), 2) if rest else None,
        "runs": len(run_starts),
        "poll_failures": schedule.failures,
    }


def measure(sizes: PollSizes | None = None) -> dict[str, Any]:
    sizes = sizes or PollSizes()
    log(f"poller: requests an hour at idle and at {sizes.changes_per_hour} changes an hour")
    out: dict[str, Any] = {"requests": requests_per_hour(sizes)}
    log(f"poller: latency, {sizes.latency_changes} changes, a run every {sizes.latency_every} s")
    out["latency"] = latency(sizes)
    out["sizes"] = sizes.__dict__
    return out


def figures(raw: dict[str, Any]) -> list[Figure]:
    req, lat = raw["requests"], raw["latency"]
    k = SCHEDULE_SECONDS / lat["every_seconds"]
    schedule = "the default schedule, a run every 2 minutes (30 an hour)"

    def per_hour(case: str, title: str, value: int, method: str) -> Figure:
        return Figure(
            f"poll.ignition_requests_per_hour.{case}",
            title,
            value,
            "requests/h",
            method,
            goal="<= 1,000 (Ignition's hourly limit per practice)",
            met=value <= 1_000,
            detail=req,
        )

    return [
        per_hour(
            "idle",
            "poller: Ignition requests an hour, idle",
            req["idle_requests_per_hour"],
            f"{schedule}: requests the poll handler made in 5 consecutive runs on a poll-only sandbox with "
            f"no change (one terminal-state pass in 5), {req['idle_requests_per_run']}, times 6",
        ),
        per_hour(
            "1000_changes",
            f"poller: Ignition requests an hour at {req['busy_changes']:,} changes an hour",
            req["busy_requests_per_hour"],
            f"{schedule}: 30 runs, each after 1/30 of the changes (40% clients, 40% invoices, 20% payments, "
            "new or changed) stored with Ignition change times on a simulated clock 120 s apart, so each "
            "run's window and 5-minute overlap hold what they would in real time; requests counted by the "
            f"handler, {req['busy_queued']} changes queued",
        ),
        Figure(
            "poll.latency_p50_seconds",
            "poll only: change in Ignition to record in Xero, p50",
            lat["p50_seconds"],
            "s",
            f"{lat['landed']} of {lat['changes']} changes (new clients, invoices) at random moments, "
            "no webhook, "
            f"the poller every {lat['every_seconds']:g} s (time compression k={k:g}); each latency = its "
            "measured wait for the next run as a fraction of the interval x 120 s + the rest (run, queue, "
            f"sync, Xero write) as measured, p50 {lat['rest_p50_seconds']} s; first seen in Xero by a "
            "watcher reading the emulator every 0.1 s",
            goal="within one schedule interval (120 s) plus the sync",
            met=None if lat["p50_seconds"] is None else lat["p50_seconds"] <= SCHEDULE_SECONDS + 10,
            detail=lat,
        ),
        Figure(
            "poll.latency_p95_seconds",
            "poll only: change in Ignition to record in Xero, p95",
            lat["p95_seconds"],
            "s",
            f"the same samples (rest p95 {lat['rest_p95_seconds']} s, max {lat['max_seconds']} s)",
            goal="within one schedule interval (120 s) plus the sync",
            met=None if lat["p95_seconds"] is None else lat["p95_seconds"] <= SCHEDULE_SECONDS + 10,
            detail=lat,
        ),
    ]
