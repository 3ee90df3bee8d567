"""The one place boto3 clients are made.

boto3 honours ``AWS_ENDPOINT_URL`` itself, which is how the sandbox and the tests point every
client at moto's server; nothing else in the code knows whether it talks to AWS or to moto.
One client per service per process, made under a lock: boto3 clients are thread-safe but
session creation is not, and a client made per thread cost the sync's gathered batch (a thread per
message group, new threads every invocation) a session and a client per group, each reading
botocore's data files: under a burst that, not Xero, set the pace.
"""

from __future__ import annotations

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
_clients: dict[str, Any] = {}
_made_in_generation = 0
_generation = 0


def client(service: str) -> Any:
    global _made_in_generation
    with _lock:
        if _made_in_generation != _generation:
            _clients.clear()
            _made_in_generation = _generation
        if service not in _clients:
            _clients[service] = boto3.session.Session().client(service, config=_BOTO_CONFIG)
        return _clients[service]


def reset_clients() -> None:
    """Forget the cached clients (tests change AWS_ENDPOINT_URL between sandboxes)."""
    global _generation
    _generation += 1
