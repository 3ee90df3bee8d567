"""AWS in the sandbox: moto's server mode in a child process, and the stack's resources in it,
built from the synthesized CDK template.

A child process (not a thread) because moto's in-process backends are global: a unit test's
``mock_aws`` in the same interpreter would otherwise reset the sandbox's state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sandbox.template import FunctionSpec, SandboxStack, synthesized_template
from shared import aws

REGION = "ap-southeast-2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        # sandbox/moto_server.py: moto's server answering one request at a time (its backends
        # are not thread-safe); run from the repository root, wherever the sandbox was started.
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "sandbox.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self._process.returncode}")
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"moto server did not start on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()


def point_boto3_at(url: str) -> None:
    """Every boto3 client in this process (ours and Powertools') talks to moto."""
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    aws.reset_clients()


@dataclass(frozen=True)
class SandboxResources:
    state_table: str
    idempotency_table: str
    bucket: str
    queue_url: str
    dlq_url: str
    xero_client_secret: str
    xero_token_secret: str
    ignition_webhook_secret: str
    ignition_api_secret: str
    # The template the resources were built from, and each function's resolved environment and
    # role statements (``sandbox.template``).
    stack: SandboxStack
    functions: dict[str, FunctionSpec]

    def environment(self) -> dict[str, str]:
        """Every variable any function gets, as the template sets it (values resolved to the
        sandbox's names). The functions share one process, so the per-function variables
        (POWERTOOLS_SERVICE_NAME, the reconcile function's ALERT_TOPIC_ARN) are merged."""
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            merged.update(spec.environment)
        return merged


def create_resources(
    prefix: str,
    *,
    secrets: dict[str, str],
    visibility_timeout: int | None = None,
    max_receive_count: int | None = None,
    template: dict[str, Any] | None = None,
) -> SandboxResources:
    """The stack's resources, built from the synthesized template (``sandbox.template``).

    ``visibility_timeout`` and ``max_receive_count`` (None: the template's) override the sync
    queue's, the only settings the sandbox compresses in time.
    """
    stack = SandboxStack(template if template is not None else synthesized_template(), prefix)
    sync_queue = stack.logical_id_of_env("SYNC_QUEUE_URL")
    overrides: dict[str, str] = {}
    if visibility_timeout is not None:
        overrides["VisibilityTimeout"] = str(visibility_timeout)
    if max_receive_count is not None:
        overrides["maxReceiveCount"] = str(max_receive_count)
    stack.create(secrets=secrets, queue_overrides={sync_queue: overrides})
    functions = stack.functions()
    env = functions["sync"].environment
    return SandboxResources(
        state_table=env["STATE_TABLE_NAME"],
        idempotency_table=env["IDEMPOTENCY_TABLE_NAME"],
        bucket=env["ARCHIVE_BUCKET_NAME"],
        queue_url=env["SYNC_QUEUE_URL"],
        dlq_url=env["DLQ_URL"],
        xero_client_secret=env["XERO_CLIENT_SECRET_ID"],
        xero_token_secret=env["XERO_TOKEN_SECRET_ID"],
        ignition_webhook_secret=env["IGNITION_WEBHOOK_SECRET_ID"],
        ignition_api_secret=env["IGNITION_API_SECRET_ID"],
        stack=stack,
        functions=functions,
    )
