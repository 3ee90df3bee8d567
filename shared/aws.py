"""The one place boto3 clients are made.

boto3 honours ``AWS_ENDPOINT_URL`` itself, which is how the sandbox and the tests point every
client at moto's server; nothing else in the code knows whether it talks to AWS or to moto.
Each thread keeps the clients it first used, so a long-lived thread stays with the endpoint it
started with (the sandbox and the tests may point a second sandbox elsewhere meanwhile). A new
thread takes the process's client for the current endpoint instead of making its own: boto3
clients are thread-safe but session creation is not, and the sync's gathered batch starts a
thread per message group every invocation; a session and client made per group (each reading
botocore's data files) set the pace of a burst, not Xero.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

# Enough pooled connections for a gathered batch's threads (up to 50 message groups at once).
_BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=64,
)
_lock = threading.Lock()
_local = threading.local()
_shared: dict[tuple[str, str | None], Any] = {}
_shared_generation = 0
_generation = 0


def client(service: str) -> Any:
    if getattr(_local, "generation", None) != _generation:
        _local.clients = {}
        _local.generation = _generation
    cache: dict[str, Any] = _local.clients
    if service not in cache:
        cache[service] = _shared_client(service)
    return cache[service]


def _shared_client(service: str) -> Any:
    global _shared_generation
    with _lock:
        if _shared_generation != _generation:
            _shared.clear()
            _shared_generation = _generation
        key = (service, os.environ.get("AWS_ENDPOINT_URL"))
        if key not in _shared:
            _shared[key] = boto3.session.Session().client(service, config=_BOTO_CONFIG)
        return _shared[key]


def reset_clients() -> None:
    """Forget the cached clients (tests change AWS_ENDPOINT_URL between sandboxes)."""
    global _generation
    _generation += 1
