"""What the CLI acts on: one client's deployed stack, or the local sandbox. Both become the same
:class:`Target`: the deployment's ``DeploymentSettings`` and ``IntegrationConfig``, so every command
uses the same shared code as the Lambda functions.

* ``--sandbox``: ``python -m sandbox serve`` writes ``.sandbox.json`` (its JSON line, with the
  functions' environment); boto3 is pointed at its moto server with dummy credentials.
* ``--client NAME``: the CloudFormation stack ``IgnitionXeroSync-<NAME>``: its outputs, and the
  sync function's environment (``lambda get-function-configuration``), read with the caller's own
  AWS credentials.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, ValidationError

from cli.errors import CliError, Exit
from shared import aws
from shared.config import ConfigError, DeploymentSettings, IntegrationConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SANDBOX_FILE = REPO_ROOT / ".sandbox.json"
SANDBOX_FILE_ENV = "IGNITION_XERO_SANDBOX_FILE"
SANDBOX_REGION = "ap-southeast-2"
STACK_PREFIX = "IgnitionXeroSync-"


class SandboxInfo(BaseModel):
    """The JSON line ``python -m sandbox serve`` prints and writes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    webhook_url: str
    xero_url: str
    ignition_url: str
    aws_endpoint_url: str
    environment: dict[str, str]
    # The switches `pause` turns off (sandbox/controls.py); absent in files of older sandboxes.
    controls: dict[str, Any] | None = None


@dataclass(frozen=True)
class Target:
    kind: Literal["sandbox", "stack"]
    name: str
    settings: DeploymentSettings
    config: IntegrationConfig
    environment: dict[str, str]
    region: str
    outputs: dict[str, str] = field(default_factory=dict)
    sandbox: SandboxInfo | None = None

    @property
    def label(self) -> str:
        return "the local sandbox" if self.kind == "sandbox" else f"stack {STACK_PREFIX}{self.name}"


def _build(
    kind: Literal["sandbox", "stack"],
    name: str,
    environment: dict[str, str],
    region: str,
    outputs: dict[str, str],
    sandbox: SandboxInfo | None = None,
) -> Target:
    try:
        settings = DeploymentSettings.from_env(environment)
        config = IntegrationConfig.from_env(environment)
    except ConfigError as exc:
        raise CliError(f"the functions' settings are incomplete: {exc}", Exit.CONFIG) from None
    return Target(kind, name, settings, config, environment, region, outputs, sandbox)


def sandbox_target(path: Path | None = None) -> Target:
    file = path or Path(os.environ.get(SANDBOX_FILE_ENV) or DEFAULT_SANDBOX_FILE)
    try:
        info = SandboxInfo.model_validate_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"no sandbox running: {file} does not exist",
            Exit.CONFIG,
            hint="start one with `.venv/bin/python -m sandbox serve` (it writes that file)",
        ) from None
    except ValidationError as exc:
        raise CliError(
            f"{file} is not a sandbox description: {exc.error_count()} problem(s)", Exit.CONFIG
        ) from None
    _check_reachable(file, info.aws_endpoint_url)
    _point_at_sandbox(info.aws_endpoint_url)
    return _build(
        "sandbox",
        info.environment.get("CLIENT_NAME", "sandbox"),
        dict(info.environment),
        SANDBOX_REGION,
        {},
        info,
    )


def _check_reachable(file: Path, endpoint: str) -> None:
    """A sandbox file outlives its sandbox (a killed ``serve``): say so in one line, at once,
    rather than after boto3's retries."""
    url = urlsplit(endpoint)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=2):
            pass
    except OSError:
        raise CliError(
            f"the sandbox in {file} is not running (nothing answers at {endpoint}): the file is stale",
            Exit.CONFIG,
            hint="start one with `.venv/bin/python -m sandbox serve` (it rewrites that file)",
        ) from None


def _point_at_sandbox(endpoint: str) -> None:
    wanted = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_DEFAULT_REGION": SANDBOX_REGION,
        "AWS_REGION": SANDBOX_REGION,
    }
    changed = any(os.environ.get(k) != v for k, v in wanted.items()) or "AWS_PROFILE" in os.environ
    os.environ.update(wanted)
    os.environ.pop("AWS_PROFILE", None)
    if changed:
        aws.reset_clients()


def client_region(name: str) -> str | None:
    """The region in ``clients/<name>.json``, when this checkout has the client's file."""
    path = REPO_ROOT / "clients" / f"{name}.json"
    try:
        region = json.loads(path.read_text(encoding="utf-8")).get("region")
    except (OSError, ValueError, AttributeError):
        return None
    return region if isinstance(region, str) else None


def stack_target(name: str, region: str | None = None) -> Target:
    chosen = (
        region or client_region(name) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not chosen:
        raise CliError(
            f"no AWS region for client {name!r}",
            Exit.CONFIG,
            hint="pass --region, or keep clients/<name>.json in this checkout, or set AWS_REGION",
        )
    os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = chosen
    aws.reset_clients()
    stack_name = f"{STACK_PREFIX}{name}"
    cfn = aws.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:  # no stack, no credentials: cannot reach it
        raise CliError(
            f"cannot read stack {stack_name} in {chosen}: {_aws_message(exc)}",
            Exit.CONFIG,
            hint="check the AWS credentials (`aws sts get-caller-identity`) and the client name",
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    function = outputs.get("SyncFunctionName") or _sync_function_name(stack_name)
    try:
        configuration = aws.client("lambda").get_function_configuration(FunctionName=function)
    except (ClientError, BotoCoreError) as exc:
        raise CliError(
            f"cannot read the sync function {function}: {_aws_message(exc)}", Exit.CONFIG
        ) from None
    environment = dict(configuration.get("Environment", {}).get("Variables", {}))
    return _build("stack", name, environment, chosen, outputs)


def _sync_function_name(stack_name: str) -> str:
    cfn = aws.client("cloudformation")
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            logical = resource["LogicalResourceId"]
            if resource["ResourceType"] == "AWS::Lambda::Function" and logical.startswith("FunctionsSync"):
                return str(resource["PhysicalResourceId"])
    raise CliError(f"stack {stack_name} has no sync function", Exit.CONFIG)


def _aws_message(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def resolve(*, sandbox: bool, client: str | None, region: str | None, sandbox_file: Path | None) -> Target:
    if sandbox:
        return sandbox_target(sandbox_file)
    if client:
        return stack_target(client, region)
    raise CliError("say which integration: --client NAME (a deployed stack) or --sandbox", Exit.USAGE)
