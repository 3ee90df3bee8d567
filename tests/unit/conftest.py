"""Unit tests never leave this machine: any connection to a non-loopback address fails loudly.
The AWS they use is moto's, in-process (tests/unit/moto_env.py); the Xero emulator's own tests share
its fixtures here."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.clock import Clock
from sandbox.xero_emulator import DEFAULT_TENANT_ID, XeroEmulator
from tests.unit.moto_env import STATE_TABLE, fresh_state_table, moto_aws

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    try:
        allowed = isinstance(host, str) and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        allowed = False
    if not allowed:
        raise ConnectionRefusedError(f"unit tests may not open network connections (tried {host!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield


@pytest.fixture(scope="module")
def aws_module() -> Iterator[None]:
    """moto's AWS for a whole test module: boto3 clients are slow to create."""
    with moto_aws():
        yield


@pytest.fixture
def state_table(aws_module: None) -> str:
    """An empty state table, in the module's moto AWS."""
    fresh_state_table()
    return STATE_TABLE


@pytest.fixture
def aws_each() -> Iterator[None]:
    """moto's AWS for one test: resources created in it are gone after."""
    with moto_aws():
        yield


# --- the Xero emulator's own tests (a module's fixture of the same name wins over these) ----------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> XeroEmulator:
    """A fresh Xero emulator on ``clock``."""
    return XeroEmulator(clock=clock)


@pytest.fixture
def client(emulator: XeroEmulator) -> FlaskClient:
    """The emulator's Flask test client: the Accounting API and its ``/_emulator`` admin."""
    return emulator.app.test_client()


@pytest.fixture
def headers(emulator: XeroEmulator) -> dict[str, str]:
    """A valid bearer token and the emulated organisation's tenant id."""
    tokens = emulator.issue_token_set()
    return {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": DEFAULT_TENANT_ID}
