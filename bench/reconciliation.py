"""Reconciliation at scale: runs ``bench/reconcile_scale.py`` (written and owned
by the reconciliation engine) in its own process and takes its figures as they are. The peak RSS
of that process (``RUSAGE_CHILDREN``) is added: it holds the emulators and moto's client too, so it
is an upper bound of the reconcile function's memory.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any

from bench.core import REPO_ROOT


def available() -> str | None:
    if not (REPO_ROOT / "bench" / "reconcile_scale.py").exists():
        return "not measured: bench/reconcile_scale.py (the reconciliation engine's) is not there yet"
    return None


def run(clients: int, invoices: int, timeout: float) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.reconcile_scale",
        "--clients",
        str(clients),
        "--invoices",
        str(invoices),
    ]
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        out = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"not measured: bench.reconcile_scale did not finish within {timeout:.0f} s"}
    wall = time.monotonic() - started
    # ru_maxrss of children is the largest child so far (KiB on Linux): only meaningful if this
    # child is the biggest, which it is by far (the others are small subprocesses).
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return {"error": f"bench.reconcile_scale exited {out.returncode}: {' | '.join(tail)}"}
    text = out.stdout
    try:
        figures: dict[str, Any] = json.loads(text[text.find("{") :])
    except ValueError as exc:
        return {"error": f"unreadable output of bench.reconcile_scale: {exc}"}
    figures["process_wall_seconds_including_seed"] = round(wall, 1)
    figures["process_peak_rss_mib"] = round(after / 1024, 1) if after > before else None
    return figures
