"""The one place boto3 clients are made.

boto3 honours ``AWS_ENDPOINT_URL`` itself, which is how the sandbox and the tests point every
client at moto's server; nothing else in the code knows whether it talks to AWS or to moto.
Clients are cached per thread because boto3 clients are thread-safe but session creation is not.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=20)
_local = threading.local()
_generation = 0


def client(service: str) -> Any:
    if getattr(_local, "generation", None) != _generation:
        _local.clients = {}
        _local.generation = _generation
    cache: dict[str, Any] = _local.clients
    if service not in cache:
        cache[service] = boto3.session.Session().client(service, config=_BOTO_CONFIG)
    return cache[service]


def reset_clients() -> None:
    """Forget cached clients in every thread (tests change AWS_ENDPOINT_URL between sandboxes)."""
    global _generation
    _generation += 1
