"""What every benchmark shares: a figure (value + how it was measured + goal), percentiles, the
machine description, and the way AWS and HTTP time is attributed inside one process."""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One number in ``bench/results.json`` and one row of the table in docs/benchmarks.md.

    ``value`` is None when the figure could not be measured; ``notes`` then says why. ``met`` is
    None when there is no goal for it (or it was not measured)."""

    key: str
    label: str
    value: float | int | str | None
    unit: str
    method: str
    goal: str | None = None
    met: bool | None = None
    notes: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(samples: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default), so p99 of 200 samples is meaningful."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def summary(samples: Sequence[float], digits: int = 2) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50), digits),
        "p90": round(percentile(samples, 90), digits),
        "p99": round(percentile(samples, 99), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_average_1_5_15": load_average(),
    }


# --- attributing time to AWS (boto3) and HTTP (httpx) calls -------------------------------------


class CallTimer:
    """Per-thread time spent inside boto3 API calls and httpx requests.

    Installed by wrapping ``botocore.client.BaseClient._make_api_call`` (every boto3 call, ours and
    Powertools', marshalling included) and ``httpx.HTTPTransport.handle_request`` (the Xero and
    Ignition clients). Only the bench process is patched; the product code is unchanged."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._installed = False
        self._lock = threading.Lock()

    def _bucket(self) -> dict[str, Any]:
        bucket: dict[str, Any] | None = getattr(self._local, "bucket", None)
        if bucket is None:
            bucket = {
                "aws": 0.0,
                "http": 0.0,
                "aws_cpu": 0.0,
                "http_cpu": 0.0,
                "aws_calls": {},
                "http_calls": 0,
            }
            self._local.bucket = bucket
        return bucket

    def reset(self) -> None:
        self._local.bucket = None

    def snapshot(self) -> dict[str, Any]:
        bucket = self._bucket()
        return {
            "aws": bucket["aws"],
            "http": bucket["http"],
            "aws_cpu": bucket["aws_cpu"],
            "http_cpu": bucket["http_cpu"],
            "aws_calls": dict(bucket["aws_calls"]),
            "http_calls": bucket["http_calls"],
        }

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return
            import botocore.client
            import httpx

            timer = self
            original_call = botocore.client.BaseClient._make_api_call
            original_send = httpx.HTTPTransport.handle_request

            def timed_call(client: Any, operation: str, params: Any) -> Any:
                bucket = timer._bucket()
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    return original_call(client, operation, params)
                finally:
                    bucket["aws"] += time.perf_counter() - started
                    bucket["aws_cpu"] += time.thread_time() - cpu
                    name = f"{client.meta.service_model.service_name}.{operation}"
                    calls = bucket["aws_calls"]
                    calls[name] = calls.get(name, 0) + 1
                    # DynamoDB bills a transaction per item (2 WRU each): count the items too.
                    items = params.get("TransactItems") if isinstance(params, dict) else None
                    if items is not None:
                        calls[f"{name}#items"] = calls.get(f"{name}#items", 0) + len(items)

            def timed_send(transport: Any, request: Any) -> Any:
                bucket = timer._bucket()
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    return original_send(transport, request)
                finally:
                    # boto3 does not use httpx, so the two never nest.
                    bucket["http"] += time.perf_counter() - started
                    bucket["http_cpu"] += time.thread_time() - cpu
                    bucket["http_calls"] += 1

            botocore.client.BaseClient._make_api_call = timed_call
            httpx.HTTPTransport.handle_request = timed_send  # type: ignore[method-assign,assignment]
            self._installed = True


TIMER = CallTimer()


@dataclass
class Sample:
    total: float
    aws: float
    http: float
    aws_calls: dict[str, int]
    http_calls: int
    # The calling thread's CPU time: unlike wall time, not inflated by waiting for a busy core.
    cpu_total: float = 0.0
    cpu_aws: float = 0.0
    cpu_http: float = 0.0

    @property
    def own(self) -> float:
        """Time in our code: total minus boto3 calls minus httpx calls."""
        return self.total - self.aws - self.http

    @property
    def own_cpu(self) -> float:
        """CPU time of our code, boto3 and httpx work (marshalling, parsing) excluded."""
        return self.cpu_total - self.cpu_aws - self.cpu_http


def timed(call: Callable[[], Any]) -> tuple[Any, Sample]:
    TIMER.install()
    TIMER.reset()
    started, cpu = time.perf_counter(), time.thread_time()
    result = call()
    total, cpu_total = time.perf_counter() - started, time.thread_time() - cpu
    spent = TIMER.snapshot()
    return result, Sample(
        total,
        spent["aws"],
        spent["http"],
        spent["aws_calls"],
        spent["http_calls"],
        cpu_total,
        spent["aws_cpu"],
        spent["http_cpu"],
    )


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - started
    end.append(time.perf_counter())


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    import sys

    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
