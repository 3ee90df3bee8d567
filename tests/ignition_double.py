"""The sandbox's Ignition emulator (``sandbox/ignition_emulator.py``) mounted in-process with
``httpx.WSGITransport``, for the unit tests that drive the real Reporting API client: a clock
that moves only when told, an access token, and every request the client made, so "no request
was made" is counted at the HTTP layer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from sandbox.clock import Clock
from sandbox.ignition_emulator import IgnitionEmulator
from shared.ignition import exact_json


def put_record(emulator: IgnitionEmulator, resource: str, record: dict[str, Any]) -> None:
    """Store ``record`` as Ignition holds it, without delivering a webhook."""
    # exact_json: a Decimal in a fixture goes out as a JSON number, as Ignition might send it.
    response = emulator.app.test_client().put(
        f"/_emulator/{resource}/{record['slug']}?deliver=false",
        data=exact_json.dumps(record),
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.get_json()


class EmulatedIgnition:
    """One practice's Ignition at ``at``: the emulator, a token, and an HTTP client recording each
    request in ``requests``."""

    def __init__(self, at: datetime) -> None:
        self.clock = Clock()
        self.clock.advance((at - self.clock.now()).total_seconds())
        self.emulator = IgnitionEmulator(clock=self.clock)
        self.requests: list[httpx.Request] = []
        self.token: str = self.emulator.issue_token_set()["access_token"]
        self.http = httpx.Client(
            transport=httpx.WSGITransport(app=self.emulator.app),
            event_hooks={"request": [self.requests.append]},
        )

    def put(self, resource: str, record: dict[str, Any]) -> None:
        put_record(self.emulator, resource, record)
