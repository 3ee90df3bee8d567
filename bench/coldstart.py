"""Cold start: the init phase (imports and module set-up) of a handler, in a fresh interpreter.

Each run is a new ``python`` process with the function's environment (resource names, secret ids,
INTEGRATION_CONFIG) and ``AWS_ENDPOINT_URL`` pointing at the sandbox's moto server, so module set-up
runs exactly as in Lambda's init. The child times ``import functions.<name>.handler`` itself (the
part Lambda bills as Init Duration beyond its runtime bootstrap), then the first invocation, which
builds the handler from the environment (``functions/entry.py``: settings, adapters, boto3
clients) and pays for what it creates lazily (the secret fetch, the Xero/Ignition clients). The
parent reports the median of several runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.core import REPO_ROOT, median

MARKER = "@@bench-invoke@@"
# The child must import nothing of ours before the timed import, or the figure would be flattered.
CHILD = r"""
MARKER = "@@bench-invoke@@"
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import importlib
module = importlib.import_module(sys.argv[1])
t1, c1 = time.perf_counter(), time.process_time()
import json
result = {"init_ms": (t1 - t0) * 1000, "init_cpu_ms": (c1 - c0) * 1000, "modules": len(sys.modules)}
if len(sys.argv) > 2:
    from bench.coldstart import first_invocation
    print(MARKER, flush=True)
    result["first_invoke_ms"] = first_invocation(sys.argv[1], module, json.loads(sys.argv[2]))
print(json.dumps(result))
"""


@dataclass
class ColdStart:
    function: str
    init_ms: list[float]
    init_cpu_ms: list[float]
    first_invoke_ms: list[float]
    process_ms: list[float]
    modules: int
    # From the first invocation's stdout, where Lambda's log stream gets Powertools' output.
    log_bytes: list[int] = field(default_factory=list)
    emf_metrics: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": len(self.init_ms),
            "init_ms_median": round(median(self.init_ms), 1),
            "init_ms_runs": [round(x, 1) for x in self.init_ms],
            "init_cpu_ms_median": round(median(self.init_cpu_ms), 1),
            "first_invoke_ms_median": round(median(self.first_invoke_ms), 1)
            if self.first_invoke_ms
            else None,
            "first_invoke_ms_runs": [round(x, 1) for x in self.first_invoke_ms],
            "process_to_init_done_ms_median": round(median(self.process_ms), 1),
            "modules_loaded": self.modules,
            "first_invoke_log_bytes_median": int(median(self.log_bytes)) if self.log_bytes else None,
            "emf_metrics_first_invoke": sorted(self.emf_metrics),
        }


def first_invocation(module_name: str, module: Any, spec: dict[str, Any]) -> float:
    """Runs in the child: one invocation right after init, timed (ms)."""
    from sandbox.runtime import LambdaContext

    event: dict[str, Any] = spec["event"]
    started = time.perf_counter()
    module.handler(event, LambdaContext(spec["function"], 30))
    return (time.perf_counter() - started) * 1000


def measure(
    function: str, environment: dict[str, str], runs: int, first_events: list[dict[str, Any]] | None = None
) -> ColdStart:
    """``runs`` fresh processes (plus one discarded warm-up that fills the OS file cache); each
    invokes the handler once with the next of ``first_events`` (one per run, warm-up included)."""
    module = f"functions.{function}.handler"
    env = {
        **os.environ,
        **environment,
        # As deployed (infra: log_level INFO, metrics on), so the log bytes and metrics are real.
        "POWERTOOLS_SERVICE_NAME": function.replace("_", "-"),
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    init, init_cpu, first, process = [], [], [], []
    log_bytes: list[int] = []
    emf: set[str] = set()
    modules = 0
    for run in range(runs + 1):
        argv = [sys.executable, "-c", CHILD, module]
        if first_events:
            argv.append(json.dumps({"function": function, "event": first_events[run % len(first_events)]}))
        started = time.perf_counter()
        out = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        wall = (time.perf_counter() - started) * 1000
        if out.returncode != 0:
            raise RuntimeError(f"cold start of {module} failed: {out.stderr[-2000:]}")
        lines = out.stdout.strip().splitlines()
        result = json.loads(lines[-1])
        if run == 0:
            continue
        if MARKER in lines:
            logged = lines[lines.index(MARKER) + 1 : -1]
            log_bytes.append(sum(len(line) + 1 for line in logged))
            emf.update(_emf_metrics(logged))
        init.append(result["init_ms"])
        init_cpu.append(result["init_cpu_ms"])
        if "first_invoke_ms" in result:
            first.append(result["first_invoke_ms"])
            process.append(wall - result["first_invoke_ms"])
        else:
            process.append(wall)
        modules = result["modules"]
    return ColdStart(function, init, init_cpu, first, process, modules, log_bytes, emf)


def _emf_metrics(lines: list[str]) -> set[str]:
    """``name{dim=value,...}`` of every metric in CloudWatch embedded-metric-format lines: each is
    one custom metric CloudWatch bills per month (prorated by the hour it is published in)."""
    found: set[str] = set()
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or "_aws" not in doc:
            continue
        for directive in doc["_aws"].get("CloudWatchMetrics", []):
            for dims in directive.get("Dimensions", [[]]):
                tag = ",".join(f"{d}={doc.get(d)}" for d in dims)
                for metric in directive.get("Metrics", []):
                    found.add(f"{metric['Name']}{{{tag}}}")
    return found
