"""AWS in the sandbox: moto's server mode in a child process, and the stack's resources in it.

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

import httpx

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
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
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


def create_resources(
    prefix: str,
    *,
    visibility_timeout: int,
    max_receive_count: int,
    secrets: dict[str, str],
) -> SandboxResources:
    """The same resources the CDK stack creates, with the same key schemas and queue settings."""
    ddb = aws.client("dynamodb")
    state_table, idempotency_table = f"{prefix}-state", f"{prefix}-idempotency"
    ddb.create_table(
        TableName=state_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    ddb.create_table(
        TableName=idempotency_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    bucket = f"{prefix}-archive"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

    sqs = aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-sync.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receive_count}"}}',
        },
    )["QueueUrl"]

    names = {}
    for key, value in secrets.items():
        name = f"{prefix}/{key}"
        aws.client("secretsmanager").create_secret(Name=name, SecretString=value)
        names[key] = name
    return SandboxResources(
        state_table=state_table,
        idempotency_table=idempotency_table,
        bucket=bucket,
        queue_url=queue_url,
        dlq_url=dlq_url,
        xero_client_secret=names["xero-client"],
        xero_token_secret=names["xero-token"],
        ignition_webhook_secret=names["ignition-webhook"],
        ignition_api_secret=names["ignition-api"],
    )
