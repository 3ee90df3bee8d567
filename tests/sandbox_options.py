"""How the suites that start a sandbox of their own (integration, chaos, poll) configure it."""

from __future__ import annotations

from typing import Any

from sandbox.environment import SandboxOptions


def sandbox_options(**overrides: Any) -> SandboxOptions:
    """Xero's limits raised out of the way (a test about limits injects 429s explicitly), short
    inline waits, and a visibility timeout longer than a slow sync on a loaded machine: a shorter
    one lets a second worker take a message still being processed, which AWS prevents with 6x the
    function's timeout."""
    settings: dict[str, Any] = {
        "xero_calls_per_minute": 100_000,
        "xero_calls_per_day": 1_000_000,
        "xero_limits": {"per_minute": 100_000, "per_day": 1_000_000},
        "max_inline_wait_seconds": 5,
        "visibility_timeout": 30,
    }
    return SandboxOptions(**(settings | overrides))
