"""Helpers for the CLI's integration tests: run ``cli.main`` in-process against the session's
sandbox, through a sandbox file written the way ``python -m sandbox serve`` writes it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cli.app import main
from sandbox.environment import Sandbox
from shared import aws


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def write_sandbox_file(sandbox: Sandbox, path: Path, **config_changes: dict[str, Any]) -> Path:
    """The sandbox's JSON line; ``config_changes`` merge into INTEGRATION_CONFIG sections."""
    info = sandbox.info()
    environment = dict(info["environment"])
    config = json.loads(environment["INTEGRATION_CONFIG"])
    for section, values in config_changes.items():
        config.setdefault(section, {}).update(values)
    environment["INTEGRATION_CONFIG"] = json.dumps(config)
    info["environment"] = environment
    path.write_text(json.dumps(info) + "\n", encoding="utf-8")
    return path


def run_cli(
    *argv: str,
    sandbox_file: Path,
    opener: Callable[[str], None] | None = None,
    ask: Callable[[list[dict[str, Any]]], int] | None = None,
) -> CliRun:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(
        [*argv, "--sandbox", "--sandbox-file", str(sandbox_file), "--no-colour"],
        stdout=stdout,
        stderr=stderr,
        opener=opener,
        ask=ask,
    )
    return CliRun(code, stdout.getvalue(), stderr.getvalue())


def browser(url: str) -> None:
    """A person who consents: follow the authorisation URL's redirects to the CLI's listener."""
    with httpx.Client(timeout=10) as http:
        http.get(url, follow_redirects=True).raise_for_status()


def secret_value(secret_id: str) -> dict[str, Any]:
    text = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    value: dict[str, Any] = json.loads(text)
    return value


def put_secret(secret_id: str, value: dict[str, Any]) -> None:
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(value))
